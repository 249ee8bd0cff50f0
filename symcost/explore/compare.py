"""compare: two specs side by side at their sizes — what each holds, what each computes per
token, what each needs in memory (weights and cache per token, at a precision), and the
ratio B / A — optionally across a range of one dim both declare."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import sympy

from .. import symbols
from ..derive import derive
from ..errors import SpecError
from ..evaluate import Evaluation, evaluate
from ..memory import Precision, memory_metrics
from ..results import Result
from ..spec import Spec

BYTE_ROWS = ("weights_bytes", "kv_bytes_per_token")


def figures(e: Evaluation, memory: Mapping[str, sympy.Expr]) -> dict[str, Fraction]:
    """Per-input figures, exact: FLOPs per token (or image), uses of each active weight, and
    the bytes of the weights and of each token's cache (`memory`: their closed forms)."""
    t, n = e.total, e.inputs
    uses = e.reuse(t)
    subst = {symbols.dim(k): v for k, v in e.dims.items()}  # evaluate has checked these sizes
    memory = {k: memory[k].xreplace(subst) for k in BYTE_ROWS}
    return {
        "params": Fraction(t["params"]),
        "active_params": Fraction(t["active_params"]),
        "forward_per_input": Fraction(t["forward"], n),
        "train_per_input": Fraction(t["train"], n),
        "uses_per_weight": Fraction(uses) if uses is not None else Fraction(0),
        "weights_bytes": Fraction(str(memory["weights_bytes"])),
        "kv_bytes_per_token": Fraction(str(memory["kv_bytes_per_token"])),
    }


@dataclass(repr=False)
class Comparison(Result):
    a: Spec
    b: Spec
    convention: str
    rows: list[tuple[dict[str, int], dict[str, Fraction], dict[str, Fraction]]]  # (varied dims, A, B)

    def to_dict(self) -> dict:
        from ..render.explore import compare_data

        return compare_data(self)

    def text(self, width: int | None = None) -> str:
        from ..render.explore import render_compare

        return render_compare(self, "text", width)

    def summary(self):
        from ..render.text import number

        point, fa, fb = self.rows[0]
        return f"{self.a.name} (A) vs {self.b.name} (B)", [(k, f"{number(fa[k])} vs {number(fb[k])}") for k in fa]


MAX_POINTS = 500  # each point is two exact evaluations, about 6 ms


def _split(values: Mapping[str, int], spec: Spec) -> dict[str, int]:
    return {k: v for k, v in values.items() if k in spec.dimset}


def compare(
    a: Spec,
    b: Spec,
    values: Mapping[str, int] | None = None,
    vary: tuple[str, Sequence[int]] | None = None,
    convention: str = "pytorch",
    precision: Precision = Precision(),
) -> Comparison:
    values = dict(values or {})
    for name in values:
        if name not in a.dimset and name not in b.dimset:
            raise SpecError(f"{name}: neither spec declares it", param="dims")
    if vary is not None and not (vary[0] in a.dimset and vary[0] in b.dimset):
        raise SpecError(f"vary {vary[0]}: both specs must declare it", param="vary")
    if vary is not None and len(vary[1]) > MAX_POINTS:
        raise SpecError(f"vary {vary[0]}: {len(vary[1]):,} sizes; compare evaluates each exactly, up to {MAX_POINTS:,} "
                        "(sweep takes larger grids)", param="vary")
    da, db = derive(a, convention), derive(b, convention)
    ma, mb = memory_metrics(da, precision), memory_metrics(db, precision)
    points = [{}] if vary is None else [{vary[0]: v} for v in vary[1]]
    rows = []
    for point in points:
        here = {**values, **point}
        rows.append((point, figures(evaluate(da, _split(here, a)), ma), figures(evaluate(db, _split(here, b)), mb)))
    return Comparison(a, b, convention, rows)
