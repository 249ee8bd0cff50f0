"""compare: two specs side by side at their sizes — what each holds, what each computes per
token, and the ratio B / A — optionally across a range of one dim both declare."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..derive import derive
from ..errors import SpecError
from ..evaluate import Evaluation, evaluate
from ..spec import Spec

ROWS = ("params", "active_params", "forward_per_input", "train_per_input", "uses_per_weight")


def figures(e: Evaluation) -> dict[str, Fraction]:
    """Per-input figures, exact: FLOPs per token (or image) and uses of each active weight."""
    t, n = e.total, e.inputs
    uses = e.reuse(t)
    return {
        "params": Fraction(t["params"]),
        "active_params": Fraction(t["active_params"]),
        "forward_per_input": Fraction(t["forward"], n),
        "train_per_input": Fraction(t["train"], n),
        "uses_per_weight": Fraction(uses) if uses is not None else Fraction(0),
    }


@dataclass
class Comparison:
    a: Spec
    b: Spec
    convention: str
    rows: list[tuple[dict[str, int], dict[str, Fraction], dict[str, Fraction]]]  # (varied dims, A, B)


def _split(values: Mapping[str, int], spec: Spec) -> dict[str, int]:
    return {k: v for k, v in values.items() if k in spec.dimset}


def compare(
    a: Spec,
    b: Spec,
    values: Mapping[str, int] | None = None,
    vary: tuple[str, Sequence[int]] | None = None,
    convention: str = "pytorch",
) -> Comparison:
    values = dict(values or {})
    for name in values:
        if name not in a.dimset and name not in b.dimset:
            raise SpecError(f"--set {name}: neither spec declares it")
    if vary is not None and not (vary[0] in a.dimset and vary[0] in b.dimset):
        raise SpecError(f"--vary {vary[0]}: both specs must declare it")
    da, db = derive(a, convention), derive(b, convention)
    points = [{}] if vary is None else [{vary[0]: v} for v in vary[1]]
    rows = []
    for point in points:
        here = {**values, **point}
        rows.append((point, figures(evaluate(da, _split(here, a))), figures(evaluate(db, _split(here, b)))))
    return Comparison(a, b, convention, rows)
