"""Published scaling laws as named data, each with its source.

Hoffmann form (Hoffmann et al. 2022, Eq. 2): L(N, D) = E + A / N^alpha + B / D^beta, N parameters
and D training tokens. Under C = 6 N D its compute-optimal allocation is closed form (their Eq. 4):
N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b, a = beta/(alpha + beta), b = alpha/(alpha + beta),
G = (alpha A / (beta B))^(1/(alpha + beta)).

Kaplan form (Kaplan et al. 2020, Eq. 1.5): L(N, D) = ((N_c / N)^(alpha_N / alpha_D) + D_c / D)^alpha_D,
N non-embedding parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpecError


@dataclass(frozen=True)
class Law:
    name: str
    source: str
    form: str  # hoffmann or kaplan
    params: dict[str, float]
    n_means: str  # what N counts in the fit the law came from

    def loss(self, n, d):
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        p = self.params
        if self.form == "hoffmann":
            return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
        return ((p["N_c"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / d) ** p["alpha_D"]

    def optimum_6nd(self, flops: float) -> tuple[float, float]:
        """(N_opt, D_opt) under C = 6 N D, closed form (Hoffmann form only)."""
        if self.form != "hoffmann":
            raise SpecError(f"law {self.name}: the closed-form 6ND optimum is defined for the Hoffmann form")
        p = self.params
        alpha, beta = p["alpha"], p["beta"]
        G = (alpha * p["A"] / (beta * p["B"])) ** (1 / (alpha + beta))
        return G * (flops / 6) ** (beta / (alpha + beta)), (flops / 6) ** (alpha / (alpha + beta)) / G


LAWS = {
    "hoffmann2022": Law("hoffmann2022", "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', "
                        "Sec. 3.3 and App. D.2 (approach 3)", "hoffmann",
                        {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}, "all parameters"),
    "besiroglu2024": Law("besiroglu2024", "Besiroglu et al. 2024, 'Chinchilla Scaling: A replication attempt', "
                         "Eq. 4 (their refit of approach 3)", "hoffmann",
                         {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}, "all parameters"),
    "kaplan2020": Law("kaplan2020", "Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', Eq. 1.5 and "
                      "Table 2", "kaplan", {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095},
                      "non-embedding parameters"),
}


def law(name: str) -> Law:
    if name not in LAWS:
        raise SpecError(f"unknown law {name!r}; known: {', '.join(LAWS)}")
    return LAWS[name]


# What a fitted law's parameters may be: positive, finite, and where a loss law can be (published
# exponents lie between 0.05 and 0.8); a smaller exponent makes N^alpha 1 and the optimum undefined
FIT_BOUNDS = {"E": (1e-6, 1e3), "A": (1e-6, 1e30), "B": (1e-6, 1e30), "alpha": (1e-3, 10.0), "beta": (1e-3, 10.0)}


def law_from_fit(path: str) -> Law:
    """A law from `scaling fit --format json` output."""
    import json
    import math

    from ..source import read_bytes

    try:
        data = json.loads(read_bytes(path, "a JSON fit"))
        values = {k: data["fit"][k] for k in FIT_BOUNDS}
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise SpecError(f"not a fit that scaling fit writes as JSON: {type(e).__name__} {e}", file=path) from None
    for k, v in values.items():
        low, high = FIT_BOUNDS[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and low <= v <= high):
            raise SpecError(f"fit.{k}: {v!r} is not a number in [{low:g}, {high:g}]", file=path)
    values = {k: float(v) for k, v in values.items()}
    return Law("fit", f"fitted: {path}", "hoffmann", values, "as in the fitted runs")
