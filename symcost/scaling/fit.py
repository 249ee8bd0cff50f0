"""Fitting L(N, D) = E + A / N^alpha + B / D^beta to training runs (Hoffmann et al. 2022, App. D.2).

Approach 3 as published: minimise the Huber loss (delta = 1e-3) of
LSE(a - alpha log N, b - beta log D, e) - log L over the runs, A = e^a, B = e^b, E = e^e, with
L-BFGS from every point of a grid of initialisations, keeping the best (then polished to tight
tolerances by a trust-region least-squares solver): the objective has local minima, and only the
global one is the fit. The default grid (675 starts): alpha, beta in
{0, 0.5, ..., 2}, e in {-1, 0, 1}, a, b in {0, 10, 20}; `grid="hoffmann"` is the paper's own
(alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}: 4,500 starts,
about 7x slower). Confidence intervals: percentile bootstrap
over the runs (a fixed seed, so the fit is deterministic), each refit polished from the full fit.

Approaches 1 and 2 need runs at a few compute budgets (groups of runs with the same FLOPs, from
a `flops` column or 6ND to 2 significant digits, at least 3 runs each in at least 3 groups):
approach 1 takes each group's lowest-loss run, approach 2 the minimum of a parabola in log N;
both then fit N_opt = k C^a.
"""

from __future__ import annotations

import csv
import itertools
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from ..extras import require
from ..results import Result

DELTA = 1e-3
GRIDS = {
    "default": {"alpha": np.arange(0, 2.01, 0.5), "beta": np.arange(0, 2.01, 0.5), "e": np.array([-1.0, 0, 1]),
                "a": np.array([0.0, 10, 20]), "b": np.array([0.0, 10, 20])},
    "hoffmann": {"alpha": np.arange(0, 2.01, 0.5), "beta": np.arange(0, 2.01, 0.5), "e": np.arange(-1, 1.01, 0.5),
                 "a": np.arange(0, 25.1, 5), "b": np.arange(0, 25.1, 5)},
}
PARAMS = ("E", "A", "B", "alpha", "beta")
COLUMNS = ("params", "tokens", "loss")


@dataclass(frozen=True)
class Runs:
    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray
    flops: np.ndarray | None = None
    source: str = "<runs>"


@dataclass(repr=False)  # repr is Result's summary
class Fit(Result):
    """L(N, D) fitted to runs: the values, their bootstrap intervals, how the minimiser went."""

    values: dict[str, float]  # E, A, B, alpha, beta
    objective: float
    starts: int  # initialisations tried
    converged: int  # of them, how many L-BFGS reported converged
    residuals: list[float]  # log L - log predicted, per run
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95% bootstrap intervals
    approaches: dict[str, dict] = field(default_factory=dict)  # approach 1 and 2, where the runs allow them
    warnings: list[str] = field(default_factory=list)
    source: str = "<runs>"  # the runs' file

    def text(self, width: int | None = None) -> str:
        from ..render.scaling import fit_text

        return fit_text(self, width)

    def summary(self):
        return f"L(N, D) fitted to {self.source}", [(k, f"{self.values[k]:.6g}") for k in PARAMS]

    def to_dict(self) -> dict:
        return {"fit": {**self.values, "objective": self.objective}, "ci": {k: list(v) for k, v in self.ci.items()},
                "starts": self.starts, "converged": self.converged, "residuals": self.residuals,
                "approaches": self.approaches, "warnings": self.warnings, "method": __doc__.split("\n\n")[1]}


def read_runs(path: str) -> Runs:
    """params,tokens,loss[,flops] from a CSV file; every failure names the file and the row."""
    from ..source import read_bytes

    raw = read_bytes(path, "a CSV file of runs")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError("not UTF-8 text", file=path) from None
    reader = csv.reader(text.splitlines())
    try:
        rows = list(reader)
    except csv.Error as e:  # a cell past the csv module's limit, a NUL byte, …
        raise SpecError(f"not a CSV file of runs: {e}", file=path, line=reader.line_num) from None
    if not rows:
        raise SpecError("empty; expected a header params,tokens,loss[,flops]", file=path)
    head = [h.strip() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in head]
    if missing:
        raise SpecError(f"missing column {', '.join(missing)}; expected params,tokens,loss[,flops], got "
                        f"{','.join(head)}", file=path, line=1)
    columns = [c for c in (*COLUMNS, "flops") if c in head]
    data = {c: [] for c in columns}
    for i, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(head):
            raise SpecError(f"{len(row)} fields, the header has {len(head)}", file=path, line=i)
        for c in columns:
            cell = row[head.index(c)].strip()
            try:
                v = float(cell)
            except ValueError:
                raise SpecError(f"{c}: {cell!r} is not a number", file=path, line=i) from None
            if not (math.isfinite(v) and v > 0):
                raise SpecError(f"{c}: {cell} must be positive and finite", file=path, line=i)
            data[c].append(v)
    return runs_of(data, path)


