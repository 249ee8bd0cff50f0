"""The pipeline schedule: which repeat block a pipeline splits, how many of its layers each stage
holds (an even share, or the first and last stages' counts given), and how many micro-batches a
stage holds activations for at its peak under 1F1B or the interleaved schedule."""

from __future__ import annotations

import sympy

from ..derive import Derivation
from ..spec import Repeat
from .execution import ONE, PP, V, M, Execution


def main_repeat(derivation: Derivation, value=None) -> int | None:
    """The top-level repeat block a pipeline splits: the only one or, of several (DeepSeek-V3's 3 dense layers
    then 58 MoE ones), the one of most passes at the sizes `value` evaluates (the spec's defaults without it),
    the last of equals. The layers before it sit on the first stage and those after it on the last, as the
    embedding and the head do (`others` says which)."""
    found = [i for i, item in enumerate(derivation.spec.layers) if isinstance(item, Repeat)]
    if len(found) < 2:
        return found[0] if found else None
    if value is None:
        from ..evaluate import dim_values

        subst = dim_values(derivation)
        value = lambda e: sympy.sympify(e).xreplace(subst)
    passes = {i: value(derivation.spec.layers[i].repeat) for i in found}
    return max(reversed(found), key=lambda i: passes[i])


def placed(top: int, main: int | None) -> str:
    """Where the top-level item `top` runs beside the repeat `main` a pipeline splits: before it ("pre", on the
    first stage), in it ("block", every stage its share) or after it ("post", on the last)."""
    return "pre" if main is None or top < main else "block" if top == main else "post"


def others(derivation: Derivation, main: int) -> list[int]:
    """The top-level repeats beside the one a pipeline splits."""
    return [i for i, item in enumerate(derivation.spec.layers) if isinstance(item, Repeat) and i != main]

def in_flight(stage: str, ex: Execution) -> tuple[sympy.Expr, sympy.Expr]:
    """(micro-batches whose block activations a stage holds at its peak, in units of a whole
    micro-batch over the rank's L/pp layers; the same for its layers outside the repeat).

    1F1B (Narayanan et al. 2021, Sec. 2.2): rank r starts pp - r - 1 forwards before its first
    backward, so the first rank holds min(pp, m), the last one. Interleaved with v chunks per rank
    (Megatron-LM's schedule): rank r warms up with 2(pp - r - 1) + (v - 1) pp chunk forwards, each
    holding L/(pp v) layers; the first rank's layers outside the repeat are counted for each of its
    chunk forwards in flight (a bound: only chunk 0 holds them)."""
    if ex.pp == 1:
        return ONE, ONE
    if ex.virtual_stages == 1:
        first, last = sympy.Min(PP, M), ONE
        if stage == "middle":  # the second rank: the most a middle stage holds
            return sympy.Min(PP - 1, M), ONE
        return (first, first) if stage == "first" else (last, ONE)
    chunks = sympy.Min(PP * V + PP - 1, M * V) if stage == "first" else sympy.Min((V - 1) * PP + 1, M * V)
    return chunks / V, (chunks if stage == "first" else ONE)

def stage_layers(stage: str, ex: Execution, layers) -> sympy.Expr:
    """Layers of the main repeat one rank of `stage` holds: an even share, or the counts given."""
    if stage == "only":
        return layers
    first, last = ex.first_stage_layers, ex.last_stage_layers
    if not ex.uneven:
        return layers / PP
    first = first if first is not None else (layers - last) / PP  # one side given: the rest split evenly
    last = last if last is not None else (layers - first) / PP
    return {"first": sympy.sympify(first), "last": sympy.sympify(last), "middle": (layers - first - last) / (PP - 2)}[stage]
