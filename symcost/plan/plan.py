"""Model x execution x system -> the plan: per-GPU memory on the most loaded rank,
communication by collective and dimension, time and cost.

Memory and communication are closed forms in the spec's dims and the execution's symbols
(tp, pp, dp, ep, cp, v, micro_batch, microbatches); each layer's share on a rank comes from
its own cost rules applied to the piece one tensor-parallel rank holds (rules.py), so a
rank's parameters, FLOPs and saved bytes are exact wherever the layer's rules are.
Time is never a measurement: it follows from an assumed MFU, or is a roofline bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import sympy

from ..components.base import Component, Ctx
from ..cost import total
from ..derive import Derivation, Site
from ..errors import SpecError
from ..memory import closer
from ..results import Result
from ..spec import Repeat
from . import collectives
from .execution import CP, DP, EP, MB, PP, RESERVED, TP, V, M, Execution, Run
from .rules import Rule, refusal, rule_of
from .system import Hardware

ONE = sympy.Integer(1)


@dataclass(frozen=True)
class Record:
    """One collective a rank takes part in, per optimizer step."""

    dim: str  # tp, sp, cp, pp, dp, ep
    collective: str  # all_reduce, all_gather, reduce_scatter, all_to_all, send_recv
    passes: str  # forward, backward, step
    path: str  # the layer (dotted spec path), or `weights`
    payload: sympy.Expr  # bytes of the tensor the collective is about (see collectives.py)
    calls: sympy.Expr  # per step on this rank
    group: sympy.Expr  # ranks in the collective
    note: str = ""  # why, where the collective is one implementation's choice

    @property
    def sent(self) -> sympy.Expr:
        """Bytes this rank sends per step."""
        return collectives.SENT[self.collective](self.payload, self.group) * self.calls


@dataclass(frozen=True)
class Piece:
    """One layer as one rank runs it: per micro-batch, per pass."""

    site: Site
    rule: Rule
    place: str  # pre (before the main repeat), block (inside it), post
    top: int  # index of its top-level item
    count: sympy.Expr  # passes per micro-batch on its stage
    params: sympy.Expr  # held by the rank (dense: not split by ep)
    expert_params: sympy.Expr  # held by the rank, split by ep
    saved: sympy.Expr  # bytes kept for backward (recomputation none or selective), SP and CP applied
    train: sympy.Expr  # FLOPs of the rank's piece, forward + backward, on its tokens
    recomputed: sympy.Expr  # FLOPs the rank re-runs under the execution's recomputation
    model: sympy.Expr  # train FLOPs of the whole layer (all ranks), the MFU numerator
    model_recomputed: sympy.Expr  # what the whole layer re-runs: with `model`, the HFU numerator
    comm: tuple[Record, ...] = ()

    @property
    def path(self) -> str:
        return ".".join(str(p) for p in self.site.where)


@dataclass(frozen=True)
class Stage:
    name: str  # first, last, or only
    weights: sympy.Expr  # parameters held (dense, expert) before ZeRO
    expert: sympy.Expr
    activations: sympy.Expr  # bytes, in-flight micro-batches included
    pieces: tuple[Piece, ...]
    comm: tuple[Record, ...]


@dataclass(frozen=True, repr=False)
class Plan(Result):
    name: str
    execution: Execution
    hardware: Hardware
    hardware_key: str
    stage: str  # the most loaded pipeline stage, whose rank is reported
    exprs: dict[str, sympy.Expr]  # per-GPU bytes and times, closed forms
    numbers: dict[str, object]
    comm: tuple[tuple[Record, object, object], ...]  # (record, payload, sent) at the plan's sizes
    notes: tuple[str, ...]
    fits: bool
    per_stage: dict[str, dict[str, object]]  # each pipeline stage's per-GPU figures
    convention: str
    values: dict  # the dims the plan was asked at
    roofline: list[dict]  # the most loaded stage's pieces: FLOPs, bytes moved, seconds, bound
    estimates: list  # published estimates beside the exact counts
    run: Run  # what the time and cost rest on

    def to_dict(self) -> dict:
        from ..render.plan import plan_data

        return plan_data(self)

    def text(self, width: int | None = None) -> str:
        from ..render.plan import plan_text

        return plan_text(self)

    def summary(self):
        from ..render.text import bytes_human

        n = self.numbers
        return f"{self.name} on {self.execution.gpus} x {self.hardware.name}", [
            ("per GPU", bytes_human(n["total_bytes"])),
            ("fits", "yes" if self.fits else "no"),
            ("step (assumed MFU)", f"{float(n['step_seconds']):.3g} s"),
        ]


def _ctx(site: Site, updates: dict) -> Ctx:
    """The site's context for one micro-batch on one tensor-parallel rank."""
    flow = site.ctx.flow
    if flow.embedding is not None and "vocab" in updates:  # a tied head reads the rank's table shard
        flow = replace(flow, embedding=(flow.embedding[0] / TP, flow.embedding[1]))
    return replace(site.ctx, batch=MB, flow=flow)


