"""plan/schedule.py: each pipeline schedule's closed forms (micro-batches in flight, the bubble, the sends) against
the schedule replayed op by op, and what each schedule makes a plan hold, against 1F1B's stages.

The replays take one time unit for a forward (F), one for an input gradient (B) and one for a weight gradient (W):
1F1B runs B and W together; ZB-H1 splits them, each rank putting off at most (its index + 1) weight passes;
DualPipe and DualPipeV run the op order of deepseek-ai/DualPipe's `step` (its eight phases' counts, written out
below from the published code), an overlapped forward-and-backward taking the sum of the two."""

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch
from symcost.plan.execution import Execution
from symcost.plan.schedule import bubble, in_flight, sends

INF = float("inf")


# --- 1F1B and its interleaved form: the warm-up rule ------------------------------------------------------------

def warm_up_peaks(pp: int, v: int, m: int) -> list[int]:
    """Peak chunk forwards in flight per rank under Megatron-LM's schedules (1F1B; interleaved
    with v chunks): rank r runs warm-up forwards, then one forward and one backward in turn."""
    peaks = []
    for rank in range(pp):
        total = m * v
        warm = min(pp - rank - 1 if v == 1 else 2 * (pp - rank - 1) + (v - 1) * pp, total)
        held = peak = 0
        done_f = 0
        for _ in range(warm):
            held += 1
            done_f += 1
            peak = max(peak, held)
        while done_f < total:  # steady state: forward then backward
            held += 1
            done_f += 1
            peak = max(peak, held)
            held -= 1
        peaks.append(peak)
    return peaks