def runs_of(data: dict, source: str = "<runs>") -> Runs:
    """Runs from columns (params, tokens, loss and optionally flops), each a list of positive numbers."""
    missing = [c for c in COLUMNS if c not in data]
    if missing or set(data) - {*COLUMNS, "flops"}:
        raise SpecError(f"runs: expected the columns params, tokens, loss[, flops], got {', '.join(map(str, data))}",
                        param="runs")
    for c, column in data.items():
        if isinstance(column, (str, bytes)) or not hasattr(column, "__len__") or len(column) != len(data["params"]):
            raise SpecError(f"runs[{c!r}]: expected a list of numbers as long as params", param="runs")
        if bad := [v for v in column if isinstance(v, bool) or not isinstance(v, numbers.Real)
                   or not (math.isfinite(v) and v > 0)]:
            raise SpecError(f"runs[{c!r}]: {bad[0]!r} is not a positive finite number", param="runs")
    n = len(data["params"])
    if n < len(PARAMS) + 1:
        raise SpecError(f"{n} runs: fitting {len(PARAMS)} parameters needs at least {len(PARAMS) + 1}", file=source)
    arrays = {k: np.asarray(v, dtype=float) for k, v in data.items()}
    return Runs(arrays["params"], arrays["tokens"], arrays["loss"], arrays.get("flops"), source)


def _residuals(theta, x, y, target):
    """log of the law's prediction minus log L, per run, and the residuals' Jacobian in theta =
    (a, b, e, alpha, beta): LSE(a - alpha x, b - beta y, e), each term's share its derivative."""
    a, b, e, alpha, beta = theta
    # term by term, in the order a stacked array's reductions take them (the same floats), without stacking: a
    # fit evaluates this some 150,000 times (Hoffmann's grid), and the stacks were a quarter of its time
    u0, u1 = a - alpha * x, b - beta * y
    top = np.maximum(np.maximum(u0, u1), e)
    w0, w1, w2 = np.exp(u0 - top), np.exp(u1 - top), np.exp(e - top)
    total = w0 + w1 + w2
    jacobian = np.empty((len(x), 5))
    jacobian[:, 0], jacobian[:, 1], jacobian[:, 2] = w0 / total, w1 / total, w2 / total
    jacobian[:, 3], jacobian[:, 4] = -jacobian[:, 0] * x, -jacobian[:, 1] * y
    return top + np.log(total) - target, jacobian


def _objective(theta, x, y, target):
    """The Huber loss of the log-space residuals, and its gradient."""
    r, jacobian = _residuals(theta, x, y, target)
    small = np.abs(r) <= DELTA
    value = np.where(small, 0.5 * r * r, DELTA * (np.abs(r) - 0.5 * DELTA)).sum()
    return value, np.where(small, r, DELTA * np.sign(r)) @ jacobian


def _minimise(start, x, y, target):
    optimize = require("scipy.optimize", "scaling", "scaling fit")
    return optimize.minimize(_objective, start, args=(x, y, target), jac=True, method="L-BFGS-B")


def _polish(theta, x, y, target):
    """The same Huber objective from the grid's best, by a trust-region least-squares solver (scipy's
    `huber` loss with f_scale = delta has the same minimiser): L-BFGS stalls where the law's terms are
    nearly degenerate, long before a noiseless fit is exact."""
    optimize = require("scipy.optimize", "scaling", "scaling fit")
    result = optimize.least_squares(lambda t: _residuals(t, x, y, target)[0], theta,
                                    jac=lambda t: _residuals(t, x, y, target)[1], loss="huber",
                                    f_scale=DELTA, method="trf", x_scale="jac", xtol=1e-15, ftol=1e-15, gtol=1e-15,
                                    max_nfev=10_000)
    return result.x


def _best(starts, x, y, target):
    best, converged = None, 0
    for start in starts:
        result = _minimise(np.asarray(start, dtype=float), x, y, target)
        converged += bool(result.success)
        if np.isfinite(result.fun) and (best is None or result.fun < best.fun):
            best = result
    return best, converged


def grid_starts(grid: str | dict = "default"):
    grid = GRIDS[grid] if isinstance(grid, str) else grid
    return [(a, b, e, alpha, beta) for alpha, beta, e, a, b in
            itertools.product(grid["alpha"], grid["beta"], grid["e"], grid["a"], grid["b"])]


# A fit's work grows with the runs times the starts (each an L-BFGS minimisation) and the runs times
# the bootstrap refits (each one polish): these bounds keep a fit under 10 s on two cores.
MAX_RUNS = 1_000
MAX_BOOTSTRAP = 1_000
MAX_START_RUNS = 1_000_000  # starts x runs: the default grid (675) on up to 1,481 runs, Hoffmann's (4,500) on 222
MAX_BOOTSTRAP_RUNS = 500_000  # bootstrap refits x runs