def _piece(site: Site, rule: Rule, place: str, top: int, count, ex: Execution) -> Piece:
    c: Component = site.component
    local = c.model_copy(update=rule.shard(c)) if rule.shard(c) else c
    ctx = _ctx(site, rule.shard(c))
    full_ctx = replace(site.ctx, batch=MB)
    parts = local.parts(ctx)
    held = total(parts.values())
    experts = parts[rule.experts].params if rule.experts and rule.experts in parts else sympy.Integer(0)
    mode = "selective" if ex.recompute == "selective" else "none"
    saved = local.saved(ctx).activations(ex.attention, mode)
    if ex.sequence_parallel:
        if rule.region in ("parallel", "vocab_out"):  # the saved input and output mask are sequence shards
            split = ctx.input_saved(c.dim) + local.output_mask(ctx)
            saved = saved - split + split / TP
        elif rule.region == "replicated":
            saved = saved / TP
    whole = c.parts(full_ctx)
    block = place == "block"
    # a cp rank runs its seq_len / cp tokens: every FLOP and saved byte of the layer, divided by cp
    return Piece(site, rule, place, top, count, held.params - experts, experts / EP, saved / CP, held.train / CP,
                 recomputed(parts, block, ex.recompute) / CP, total(whole.values()).train,
                 recomputed(whole, block, ex.recompute))


def recomputed(parts: dict, in_block: bool, mode: str) -> sympy.Expr:
    """Forward FLOPs a layer runs again in backward: its attention core (selective recomputation),
    all of it when it is inside a checkpointed repeat block (full)."""
    if mode == "selective":
        return sum((parts[k].forward for k in ("scores", "values") if k in parts), sympy.Integer(0))
    if mode == "full" and in_block:
        return total(parts.values()).forward
    return sympy.Integer(0)


def _tokens_bytes(site: Site, act) -> sympy.Expr:
    """Bytes of the stream one micro-batch carries at this layer's input, per cp rank."""
    return MB * site.ctx.seq_len * site.component.dim * act / CP