@given(pp=st.integers(2, 16), v=st.integers(1, 4), m=st.integers(1, 64))
@settings(max_examples=80, deadline=None)
def test_in_flight_matches_the_simulated_schedule(pp, v, m):
    if v > 1:
        m = pp * max(1, m // pp)  # the interleaved schedule needs m a multiple of pp
    peaks = warm_up_peaks(pp, v, m)
    ex = Execution(pp=pp, virtual_stages=v, global_batch=m)
    for stage, rank in (("first", 0), ("last", pp - 1)):
        block, _, _ = in_flight(stage, ex)
        assert (block * v).xreplace(ex.values()) == peaks[rank], (stage, pp, v, m)
    assert peaks[0] == max(peaks)  # the first rank holds the most


# --- 1F1B and ZB-H1 timed -------------------------------------------------------------------------------------

def one_f_one_b(pp: int, m: int, split: bool):
    """Each rank, whenever free, runs a ready backward, else a forward while fewer than pp - rank micro-batches
    await their backward, else (split: ZB-H1) a weight pass, one at the latest once rank + 1 are put off.
    Returns (time, each rank's peak of micro-batches held from forward to weight pass, its forwards sent on, its
    gradients sent back)."""
    f_done, b_done = {}, {}
    free, nf, nb, nw = [0] * pp, [0] * pp, [0] * pp, [0] * pp
    peak = [0] * pp
    t = 0
    while any(n < m for n in nw):
        for i in range(pp):
            if free[i] > t:
                continue
            c = nb[i]
            after = b_done.get((i + 1, c), INF) if i < pp - 1 else f_done.get((i, c), INF)
            if c < nf[i] and after <= t and (not split or nb[i] - nw[i] < i + 1):
                nb[i] += 1
                free[i] = b_done[(i, c)] = t + (1 if split else 2)
                nw[i] += 0 if split else 1
                continue
            c = nf[i]
            if c < m and nf[i] - nb[i] < pp - i and (i == 0 or f_done.get((i - 1, c), INF) <= t):
                nf[i] += 1
                free[i] = f_done[(i, c)] = t + 1
                peak[i] = max(peak[i], nf[i] - nw[i])
                continue
            if nw[i] < nb[i]:
                nw[i] += 1
                free[i] = t + 1
        t += 1
    fwd = [m if i < pp - 1 else 0 for i in range(pp)]
    return max(free), peak, fwd, fwd[::-1]


@given(pp=st.integers(2, 10), m=st.integers(1, 40))
@settings(max_examples=60, deadline=None)
def test_1f1b_s_bubble_and_sends_match_the_simulated_schedule(pp, m):
    end, peak, fwd, bwd = one_f_one_b(pp, m, split=False)
    ex = Execution(pp=pp, global_batch=m)
    assert bubble(ex) == sympy.Rational(end - 3 * m, 3 * m)
    assert peak[0] == in_flight("first", ex)[0].xreplace(ex.values()) and peak[-1] == 1
    for stage, rank in (("first", 0), ("last", pp - 1)):
        assert [c.xreplace(ex.values()) for c in sends(stage, ex)] == [fwd[rank], bwd[rank]]


@given(pp=st.integers(2, 10), extra=st.integers(0, 30))
@settings(max_examples=60, deadline=None)
def test_zb_h1_s_bubble_and_in_flight_match_the_simulated_schedule(pp, extra):
    m = pp + extra  # zb-h1 needs pp micro-batches
    end, peak, _, _ = one_f_one_b(pp, m, split=True)
    ex = Execution(pp=pp, global_batch=m, schedule="zb-h1")
    assert bubble(ex) == sympy.Rational(end - 3 * m, 3 * m)  # (pp - 1)(F + B - W): a third of 1F1B's
    for stage in ("first", "last"):
        assert {x.xreplace(ex.values()) for x in in_flight(stage, ex)} == {max(peak)}
    assert set(peak) == {min(pp + 1, m)}  # every rank holds the same


# --- DualPipe and DualPipeV: deepseek-ai/DualPipe's step, replayed -----------------------------------------------

def dual_programs(ranks: int, chunks: int, v: bool) -> list[list[tuple]]:
    """Each rank's ops in the order DualPipe.step (v False) or DualPipeV.step runs them: (kind, phase), kind F, B
    (a full backward), Bz (the input gradient, its weight pass put off), W, or FB (an overlapped forward of one
    phase and full backward of the other); phases as the code numbers them, before its second-half swap."""
    out = []
    for r in range(ranks):
        if v:
            h, half, middle = r, ranks, r == ranks - 1
            n4 = chunks - 2 * ranks + r + 1
        else:
            h, half = min(r, ranks - 1 - r), ranks // 2
            middle = h == half - 1
            n4 = chunks // 2 - ranks + h + 1
        rest = half - h - 1
        ops = [("F", 0)] * (2 * rest)  # step 1
        ops += [("F", 0), ("F", 1)] * (h + 1)  # step 2
        ops += [("Bz", 1), ("W", None), ("F", 1)] * rest  # step 3
        for i in range(n4):  # step 4, the main one
            ops += [("F", 0), ("B", 1)] if i == 0 and middle else [("FB", (0, 1))]
            ops += [("FB", (1, 0))]
        ops += [("B", 1), ("FB", (1, 0))] * rest  # step 5
        zb = False
        for i in range(h + 1):  # step 6: the second half put off their weight passes
            zb = zb or (i == (h + 1) // 2 and h % 2 == 1)
            ops.append(("Bz" if zb else "B", 1))
            zb = zb or (i == (h + 1) // 2 and h % 2 == 0)
            ops.append(("Bz" if zb else "B", 0))
        ops += [("W", None), ("Bz", 0)] * rest  # step 7
        ops += [("W", None)] * (h + 1)  # step 8
        out.append(ops)
    return out


def dual_replay(ranks: int, chunks: int, v: bool):
    """Runs each rank's ops in order, each as soon as its inputs are there. A micro-batch's path: DualPipe's two
    directions over ranks 0..R-1 and back; DualPipeV's one V over 2R stages (rank r holds stages r and 2R-1-r).
    Returns (time, each rank's busy time, its peak of stage micro-batches held from forward to backward, the
    (direction 0 or first stage, the other) split at that peak, each of the two's own most, forwards sent to
    another rank, gradients sent to another rank)."""
    progs = dual_programs(ranks, chunks, v)
    length = 2 * ranks if v else ranks

    def where(r, phase):  # actual phase -> (path, position on it)
        if v:
            return 0, (r if phase == 0 else 2 * ranks - 1 - r)
        return phase, (r if phase == 0 else ranks - 1 - r)

    def owner(path, pos):
        if v:
            return pos if pos < ranks else 2 * ranks - 1 - pos
        return pos if path == 0 else ranks - 1 - pos

    swap = [0 if v else int(r >= ranks // 2) for r in range(ranks)]
    done, pc, free, busy = {}, [0] * ranks, [0] * ranks, [0] * ranks
    nf, nb = [[0, 0] for _ in range(ranks)], [[0, 0] for _ in range(ranks)]
    held, peak, split = [[0, 0] for _ in range(ranks)], [0] * ranks, [None] * ranks
    most = [[0, 0] for _ in range(ranks)]
    fwd, bwd = [0] * ranks, [0] * ranks

    def parts(op):
        kind, phase = op
        return [("F", phase[0]), ("B", phase[1])] if kind == "FB" else [(kind, phase)]

    def ready(r, op):
        t = free[r]
        for kind, phase in parts(op):
            if kind == "W":
                continue
            a = phase ^ swap[r]
            path, pos = where(r, a)
            if kind == "F":
                t = max(t, done.get(("F", path, pos - 1, nf[r][a]), INF) if pos > 0 else 0)
            else:
                t = max(t, done.get(("B", path, pos + 1, nb[r][a]), INF) if pos < length - 1
                        else done.get(("F", path, pos, nb[r][a]), INF))
        return t

    for _ in range(sum(map(len, progs))):
        t, r = min((ready(r, progs[r][pc[r]]), r) for r in range(ranks) if pc[r] < len(progs[r]))
        assert t < INF, "the schedule deadlocked"
        op = progs[r][pc[r]]
        pc[r] += 1
        end = t
        for kind, phase in parts(op):
            if kind == "W":
                end += 1
                continue
            a = phase ^ swap[r]
            path, pos = where(r, a)
            if kind == "F":
                c = nf[r][a]
                nf[r][a] += 1
                end += 1
                done[("F", path, pos, c)] = end
                held[r][a] += 1
                most[r][a] = max(most[r][a], held[r][a])
                fwd[r] += pos < length - 1 and owner(path, pos + 1) != r
                if sum(held[r]) > peak[r]:
                    peak[r], split[r] = sum(held[r]), tuple(held[r])
            else:
                c = nb[r][a]
                nb[r][a] += 1
                end += 1 if kind == "Bz" else 2
                done[("B", path, pos, c)] = end
                held[r][a] -= 1
                bwd[r] += pos > 0 and owner(path, pos - 1) != r
        busy[r] += end - t
        free[r] = end
    assert all(n == [chunks // (1 if v else 2)] * 2 for n in nf + nb)  # every chunk through every stage
    return max(free), busy, peak, split, [tuple(x) for x in most], fwd, bwd


@pytest.mark.parametrize("v", [False, True], ids=["dualpipe", "dualpipev"])
@given(ranks=st.integers(1, 8), extra=st.integers(0, 12))
@settings(max_examples=40, deadline=None)
def test_dualpipe_s_in_flight_bubble_and_sends_match_its_replayed_step(v, ranks, extra):
    if not v:
        ranks, extra = 2 * ranks, 2 * (extra // 2)  # DualPipe pairs ranks and splits the chunks in two
    m = 2 * ranks + extra
    end, busy, peak, split, most, fwd, bwd = dual_replay(ranks, m, v)
    work = 3 * m * (2 if v else 1)  # each rank: m stage-chunks (DualPipe), 2m (DualPipeV)
    assert set(busy) == {work}
    if ranks == 1:
        return  # one rank holds the whole V: no pipeline to plan
    ex = Execution(pp=ranks, global_batch=m, schedule="dualpipev" if v else "dualpipe")
    at = lambda x: x.xreplace(ex.values())
    assert bubble(ex) == sympy.Rational(end - work, work)  # (PP/2 - 1)(F&B + B - 3W), PP the stages
    block, pre, post = in_flight("first", ex)
    assert set(peak) == {2 * at(block)}  # the rank's two stages' micro-batches, every rank
    assert split[0] == (at(pre), at(post))  # the embedding's direction's and the head's, at the peak
    assert split == most  # each stage at its own most at the rank's peak: any stage sizes peak there
    if not v:  # rank r holds what 1F1B's ranks r and pp - 1 - r hold, at once
        assert split == [(ranks - r, r + 1) for r in range(ranks)]
    for stage, ranks_of in (("first", [0]), ("middle", range(1, ranks - 1) if not v else range(1, ranks))):
        if ranks_of:
            assert [at(c) for c in sends(stage, ex)] == [max(fwd[r] for r in ranks_of), max(bwd[r] for r in ranks_of)]


# --- what a schedule makes a plan hold ------------------------------------------------------------------------

PLANNED = ("weights_bytes", "activation_bytes", "gradient_bytes", "optimizer_bytes")


@pytest.mark.parametrize("pp,layout", [(2, {}), (4, {}), (4, dict(tp=2, sequence_parallel=True, dp=2, zero=1)),
                                       (2, dict(tp=2, dp=2, zero=3, recompute="full")),
                                       (4, dict(dp=2, zero=2, recompute="selective"))])
def test_dualpipe_s_first_rank_holds_1f1b_s_first_and_last(pp, layout):
    """Its two stages are 1F1B's first and last (their weights, gradients and optimizer states, at any tp, sequence
    parallelism, ZeRO stage and recomputation), and its in-flight micro-batches are theirs too: pp + 1 stages' of
    which pp the embedding's and one the head's."""
    m = 2 * pp * layout.get("dp", 1)
    one = symcost.plan(arch("llama"), pp=pp, global_batch=m, **layout).per_stage
    dual = symcost.plan(arch("llama"), pp=pp, global_batch=m, schedule="dualpipe", **layout)
    for k in PLANNED:
        assert dual.per_stage["first"][k] == one["first"][k] + one["last"][k], k
    copies = [(r, payload) for r, payload, _ in dual.comm if r.dim == "pp" and r.collective == "all_reduce"]
    assert [payload for _, payload in copies] == [dual.numbers["gradient_bytes"]]  # the two copies' gradients summed
    assert any(n.startswith("schedule dualpipe: each rank holds two stages") for n in dual.notes)


def test_dualpipe_s_ranks_over_a_stage_list_hold_1f1b_s_two_ranks():
    """Over uneven stages (DeepSeek-V3's 58 MoE layers do not split evenly over 16) rank r holds stages r and
    pp - 1 - r, as 1F1B's ranks r and pp - 1 - r hold them: weights, gradients, optimizer states, activations."""
    stages = [2, 3, 4, 1]
    one = symcost.plan(arch("llama"), {"n_layers": 10}, stage_layers=stages, global_batch=8).per_stage
    dual = symcost.plan(arch("llama"), {"n_layers": 10}, stage_layers=stages, global_batch=8, schedule="dualpipe")
    assert set(dual.per_stage) == {"first", "rank 1"}
    for k in PLANNED:
        assert dual.per_stage["first"][k] == one["first"][k] + one["last"][k], k
        assert dual.per_stage["rank 1"][k] == one["rank 1"][k] + one["rank 2"][k], k


@pytest.mark.parametrize("pp", [2, 4])
def test_dualpipev_s_first_rank_holds_1f1b_s_first_and_last_at_twice_the_stages(pp):
    m = 4 * pp
    one = symcost.plan(arch("llama"), pp=2 * pp, global_batch=m).per_stage
    v = symcost.plan(arch("llama"), pp=pp, global_batch=m, schedule="dualpipev")
    for k in PLANNED:
        assert v.per_stage["first"][k] == one["first"][k] + one["last"][k], k


def test_zb_h1_holds_one_micro_batch_more_than_1f1b():
    one = symcost.plan(arch("llama"), pp=4, global_batch=8).per_stage["first"]
    zb = symcost.plan(arch("llama"), pp=4, global_batch=8, schedule="zb-h1").per_stage["first"]
    assert zb["activation_bytes"] * 4 == one["activation_bytes"] * 5 and zb["weights_bytes"] == one["weights_bytes"]


def test_zb_h1_runs_from_pp_micro_batches_as_its_replay_does():
    """ZB-H1 needs m >= pp (the replay above runs from m = pp); plan had refused pp <= m < 2 pp as DualPipe's."""
    p = symcost.plan(arch("llama"), pp=4, global_batch=4, schedule="zb-h1")
    one = symcost.plan(arch("llama"), pp=4, global_batch=4).per_stage["first"]
    assert p.per_stage["first"]["activation_bytes"] == one["activation_bytes"]  # min(pp + 1, m) = m = min(pp, m)


@pytest.mark.parametrize("args,message", [
    (["--schedule", "dualpipe", "--pp", "3", "--global-batch", "6"], "pp 3 must be even"),
    (["--schedule", "dualpipe", "--pp", "4", "--global-batch", "6"], "needs at least 2 x pp = 8 micro-batches"),
    (["--schedule", "dualpipe", "--pp", "2", "--global-batch", "5"], "an even number; 5 given"),
    (["--schedule", "dualpipev", "--pp", "4", "--global-batch", "4"], "needs at least 2 x pp = 8"),
    (["--schedule", "zb-h1", "--pp", "4", "--global-batch", "3"], "zb-h1 needs at least pp = 4 micro-batches"),
    (["--schedule", "dualpipe", "--global-batch", "4"], "orders a pipeline's stages: give pp > 1"),
    (["--schedule", "dualpipev", "--pp", "2", "--virtual-stages", "2", "--global-batch", "8"], "is not interleaved"),
    (["--schedule", "dualpipe", "--pp", "2", "--global-batch", "8", "--first-stage-layers", "10"],
     "an even split of the layers or every stage's (stage_layers)"),
    (["--schedule", "dualpipev", "--global-batch", "8", "--stage-layers", "16,16"],
     "dualpipev is planned with an even"),
    (["--schedule", "dualpipev", "--pp", "3", "--global-batch", "6"], "do not split evenly into 2 x pp = 6"),
    (["--schedule", "dualpipev", "--gpus", "8", "--search", "--stage-layers", "16,16"],
     "dualpipev is planned with an even"),
    (["--schedule", "dualpipe", "--gpus", "6", "--search"], "and takes schedule dualpipe"),
    (["--gpus", "8", "--search", "--stage-layers", "16,15"], "stage_layers 16,15 hold 31 layers; the repeat has 32"),
])
def test_what_a_schedule_cannot_run_is_one_line(cli, args, message):
    r = cli("plan", arch("llama"), *args)
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.stderr
