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


def law_from_fit(path: str) -> Law:
    """A law from `scaling fit --format json` output."""
    import json
    import math

    from ..source import read_bytes

    try:
        data = json.loads(read_bytes(path, "a JSON fit"))
        values = {k: float(data["fit"][k]) for k in ("E", "A", "B", "alpha", "beta")}
    except (ValueError, KeyError, TypeError) as e:
        raise SpecError(f"not a fit that scaling fit writes as JSON: {e}", file=path) from None
    if not all(math.isfinite(v) and v > 0 for v in values.values()):
        raise SpecError("fit parameters must be positive and finite", file=path)
    return Law("fit", f"fitted: {path}", "hoffmann", values, "as in the fitted runs")