def _tp_comm(p: Piece, ex: Execution, act) -> list[Record]:
    """Megatron's f and g operators around a tensor-parallel region (Shoeybi et al. 2019, Fig. 3);
    under sequence parallelism each all-reduce is an all-gather plus a reduce-scatter (Korthikanti
    et al. 2022, Fig. 5), and backward all-gathers the sequence-split input again for the weight
    gradient (Megatron keeps only the shard)."""
    if ex.tp == 1 or p.rule.region == "replicated":
        return []
    region, grad_in = p.rule.region, p.site.ctx.flow.grad
    payload, calls, path = _tokens_bytes(p.site, act), p.count * M, p.path
    fwd_out = region in ("parallel", "vocab_in")  # the row-parallel exit / the table's partial sums
    bwd_in = region in ("parallel", "vocab_out") and grad_in  # the column-parallel entry's input gradient
    runs = 2 if ex.recompute == "full" and p.place == "block" else 1  # full recomputation reruns forward
    out = []
    if not ex.sequence_parallel:
        if fwd_out:
            out.append(Record("tp", "all_reduce", "forward", path, payload, calls * runs, TP))
        if bwd_in:
            out.append(Record("tp", "all_reduce", "backward", path, payload, calls, TP))
        return out
    if region in ("parallel", "vocab_out"):  # gather the sequence-split input
        out.append(Record("sp", "all_gather", "forward", path, payload, calls * runs, TP))
        out.append(Record("sp", "all_gather", "backward", path, payload, calls, TP, REGATHER))
        if grad_in:
            out.append(Record("sp", "reduce_scatter", "backward", path, payload, calls, TP))
    if fwd_out:
        out.append(Record("sp", "reduce_scatter", "forward", path, payload, calls * runs, TP))
        out.append(Record("sp", "all_gather", "backward", path, payload, calls, TP))
    return out


REGATHER = ("Megatron-LM keeps only the sequence shard of a region's input and all-gathers it again for the "
            "weight gradient (PyTorch's DTensor keeps the gathered input instead)")


def _other_comm(p: Piece, ex: Execution, act) -> list[Record]:
    c, calls, out = p.site.component, p.count * M, []
    if ex.cp > 1 and c.attends == "self":  # ring attention: keys and values go round, their gradients back
        kv = MB * p.site.ctx.seq_len / CP * 2 * c.n_kv / TP * c.d_head * act
        out.append(Record("cp", "send_recv", "forward", p.path, kv, calls * (CP - 1), ONE))
        out.append(Record("cp", "send_recv", "backward", p.path, kv, 2 * calls * (CP - 1), ONE))
    if ex.ep > 1 and c.routes_tokens:  # dispatch to the experts' ranks and combine back, each way
        routed = MB * p.site.ctx.seq_len / CP * c.top_k * c.dim * act
        out.append(Record("ep", "all_to_all", "forward", p.path, routed, 2 * calls, EP))
        out.append(Record("ep", "all_to_all", "backward", p.path, routed, 2 * calls, EP))
    return out


