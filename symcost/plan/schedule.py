"""The pipeline schedule: which repeat block a pipeline splits, how many of its layers each stage
holds (an even share, the first and last stages' counts given, or every stage's), which ranks hold the layers
before and after it, how many micro-batches a stage holds activations for at its peak, what it
sends, and the bubble.

Schedules (the ranks' op orders are replayed, one time unit an op, by tests/plan/test_schedule.py,
which checks every closed form here against them):
- 1f1b (Narayanan et al. 2021, Sec. 2.2); interleaved when v > 1 (Megatron-LM's schedule).
- zb-h1: zero bubble (Qi et al. 2024, "Zero Bubble Pipeline Parallelism"): the backward split into
  its input gradient (B) and weight gradient (W); 1F1B's order with each rank i putting off at
  most i + 1 weight passes, to fill the drain. A micro-batch is counted in flight from its forward
  until its weight pass (what W still reads is held): pp + 1 on every rank once m > pp.
- dualpipe (DeepSeek-AI 2024, DeepSeek-V3 report Sec. 3.2.1; the order of deepseek-ai/DualPipe's
  `step`): micro-batches fed from both ends; rank r holds stage r of one direction and stage
  pp - 1 - r of the other, so two stages' weights (2 L / pp layers, or the stage list's two), and
  pp + 1 stages' micro-batches in flight (pp - r of stage r, r + 1 of the other); both end ranks
  hold the embedding and the head. pp even, m >= 2 pp, even.
- dualpipev ("cut-in-half", Sea AI Lab; DualPipe's `DualPipeV`): 2 pp stages in a V, rank r
  holding stages r and 2 pp - 1 - r (L / pp layers), 2 pp + 1 stages' micro-batches in flight;
  the first rank holds the embedding and the head. m >= 2 pp.

The bubble, as a share of a rank's compute: (pp - 1) / (v m) for 1F1B; for the others the
published forms (DualPipe's README table: ZB1P (pp - 1)(F + B - 2W), DualPipe(V) (PP/2 - 1)(F&B +
B - 3W), B the full backward) with a forward, an input gradient and a weight gradient taking a third
of a micro-batch's stage time each, and F&B, the overlapped forward and backward, as their sum (the
overlap's gain not counted): (pp - 1) / (3 m), (pp - 2) / (3 m) and (pp - 1) / (3 m).
"""

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

NOTES = {
    "zb-h1": "schedule zb-h1: a micro-batch held from its forward until its weight-gradient pass, min(pp + 1, m) on "
             "every rank (each rank puts off at most its index + 1 weight passes)",
    "dualpipe": "schedule dualpipe: each rank holds two stages (stage r of one direction, pp - 1 - r of the other: "
                "their weights, gradients and optimizer states) and pp + 1 stages' micro-batches, runs each stage "
                "for half of them, and all-reduces its gradients with the mirror rank once a step",
    "dualpipev": "schedule dualpipev: 2 pp stages in a V, rank r holding stages r and 2 pp - 1 - r (the first rank "
                 "the embedding and the head) and 2 pp + 1 stages' micro-batches",
}


