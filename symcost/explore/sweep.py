"""sweep: metrics over a grid of sizes, vectorised and exact.

Values for a dim: a list `1024,2048,4096`, a range `512:8192:512` (start:stop:step, stop
included when on the grid) or a geometric series `1024..131072x2` (start..stop x factor).
Several dims make a grid (their product). Dims not varied keep their default or --set
value. Each metric's closed form is compiled once (codegen.vectorized) and evaluated for
all points at once, in exact integers.

Constraints (heads dividing width, positive derived dims, …) are checked point by point
with `evaluate`'s own checks for up to CHECKED_POINTS points; past that, at an even
sample of CHECKED_POINTS points including the first and last, and the result says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..codegen.vectorized import Vectorized
from ..derive import derive
from ..errors import SpecError
from ..evaluate import dim_values
from ..limits import MAX_LITERAL
from ..memory import all_metrics
from ..metrics import ALL_METRICS, METRICS
from ..precision import Precision
from ..results import Result
from ..spec import Spec

MAX_POINTS = 100_000  # a grid: evaluated and printed in about 2 s and 200 MB (10^6 took 16 s and 1.5 GB)
CHECKED_POINTS = 2_000
_GEOMETRIC = re.compile(r"^(\d+)\.\.(\d+)x(\d+)$")
_RANGE = re.compile(r"^(\d+):(\d+)(?::(\d+))?$")


def parse_values(text: str) -> list[int]:
    return bounded(_values(text), text)


def _values(text: str) -> list[int]:
    """'1,2,4' | '512:8192:512' | '1024..131072x2' -> positive integers."""
    t = text.replace("_", "").replace(" ", "")
    if m := _GEOMETRIC.match(t):
        start, stop, factor = map(int, m.groups())
        if start < 1 or factor < 2 or stop < start:
            raise SpecError(f"{text!r}: a geometric series needs 1 <= start <= stop and a factor >= 2")
        out = [start]
        while out[-1] * factor <= stop:
            out.append(out[-1] * factor)
        return out
    if m := _RANGE.match(t):
        start, stop, step = int(m[1]), int(m[2]), int(m[3] or 1)
        if start < 1 or step < 1 or stop < start:
            raise SpecError(f"{text!r}: a range needs 1 <= start <= stop and a step >= 1")
        if (stop - start) // step + 1 > MAX_POINTS:
            raise SpecError(f"{text!r}: more than {MAX_POINTS:,} values")
        return list(range(start, stop + 1, step))
    try:
        values = [int(v) for v in t.split(",")]
    except ValueError:
        raise SpecError(f"{text!r}: expected a list (1,2,4), a range (512:8192:512) or a series (1024..131072x2)") from None
    if any(v < 1 for v in values):
        raise SpecError(f"{text!r}: sizes must be positive integers")
    return values


def bounded(values: list[int], text: str) -> list[int]:
    """`values`, each a size below 10^18 as every size symcost reads (a grid is int64)."""
    if any(v >= MAX_LITERAL for v in values):
        raise SpecError(f"{text!r}: sizes must be below 10^18")
    return values


@dataclass(repr=False)
class Sweep(Result):
    """Metrics at every point of a grid of sizes (exact integers), with the invalid points and why."""

    spec: Spec
    convention: str
    varied: dict[str, list[int]]  # each varied dim's values, in --vary order
    fixed: dict[str, int]  # every other dim
    columns: dict[str, np.ndarray]  # varied dims and metrics, one entry per grid point
    checked: int  # grid points whose constraints were checked
    invalid: dict[int, str]  # grid point index -> why its sizes are not valid (its metrics mean nothing)

    @property
    def points(self) -> int:
        return len(next(iter(self.columns.values())))

    def to_dict(self) -> dict:
        from ..render.explore import sweep_data

        return sweep_data(self)

    def text(self, width: int | None = None) -> str:
        from ..render.explore import render_sweep

        return render_sweep(self, "table", width)

    def summary(self):
        grid = " x ".join(f"{k} ({len(v)})" for k, v in self.varied.items())
        return f"{self.spec.name}: {grid}", [("points", f"{self.points:,}"), ("invalid", f"{len(self.invalid):,}"),
                                            ("metrics", ", ".join(k for k in self.columns if k not in self.varied))]

    def to_pandas(self):
        """One row per point: the varied dims, the metrics, and `invalid` (the reason, or None)."""
        from ..results import frame

        return frame([p if "invalid" in p else p | {"invalid": None} for p in self.to_dict()["points"]])


def sweep(
    spec: Spec,
    vary: Mapping[str, Sequence[int]],
    metrics: Sequence[str] = ("params", "forward"),
    values: Mapping[str, int] | None = None,
    convention: str = "pytorch",
    components: bool = False,
    precision: Precision = Precision(),
) -> Sweep:
    """Evaluate `metrics` at every point of the grid `vary` (other dims: defaults and `values`).

    With `components`, also each component's metric under `component:PATH:METRIC` keys
    (parameters and FLOPs only).
    """
    dims = spec.dimset
    for name in list(vary) + list(values or {}):
        if name not in dims:
            raise SpecError(f"{name}: no such dim; declared dims: {', '.join(d.name for d in dims.items)}")
    for metric in metrics:
        if metric not in ALL_METRICS:
            raise SpecError(f"metric {metric}: expected one of {', '.join(ALL_METRICS)}", param="metric")
    points = int(np.prod([len(v) for v in vary.values()], dtype=object))
    if points > MAX_POINTS:
        raise SpecError(f"the grid has {points:,} points; the limit is {MAX_POINTS:,}")
    # Derived dims that are varied or set become free symbols (their values win).
    given = set(vary) | set(values or {})
    derivation = derive(spec, convention, keep=[d.name for d in dims.items if d.definition is not None and d.name in given])
    if rate := next((name for name in vary if dims[name].rate), None):
        raise SpecError(f"vary {rate}: a rate, not a size; sweep varies sizes (set a rate with `{rate}=0.1`)", param="vary")
    at = dim_values(derivation, values)
    rates = {s: v for s, v in at.items() if s in dims.rates}  # substituted: the grid is integers only
    fixed = dims.plain({s: v for s, v in at.items() if str(s) not in vary})
    grid = np.meshgrid(*(np.asarray(v, dtype=np.int64) for v in vary.values()), indexing="ij")
    columns = {name: axis.ravel() for name, axis in zip(vary, grid)}
    checked, invalid = _check(derivation, columns, values or {})
    available = all_metrics(derivation, precision)
    exprs = {m: available[m] for m in metrics}
    if components:
        for node in derivation.nodes:
            for m in metrics:
                if m in METRICS:
                    exprs[f"component:{node.path}:{m}"] = node.cost.metrics(tuned=True)[m]
    for key, e in exprs.items():
        columns[key] = Vectorized(e.xreplace(rates), fixed)(columns)
    return Sweep(spec, derivation.convention.name, {k: list(v) for k, v in vary.items()}, fixed, columns, checked,
                 invalid)


def _check(derivation, columns: dict[str, np.ndarray], values: Mapping[str, int]) -> tuple[int, dict[int, str]]:
    """Run evaluate's checks at every point, or at an even sample of CHECKED_POINTS; an
    invalid point is reported with its reason (the rest are still computed)."""
    n = len(next(iter(columns.values()))) if columns else 1
    picks = range(n) if n <= CHECKED_POINTS else np.unique(np.linspace(0, n - 1, CHECKED_POINTS).astype(np.int64))
    reasons: dict[tuple, str | None] = {}
    invalid = {}
    for i in picks:
        point = {name: int(col[i]) for name, col in columns.items()}
        key = tuple(point.values())
        if key not in reasons:
            try:
                dim_values(derivation, {**values, **point})
                reasons[key] = None
            except SpecError as e:
                reasons[key] = e.reason
        if reasons[key] is not None:
            invalid[int(i)] = reasons[key]
    return len(picks), invalid