def _check(derivation: Derivation, ex: Execution, value, sites: list[tuple[Site, Rule]], main: int | None) -> None:
    spec = derivation.spec
    for name in RESERVED:
        if name in spec.dimset:
            raise spec.doc.error(("dims", name), f"dim {name!r} is an execution symbol of `plan`; rename it")
    for key, message in ex.problems():
        raise SpecError(f"{key}: {message}")
    if ex.ep > 1 and not any(s.component.routes_tokens for s, _ in sites):
        raise SpecError(f"ep {ex.ep}: the spec has no moe layer to split over expert-parallel ranks")
    seq = tokens_per_sequence(derivation, value)
    if seq % ex.cp:
        raise SpecError(f"seq_len {seq} does not split evenly over {ex.cp} ranks of context parallelism (cp)")
    if ex.sequence_parallel and (seq // ex.cp) % ex.tp:
        raise SpecError(f"a rank's {seq // ex.cp} tokens (seq_len / cp) do not split evenly over {ex.tp} ranks of "
                        "sequence parallelism (tp)")
    for site, rule in sites:
        for name, size in rule.divides(site.component):
            if value(size) % ex.tp:
                raise spec.doc.error(site.where + (name,), f"tp {ex.tp} does not divide {name} = {value(size)}"
                                     + ("; pad the vocabulary to a multiple of tp" if name == "vocab" else ""))
        if site.component.routes_tokens and value(site.component.experts) % ex.ep:
            raise spec.doc.error(site.where + ("experts",), f"ep {ex.ep} does not divide {value(site.component.experts)} experts")
    if ex.pp > 1:
        if main is None:
            found = sum(isinstance(item, Repeat) for item in spec.layers)
            raise SpecError(f"pp > 1 splits the one top-level `repeat` block over pipeline stages; this spec has "
                            f"{found or 'none'}" + (" (write them as one, or plan with pp 1)" if found else ""))
        layers = value(spec.layers[main].repeat)
        where = ("layers", main, "repeat")
        if not ex.uneven and (layers < ex.pp * ex.virtual_stages or layers % (ex.pp * ex.virtual_stages)):
            raise spec.doc.error(where, f"{layers} repeated blocks do not split evenly into pp x v = "
                                        f"{ex.pp * ex.virtual_stages} pipeline stages; give first_stage_layers "
                                        "and last_stage_layers for an uneven split")
        if ex.uneven:
            shares = {n: value(stage_layers(n, ex, layers).xreplace(ex.values()))
                      for n in ("first", "last") + (("middle",) if ex.pp > 2 else ())}
            if any(not (v.is_Integer and v >= 1) for v in shares.values()) or (
                    ex.pp == 2 and shares["first"] + shares["last"] != layers):
                raise spec.doc.error(where, f"{layers} repeated blocks do not split into stages of "
                                            + ", ".join(f"{n} {v}" for n, v in shares.items())
                                            + f" over pp = {ex.pp} (each a whole number of layers, at least one)")


def _main_repeat(derivation: Derivation) -> int | None:
    """The top-level repeat block a pipeline splits: the only one."""
    found = [i for i, item in enumerate(derivation.spec.layers) if isinstance(item, Repeat)]
    return found[0] if len(found) == 1 else None


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


@dataclass(frozen=True)
class Formulas:
    """A plan's closed forms for one set of discrete choices (schedule, ZeRO, recomputation, sequence
    parallelism): symbolic in the dims and in tp, pp, dp, ep, cp, v, micro_batch, microbatches."""

    stages: tuple[Stage, ...]
    per_stage: dict[str, dict[str, sympy.Expr]]  # stage -> bytes per GPU by kind, and total
    records: dict[str, tuple[Record, ...]]  # stage -> its rank's collectives per step
    model_flops: sympy.Expr  # per step, the whole model, no recomputation
    hardware_flops: sympy.Expr  # per step, recomputation included
    closed: object  # expression -> its closed form (activation bytes and derived dims substituted)


def layer_sites(derivation: Derivation, tp: int, cp: int = 1) -> list[tuple[Site, Rule]]:
    """Each layer's site and rule; a type without a rule is refused when tp > 1, a layer carrying
    a state along the sequence when cp > 1, and a shared repeat (its per-GPU weights would be
    counted once per pass)."""
    _refuse_shared(derivation.spec)
    out = []
    for site in derivation.sites:
        if not isinstance(site.component, Component):
            continue
        if tp > 1 and (why := refusal(site.component)):
            raise derivation.spec.doc.error(site.where, f"{why}; plan this spec with tp 1")
        if cp > 1 and site.component.sequential:
            raise derivation.spec.doc.error(site.where, f"{SEQUENTIAL.format(site.component.kind)}; plan this spec "
                                            "with cp 1")
        out.append((site, rule_of(site.component)))
    return out


# context parallelism gives each rank a share of every sequence, which a state carried from token
# to token would make the ranks run one after another: no rule here models that
SEQUENTIAL = ("{} layers carry a state from token to token, so context parallelism's ranks would run one after "
              "another (no rule here models that)")


def _refuse_shared(spec) -> None:
    for where, item in spec.walk(containers=True):
        if isinstance(item, Repeat) and item.shared:
            raise spec.doc.error(where + ("shared",), "plan does not split shared weights over GPUs yet (each "
                                 "stage would hold them all); plan the spec unshared, or see `symcost memory`")


def formulas(derivation: Derivation, ex: Execution, sites: list[tuple[Site, Rule]]) -> Formulas:
    main = _main_repeat(derivation)
    layers = derivation.spec.layers[main].repeat if main is not None else ONE
    act = ex.precision.bytes("activations")
    pieces = []
    for site, r in sites:
        top = site.where[1]
        place = "pre" if main is None or top < main else "block" if top == main else "post"
        count = site.count / layers if place == "block" else site.count  # per layer of the main repeat
        pieces.append(_piece(site, r, place, top, count, ex))

    held_bytes = ex.precision.state_bytes(ex.optimizer)
    w_bytes, g_bytes = ex.precision.bytes("weights"), ex.precision.bytes("grads")
    names = ("first", "last") + (("middle",) if ex.uneven and ex.pp > 2 else ()) if ex.pp > 1 else ("only",)
    stages = tuple(_stage(n, pieces, derivation, ex, stage_layers(n, ex, layers), act) for n in names)
    closed = closer(derivation, act)
    dense_group, expert_group = DP * CP, DP * CP / EP
    split = lambda zero_stage, s: (s.weights / dense_group + s.expert / expert_group if ex.zero >= zero_stage
                                   else s.weights + s.expert)
    per_stage, records = {}, {}
    for s in stages:
        per = {"weights_bytes": w_bytes * split(3, s), "gradient_bytes": g_bytes * split(2, s),
               "optimizer_bytes": held_bytes * split(1, s), "activation_bytes": s.activations}
        per["total_bytes"] = sum(per.values())
        per_stage[s.name] = {k: closed(e) for k, e in per.items()}
        records[s.name] = (s.comm + tuple(_dp_comm(s, ex, w_bytes, g_bytes, dense_group, expert_group))
                           + tuple(_pp_comm(s, ex, act)))
    model = closed(sum(p.model * p.site.count for p in pieces) * M * DP)  # site.count: passes in the whole model
    hardware = closed(sum((p.model + p.model_recomputed) * p.site.count for p in pieces) * M * DP)
    return Formulas(stages, per_stage, records, model, hardware, closed)


def plan(derivation: Derivation, ex: Execution, hardware: Hardware, hardware_key: str = "",
         values: Mapping[str, int] | None = None, run: Run = Run()) -> Plan:
    from ..evaluate import dim_values
    from .time import timing

    spec = derivation.spec
    subst = dim_values(derivation, values)
    value = lambda e: sympy.sympify(e).xreplace(subst)
    sites = layer_sites(derivation, ex.tp, ex.cp)
    _check(derivation, ex, value, sites, _main_repeat(derivation))
    f = formulas(derivation, ex, sites)
    execution_values = ex.values()
    at = lambda e: sympy.sympify(e).xreplace(subst).xreplace(execution_values)
    loaded = max(f.per_stage, key=lambda n: at(f.per_stage[n]["total_bytes"]))
    stage = next(s for s in f.stages if s.name == loaded)
    exprs = dict(f.per_stage[loaded])
    exprs["model_flops_per_step"] = f.model_flops
    exprs["hardware_flops_per_step"] = f.hardware_flops
    exprs["rank_flops_per_step"] = f.closed(sum((p.train + p.recomputed) * p.count for p in stage.pieces) * M)
    numbers = {k: at(e) for k, e in exprs.items()}
    comm = tuple((r, at(f.closed(r.payload)), at(f.closed(r.sent))) for r in f.records[loaded])
    timed, notes, rows = timing(ex, hardware, f.stages, numbers, comm, at, f.closed, run,
                                tokens_per_step=int(ex.sequences * tokens_per_sequence(derivation, value)),
                                hardware_flops=numbers["hardware_flops_per_step"])
    numbers |= timed
    from .estimates import estimates

    published = estimates(derivation, ex, stage, numbers, at, in_flight(loaded, ex)[0])
    fits = numbers["total_bytes"] <= hardware.memory_bytes
    from ..memory import dropout_notes, recompute_notes

    notes = (_notes(ex, loaded, derivation) + recompute_notes(derivation, ex.recompute)
             + dropout_notes(derivation, ex.attention, ex.recompute) + notes)
    return Plan(spec.name, ex, hardware, hardware_key, loaded, exprs, numbers, comm, tuple(notes), bool(fits),
                {n: {k: at(e) for k, e in d.items()} for n, d in f.per_stage.items()}, derivation.convention.name,
                dict(values or {}), rows, published, run)


def tokens_per_sequence(derivation: Derivation, value) -> int:
    spec = derivation.spec
    return int(value(spec.input_dim("seq_len", 1))) if "seq_len" in spec.dimset else 1


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


def _stage(name: str, pieces: list[Piece], derivation: Derivation, ex: Execution, layers, act) -> Stage:
    """What one pipeline rank holds: its share of the repeat and the layers before it (first stage)
    or after it (last stage), with the activations of the micro-batches in flight, and its collectives."""
    mine = [replace(p, count=p.count * layers) if p.place == "block" else p for p in pieces
            if p.place == "block" or (p.place == "pre" and name in ("first", "only"))
            or (p.place == "post" and name in ("last", "only"))]
    mine = [replace(p, comm=tuple(_tp_comm(p, ex, act) + _other_comm(p, ex, act))) for p in mine]
    block_flight, edge_flight = in_flight(name, ex)
    weights = sum((p.params * p.count for p in mine), sympy.Integer(0))
    expert = sum((p.expert_params * p.count for p in mine), sympy.Integer(0))
    if name == "last" and ex.pp > 1:
        weights += _tied_copy(mine)
    flight = lambda p: block_flight if p.place == "block" else edge_flight if p.place == "pre" else ONE
    if ex.recompute == "full":
        acts = _full_recompute(name, mine, derivation, ex, layers, flight)
    else:
        acts = sum((p.saved * p.count * flight(p) for p in mine), sympy.Integer(0))
    comm = tuple(r for p in mine for r in p.comm)
    return Stage(name, weights, expert, acts, tuple(mine), comm)


def _tied_copy(pieces: list[Piece]) -> sympy.Expr:
    """Megatron keeps a copy of a tied word embedding on the last stage, for the head (Shoeybi et
    al. 2019; its gradient is all-reduced with the first stage's)."""
    for p in pieces:
        c = p.site.component
        if c.holds_logits and c.tied:
            return c.vocab * c.dim / TP
    return sympy.Integer(0)


def _full_recompute(name, mine, derivation: Derivation, ex: Execution, layers, flight) -> sympy.Expr:
    """Each pass of a top-level repeat keeps only its input (memory.saved_bytes), per micro-batch in
    flight; layers outside the blocks keep what they keep."""
    blocks = {int(b.path.split("/")[1]): b for b in derivation.blocks}
    walker_batch = derivation.spec.input_dim("batch", 1)
    per_micro = lambda e: sympy.cancel(e * MB / walker_batch)
    acts = sympy.Integer(0)
    for p in mine:
        if p.top not in blocks:
            acts += p.saved * p.count * flight(p)
    for top, b in blocks.items():
        inside = [p for p in mine if p.top == top]
        if not inside:
            continue
        passes = layers if inside[0].place == "block" else b.count
        kept = per_micro(b.later_bytes) / CP / (TP if ex.sequence_parallel else 1)
        acts += kept * passes * flight(inside[0])
        if b.then is not None and name in ("last", "only"):
            acts += per_micro(b.then[1]) / CP
    return acts


def _dp_comm(stage: Stage, ex: Execution, w_bytes, g_bytes, dense_group, expert_group) -> list[Record]:
    """Gradient synchronisation over the data-parallel ranks (cp ranks hold the same weights, so
    they join it): one all-reduce per step without ZeRO or with stage 1 (Megatron's distributed
    optimizer: a reduce-scatter and an all-gather of the updated weights); a reduce-scatter per
    micro-batch at stage 2; at stage 3 the weights are all-gathered for forward and again for
    backward, every micro-batch (PyTorch FSDP, reshard after forward)."""
    out = []
    for kind, params, group, n in (("dense", stage.weights, dense_group, ex.dp * ex.cp),
                                   ("expert", stage.expert, expert_group, ex.dp * ex.cp // ex.ep)):
        if n == 1 or params == 0:
            continue
        grads, weights, where = params * g_bytes, params * w_bytes, f"weights ({kind})"
        if ex.zero == 0:
            out.append(Record("dp", "all_reduce", "step", where, grads, ONE, group))
        elif ex.zero == 1:
            out += [Record("dp", "reduce_scatter", "step", where, grads, ONE, group),
                    Record("dp", "all_gather", "step", where, weights, ONE, group)]
        elif ex.zero == 2:
            out += [Record("dp", "reduce_scatter", "backward", where, grads, M, group),
                    Record("dp", "all_gather", "step", where, weights, ONE, group)]
        else:
            out += [Record("dp", "all_gather", "forward", where, weights, M, group),
                    Record("dp", "all_gather", "backward", where, weights, M, group),
                    Record("dp", "reduce_scatter", "backward", where, grads, M, group)]
    return out


def _pp_comm(stage: Stage, ex: Execution, act) -> list[Record]:
    """Activations to the next stage in forward, their gradients back in backward: per
    micro-batch and chunk, from every rank but the pipeline's ends (the first rank receives no
    gradient for its first chunk; the last sends no activation from its last)."""
    if ex.pp == 1:
        return []
    site = next(p.site for p in stage.pieces if p.place == "block")
    payload = MB * site.ctx.seq_len * site.ctx.flow.width * act / CP / (TP if ex.sequence_parallel else 1)
    fwd = {"first": V * M, "middle": V * M}.get(stage.name, (V - 1) * M)
    bwd = {"last": V * M, "middle": V * M}.get(stage.name, (V - 1) * M)
    out = [Record("pp", "send_recv", "forward", "stage boundary", payload, fwd, ONE)] if fwd != 0 else []
    if ex.virtual_stages > 1 or stage.name != "first":
        out.append(Record("pp", "send_recv", "backward", "stage boundary", payload, bwd, ONE))
    return out


def _notes(ex: Execution, loaded: str, derivation: Derivation) -> list[str]:
    notes = [
        f"per GPU: the {'most loaded pipeline rank (' + loaded + ' stage)' if ex.pp > 1 else 'rank'}; weights "
        f"{ex.precision.dtype('weights')}, gradients {ex.precision.dtype('grads')}, {ex.optimizer} states "
        f"{ex.precision.dtype('optimizer')}" + (", fp32 master weights" if ex.precision.master_weights else "")
        + f", ZeRO stage {ex.zero}",
        f"activations ({ex.precision.dtype('activations')}): each layer's exact saved-for-backward rule applied to "
        f"the piece one tp rank runs; attention {ex.attention}; recomputation {ex.recompute}",
        "total: weights, gradients, optimizer states and activations; not included: communication buffers, the "
        "logits' gradients and other transients, allocator fragmentation",
    ]
    if ex.cp > 1:
        notes.append("context parallelism: each rank keeps and computes its seq_len/cp share of every layer "
                     "(activations and FLOPs divided by cp; ring attention's keys and values in flight are "
                     "transient); modelled, not verified against PyTorch")
    if ex.ep > 1:
        notes.append("expert parallelism: all-to-all volumes assume balanced routing (each expert gets its share)")
    if ex.pp > 1 and ex.virtual_stages > 1:
        notes.append("interleaved pipeline: the first rank's layers outside the repeat are counted for each chunk in "
                     "flight (a bound)")
    if ex.dp > 1 and any(getattr(s.component, "scores_batch", False) for s in derivation.sites):
        notes.append("contrastive head: each rank scores its own micro-batch (micro_batch x micro_batch logits); "
                     "CLIP's training gathers every rank's embeddings first (logits of micro_batch x global batch, "
                     "an all-gather of both sides' vectors), which is not modelled")
    return notes