def names(ex: Execution) -> tuple[str, ...]:
    """The ranks a plan reports: the only one; the first and the last (a middle one with uneven stages); under
    DualPipe(V) the first (holding the embedding and the head; DualPipe's last rank mirrors it) and a middle one."""
    if ex.pp == 1:
        return ("only",)
    if ex.schedule == "dualpipe" and ex.listed:  # rank pp - 1 - r holds what rank r does
        return ("first",) + tuple(f"rank {r}" for r in range(1, ex.pp // 2))
    if ex.schedule in ("dualpipe", "dualpipev"):
        return ("first", "middle") if ex.pp > 2 or ex.schedule == "dualpipev" else ("first",)
    if ex.listed:  # of the middle ranks, those holding more layers than every rank before them: one is the most loaded
        ranks = [r for r in range(1, ex.pp - 1) if all(ex.stage_layers[r] > n for n in ex.stage_layers[1:r])]
        return ("first", "last") + tuple(f"rank {r}" for r in ranks)
    return ("first", "last") + (("middle",) if ex.uneven and ex.pp > 2 else ())


def rank(stage: str, ex: Execution) -> int:
    """The pipeline rank a stage's name stands for (a middle stage: the second rank)."""
    named = {"only": 0, "first": 0, "middle": 1, "last": ex.pp - 1}
    return named[stage] if stage in named else int(stage.split()[-1])


def holds(stage: str, ex: Execution) -> tuple[bool, bool]:
    """Whether a rank of `stage` holds the layers before the main repeat (with the embedding) and after it."""
    if stage == "only" or (stage == "first" and ex.schedule in ("dualpipe", "dualpipev")):
        return True, True
    return stage == "first", stage == "last"


def parts(ex: Execution) -> int:
    """Model stages the main repeat splits into when the split is even: one a rank, v under the interleaved
    schedule, two under DualPipeV (DualPipe's two a rank are copies of the pp stages)."""
    return ex.pp * (2 if ex.schedule == "dualpipev" else ex.virtual_stages)


def in_flight(stage: str, ex: Execution) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """Micro-batches a rank of `stage` holds activations for at its peak: (of its main-repeat layers, in units of
    a whole micro-batch over all of them; of the layers before the repeat; of those after it).

    1F1B: rank r starts pp - r - 1 forwards before its first backward, so the first rank holds min(pp, m), the
    last one. Interleaved with v chunks per rank: rank r warms up with 2(pp - r - 1) + (v - 1) pp chunk forwards,
    each holding L/(pp v) layers; the first rank's layers outside the repeat are counted for each of its chunk
    forwards in flight (a bound: only chunk 0 holds them). ZB-H1: min(pp + 1, m) on every rank, each held until
    its weight pass. DualPipe: pp + 1 stages' micro-batches of the rank's two, pp of them the embedding's
    direction's (rank r: pp - r micro-batches of its stage of one direction, r + 1 of the other's, as 1F1B's ranks
    r and pp - 1 - r hold them, and at once); DualPipeV: 2 pp + 1 of its two, 2 pp of them the first stage's (at the
    peak, each)."""
    if ex.pp == 1:
        return ONE, ONE, ONE
    if ex.schedule == "zb-h1":
        k = sympy.Min(PP + 1, M)
        return k, k, k
    if ex.schedule == "dualpipe" and ex.listed:  # stage r's pp - r micro-batches, stage pp - 1 - r's r + 1
        r, n = rank(stage, ex), ex.stage_layers
        mine, mirror = n[r], n[ex.pp - 1 - r]
        return sympy.Rational(mine * (ex.pp - r) + mirror * (r + 1), mine + mirror), PP, ONE
    if ex.schedule == "dualpipe":
        return (PP + 1) / 2, PP, ONE
    if ex.schedule == "dualpipev":
        return (2 * PP + 1) / 2, 2 * PP, ONE
    if ex.virtual_stages == 1:
        first = sympy.Min(PP, M)
        if stage not in ("first", "last"):  # rank r holds min(pp - r, m): the second the most a middle one holds
            return sympy.Min(PP - rank(stage, ex), M), ONE, ONE
        return (first, first, ONE) if stage == "first" else (ONE, ONE, ONE)
    chunks = sympy.Min(PP * V + PP - 1, M * V) if stage == "first" else sympy.Min((V - 1) * PP + 1, M * V)
    return chunks / V, (chunks if stage == "first" else ONE), ONE


def bubble(ex: Execution) -> sympy.Expr:
    """The pipeline bubble as a share of a rank's compute (the module's docstring says what it assumes)."""
    if ex.pp == 1:
        return sympy.Integer(0)
    return idle(ex.schedule, sympy.Integer(ex.pp), ex.virtual_stages) / ex.microbatches


def idle(schedule: str, pp, v: int = 1):
    """The bubble in micro-batches' compute (of a sympy or numpy `pp`): 1F1B's (pp - 1) / v, ZB-H1's (pp - 1) / 3,
    DualPipe's (pp - 2) / 3, DualPipeV's (pp - 1) / 3."""
    return {"1f1b": (pp - 1) / v, "zb-h1": (pp - 1) / 3, "dualpipe": (pp - 2) / 3, "dualpipev": (pp - 1) / 3}[schedule]


def runs(ex: Execution) -> sympy.Expr:
    """Micro-batches each layer a rank holds runs per step: all m, or m / 2 under DualPipe (each of a rank's two
    stages serves one direction's half)."""
    return M / 2 if ex.schedule == "dualpipe" else M


def sends(stage: str, ex: Execution) -> tuple[sympy.Expr, sympy.Expr]:
    """Activations sent to the next stage and gradients sent back, per step, from a rank of `stage` (none from a
    pipeline's ends: the first rank sends no gradient for its first chunk, the last no activation from its
    last). DualPipe's first rank is one direction's first stage and the other's last; DualPipeV's turns the
    V on its last rank, which sends on from one stage to its next with no link."""
    zero = sympy.Integer(0)
    if ex.schedule == "dualpipe":
        return (M / 2, M / 2) if stage == "first" else (M, M)
    if ex.schedule == "dualpipev":
        return (M, M) if stage == "first" or ex.pp == 2 else (2 * M, 2 * M)
    if ex.virtual_stages == 1:
        return {"first": (M, zero), "last": (zero, M)}.get(stage, (M, M))
    return {"first": (V * M, (V - 1) * M), "last": ((V - 1) * M, V * M)}.get(stage, (V * M, V * M))


def stage_layers(stage: str, ex: Execution, layers) -> sympy.Expr:
    """Layers of the main repeat one rank of `stage` holds: an even share (DualPipe's two stages), the first and
    last stages' counts given with the rest split evenly, or the stage list's."""
    if stage == "only":
        return layers
    if ex.listed:
        r, n = rank(stage, ex), ex.stage_layers
        return sympy.Integer(n[r] + (n[ex.pp - 1 - r] if ex.schedule == "dualpipe" else 0))
    if ex.schedule == "dualpipe":
        return 2 * layers / PP
    first, last = ex.first_stage_layers, ex.last_stage_layers
    if not ex.uneven:
        return layers / PP
    first = first if first is not None else (layers - last) / PP  # one side given: the rest split evenly
    last = last if last is not None else (layers - first) / PP
    return {"first": sympy.sympify(first), "last": sympy.sympify(last), "middle": (layers - first - last) / (PP - 2)}[stage]