def fit(runs: Runs, *, grid: str | dict = "default", bootstrap: int = 200, seed: int = 0) -> Fit:
    n, starts = len(runs.loss), grid_starts(grid)
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise SpecError(f"bootstrap {bootstrap!r}: expected an integer from 0 to {MAX_BOOTSTRAP:,}", param="bootstrap")
    if n > MAX_RUNS:
        raise SpecError(f"{n:,} runs: symcost fits up to {MAX_RUNS:,}", file=runs.source)
    if len(starts) * n > MAX_START_RUNS:
        raise SpecError(f"{len(starts):,} starts on {n:,} runs is past the {MAX_START_RUNS:,} start-runs a fit may take; "
                        "use the default grid or fewer runs", file=runs.source)
    if bootstrap * n > MAX_BOOTSTRAP_RUNS:
        raise SpecError(f"bootstrap {bootstrap:,} refits of {n:,} runs is past the {MAX_BOOTSTRAP_RUNS:,} refit-runs a "
                        f"fit may take; give at most {MAX_BOOTSTRAP_RUNS // n:,}", param="bootstrap")
    for column in ("params", "tokens"):
        if len(np.unique(getattr(runs, column))) < 2:
            raise SpecError(f"every run has the same {column}: L(N, D) = E + A/N^alpha + B/D^beta needs runs at two "
                            f"or more {column} to fit", file=runs.source)
    x, y, target = np.log(runs.params), np.log(runs.tokens), np.log(runs.loss)
    best, converged = _best(starts, x, y, target)
    if best is None:
        raise SpecError("the fit did not converge from any initialisation", file=runs.source)
    polished = _polish(best.x, x, y, target)
    value, _ = _objective(polished, x, y, target)
    if value <= best.fun:
        best.x, best.fun = polished, value
    a, b, e, alpha, beta = best.x
    with np.errstate(over="ignore"):  # an exponent past a float's range is inf, refused below
        values = {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": float(alpha),
                  "beta": float(beta)}
    # A law whose loss does not fall with N and D (or that underflows to 0) extrapolates nothing
    if bad := [f"{k} = {v:.3g}" for k, v in values.items() if not (math.isfinite(v) and v > 0)]:
        raise SpecError(f"the best fit has {', '.join(bad)}: these runs' loss does not fall with params and tokens as "
                        "L(N, D) = E + A/N^alpha + B/D^beta requires (all five positive); check the runs",
                        file=runs.source)
    out = Fit(values, float(best.fun), len(starts), converged, [float(-r) for r in _residuals(best.x, x, y, target)[0]],
              source=runs.source)
    if not best.success:
        out.warnings.append(f"L-BFGS stopped without converging at the best start: {best.message}")
    if bootstrap:
        rng = np.random.default_rng(seed)
        samples = []
        for _ in range(bootstrap):
            i = rng.integers(0, len(x), len(x))
            ra, rb, re, ralpha, rbeta = _polish(best.x, x[i], y[i], target[i])
            samples.append((re, ra, rb, ralpha, rbeta))
        samples = np.array(samples)
        with np.errstate(over="ignore", invalid="ignore"):  # E, A, B were fitted as logarithms; past range: inf
            samples[:, :3] = np.exp(samples[:, :3])
            lo, hi = np.percentile(samples, [2.5, 97.5], axis=0)
        out.ci = {k: (float(lo[j]), float(hi[j])) for j, k in enumerate(PARAMS) if np.isfinite([lo[j], hi[j]]).all()}
        if unbounded := [k for k in PARAMS if k not in out.ci]:
            out.warnings.append(f"the bootstrap interval of {', '.join(unbounded)} is past a float's range: the runs "
                                "do not pin it down")
    out.approaches = iso_flop_approaches(runs)
    return out


def iso_flop_approaches(runs: Runs) -> dict:
    """Approaches 1 and 2 of Hoffmann et al. 2022 where the runs come in compute groups."""
    flops = runs.flops if runs.flops is not None else 6 * runs.params * runs.tokens
    keys = np.array([float(f"{c:.2g}") for c in flops])
    groups = [np.flatnonzero(keys == k) for k in np.unique(keys)]
    groups = [g for g in groups if len(g) >= 3]
    if len(groups) < 3:
        return {"note": "approaches 1 and 2 need at least 3 compute groups of at least 3 runs each "
                        "(same flops, or 6ND to 2 significant digits)"}
    budgets, lowest, vertex = [], [], []
    for g in groups:
        budgets.append(float(np.mean(flops[g])))
        lowest.append(float(runs.params[g][np.argmin(runs.loss[g])]))
        c2, c1, _ = np.polyfit(np.log(runs.params[g]), runs.loss[g], 2)
        vertex.append(float(math.exp(-c1 / (2 * c2))) if c2 > 0 else None)  # None: the group has no minimum
    out = {}
    for name, sizes in (("approach_1", lowest), ("approach_2", vertex)):
        ok = [i for i, v in enumerate(sizes) if v is not None]
        if len(ok) >= 2:
            slope, intercept = np.polyfit(np.log([budgets[i] for i in ok]), np.log([sizes[i] for i in ok]), 1)
            if math.isfinite(k := float(np.exp(np.clip(intercept, -700, 700)))):
                out[name] = {"a": float(slope), "k": k, "n_opt": sizes, "flops": budgets}
    return out
