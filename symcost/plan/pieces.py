"""The pieces of a plan: each layer as one tensor-parallel rank runs it (its own cost rules applied
to the shard its type's Rule says a rank holds, per micro-batch, per cp share), and each pipeline
stage's pieces, weights, activations in flight and collectives."""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy

from ..components.base import Component, Ctx
from ..cost import Cost, total
from ..derive import Derivation, Site
from ..memory import logits_bytes
from ..precision import recomputed_activations, recomputed_cores, recomputed_layers
from ..spec import Repeat, Tied
from .comm import Record, other_comm, tp_comm
from .execution import CP, DP, EP, MB, TP, Execution
from .rules import Rule, refusal, rule_of
from .schedule import holds, in_flight


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
    trainable: sympy.Expr  # of params, those a fine-tune trains (all of them under full training)
    expert_trainable: sympy.Expr
    packed: sympy.Expr  # of params, those stored quantized, and their bytes with their constants
    packed_bytes: sympy.Expr
    expert_packed: sympy.Expr  # of expert_params, likewise
    expert_packed_bytes: sympy.Expr
    saved: sympy.Expr  # bytes kept for backward (recomputation none or selective), SP and CP applied
    train: sympy.Expr  # FLOPs of the rank's piece, forward + backward, on its tokens
    recomputed: sympy.Expr  # FLOPs the rank re-runs under the execution's recomputation
    model: sympy.Expr  # train FLOPs of the whole layer (all ranks), the MFU numerator
    model_recomputed: sympy.Expr  # what the whole layer re-runs: with `model`, the HFU numerator
    passes: sympy.Expr  # in the whole model, per micro-batch (the site's runs in this piece's context)
    phase: str | None = None  # a main-repeat layer whose first pass differs: `first` (that pass) or `later`
    comm: tuple[Record, ...] = ()
    logits: sympy.Expr = sympy.Integer(0)  # an LM head's logits a micro-batch makes on the rank (elements)
    written: sympy.Expr = sympy.Integer(0)  # bytes its forward would keep for backward without recomputation
    routed: sympy.Expr = sympy.Integer(0)  # of train + recomputed, its routed experts' FLOPs (balanced routing)

    @property
    def path(self) -> str:
        return ".".join(str(p) for p in self.site.where)

# a piece's weights, as held: what a second pass of a shared layer (an MTP module's head) does not hold again
HELD = ("params", "expert_params", "trainable", "expert_trainable", "packed", "packed_bytes", "expert_packed",
        "expert_packed_bytes")

@dataclass(frozen=True)
class Stage:
    name: str  # first, last, or only
    weights: sympy.Expr  # parameters held (dense, expert) before ZeRO
    expert: sympy.Expr
    trainable: sympy.Expr  # of those, the ones a fine-tune trains (dense, expert)
    expert_trainable: sympy.Expr
    packed: sympy.Expr  # of the dense ones, those stored quantized, and their bytes
    packed_bytes: sympy.Expr
    expert_packed: sympy.Expr  # of the expert ones, likewise
    expert_packed_bytes: sympy.Expr
    activations: sympy.Expr  # bytes, in-flight micro-batches included
    pieces: tuple[Piece, ...]
    comm: tuple[Record, ...]

def rank_ctx(site: Site, updates: dict, ctx: Ctx | None = None) -> Ctx:
    """The site's context (or `ctx`, one of its passes') for one micro-batch on one tensor-parallel rank."""
    ctx = site.ctx if ctx is None else ctx
    flow = ctx.flow
    if flow.embedding is not None and "vocab" in updates:  # a tied head reads the rank's table shard
        flow = replace(flow, embedding=(flow.embedding[0] / TP, flow.embedding[1]))
    return replace(ctx, batch=MB, flow=flow)

def pieces_of(derivation: Derivation, site: Site, rule: Rule, place: str, top: int, layers,
              ex: Execution) -> list[Piece]:
    """The site's pieces, one per context its passes run in; inside the main repeat, per layer of it
    (the first pass apart where it differs: a gradient starts inside it)."""
    site = padded(site, rule, ex)
    if place != "block":
        return [piece(replace(site, ctx=ctx), rule, place, top, n, n, ex) for ctx, n in site.runs]
    if not site.later or ex.pp == 1:  # every pass on one stage: each context's share of the layers
        return [piece(replace(site, ctx=ctx), rule, place, top, n / layers, n, ex) for ctx, n in site.runs]
    # a gradient that starts in the repeat's first pass gives two runs: one pass, then the others
    one_pass = site.count / layers
    if len(site.runs) != 2 or any(sympy.expand(n - k) != 0 for (_, n), k in zip(site.runs, (one_pass,
                                                                                             one_pass * (layers - 1)))):
        raise derivation.spec.doc.error(site.where, "a gradient starts inside a repeat nested in the pipeline's "
                                        "repeat, which plan does not split into stages")
    (first, once), (later, rest) = site.runs
    return [piece(replace(site, ctx=first), rule, place, top, once, once, ex, "first"),
            piece(replace(site, ctx=later), rule, place, top, once, rest, ex, "later")]

def padded(site: Site, rule: Rule, ex: Execution) -> Site:
    """The site with its vocabulary padded to a multiple of vocab_multiple x tp (execution.py), where
    tensor parallelism splits the layer by vocabulary; a tied head's table too."""
    c = site.component
    if ex.vocab_multiple is None or "vocab" not in dict(rule.divides(c)):
        return site
    m = ex.vocab_multiple * TP
    pad = lambda v: sympy.ceiling(v / m) * m

    def ctx(context: Ctx) -> Ctx:
        table = context.flow.embedding
        return context if table is None else replace(context, flow=replace(context.flow, embedding=(pad(table[0]),
                                                                                                   table[1])))
    return replace(site, component=c.model_copy(update={"vocab": pad(c.vocab)}), ctx=ctx(site.ctx),
                   later=tuple((ctx(context), n) for context, n in site.later))

def piece(site: Site, rule: Rule, place: str, top: int, count, passes, ex: Execution, phase=None) -> Piece:
    c: Component = site.component
    local = c.model_copy(update=rule.shard(c)) if rule.shard(c) else c
    ctx = rank_ctx(site, rule.shard(c))
    full_ctx = replace(site.ctx, batch=MB)
    parts = local.parts(ctx)
    held = total(parts.values())
    experts = parts[rule.experts] if rule.experts and rule.experts in parts else Cost()
    kept = local.saved(ctx)

    whole = c.recompute_part in recomputed_layers(ex.recompute)  # a recompute list checkpoints the layer whole

    def saved(mode: str) -> sympy.Expr:
        if whole and mode != "none":  # its input only (a sequence shard under sequence parallelism)
            return ctx.input_saved(c.in_width()) / (TP if ex.sequence_parallel else 1)
        out = kept.activations(ex.attention, mode) + (kept.activation_checkpoint if recomputed_activations(mode)
                                                      else 0)
        if ex.sequence_parallel:
            if rule.region in ("parallel", "vocab_out"):  # the saved input and output mask are sequence shards
                split = ctx.input_saved(c.dim) + local.output_mask(ctx)
                return out - split + split / TP
            if rule.region == "replicated":
                return out / TP
        return out
    full = c.parts(full_ctx)
    block = place == "block"
    # a cp rank runs its seq_len / cp tokens: every FLOP and saved byte of the layer, divided by cp
    return Piece(site, rule, place, top, count, held.params - experts.params, experts.params / EP,
                 held.trainable - experts.trainable, experts.trainable / EP, held.packed - experts.packed,
                 held.packed_bytes - experts.packed_bytes, experts.packed / EP, experts.packed_bytes / EP,
                 saved("none" if ex.recompute == "full" else ex.recompute) / CP, held.train / CP,
                 recomputed(parts, block, ex.recompute, whole) / CP, total(full.values()).train,
                 recomputed(full, block, ex.recompute, whole), passes, phase, written=saved("none") / CP,
                 routed=(experts.train + (experts.forward if (ex.recompute == "full" and block) or whole else 0)) / CP,
                 logits=ctx.tokens * local.vocab / CP if c.holds_logits else sympy.Integer(0))

def recomputed(parts: dict, in_block: bool, mode: str, whole: bool = False) -> sympy.Expr:
    """Forward FLOPs a layer runs again in backward: all of it when it is inside a checkpointed repeat block (full)
    or checkpointed whole (`whole`: a recompute list names its part), else its attention core where recomputed
    (selective, or a list naming attention) and an MLP's activation where a list names it (elementwise: none under
    pytorch; a MoE's experts' not counted under `full`, inside their part)."""
    if whole or (mode == "full" and in_block):
        return total(parts.values()).forward
    again = ("scores", "values") * recomputed_cores(mode) + ("activation",) * recomputed_activations(mode)
    return sum((parts[k].forward for k in again if k in parts), sympy.Integer(0))

def layer_sites(derivation: Derivation, tp: int, cp: int = 1, training: bool = True) -> list[tuple[Site, Rule]]:
    """Each layer's site and rule, training the MTP modules' too (each site run `depth` times); a type without a rule
    (`training`: a rule that trains) is refused when tp > 1, a layer carrying a state along the sequence when
    cp > 1, and a shared repeat (its per-GPU weights would be counted once per pass)."""
    _refuse_shared(derivation.spec)
    if tp > 1 and adapted(derivation):
        raise derivation.spec.doc.error(("finetune",), ADAPTERS)
    out = []
    depth = derivation.spec.mtp.depth if derivation.spec.mtp is not None and training else 0
    # training, the MTP modules' layers, on the stage of the head they share (their embedding and head: the
    # model's); serving leaves them out (and says so)
    mtp = [site.times(depth) for site in derivation.mtp_sites if site.in_mtp and depth]
    for site in (*derivation.sites, *mtp):
        if not isinstance(site.component, Component):
            continue
        # an MTP layer of a type with no rule (its plain linear projection) runs whole on each tp rank
        if tp > 1 and (why := refusal(site.component, training)) and not (
                site.in_mtp and type(site.component).parallel is None):
            raise derivation.spec.doc.error(site.where, f"{why}; run this spec with tp 1")
        if cp > 1 and (why := cp_refusal(site.component)):
            raise derivation.spec.doc.error(site.where, f"{why}; run this spec with cp 1")
        out.append((site, rule_of(site.component)))
    return out

def adapted(derivation: Derivation) -> bool:
    """Whether a fine-tune adds adapters (which tp does not split here)."""
    return derivation.tuned and derivation.spec.finetune.adapted

def quantized(derivation: Derivation) -> bool:
    """Whether QLoRA stores weights in 4 or 8 bits (which ZeRO-3 does not shard here)."""
    return derivation.total.packed != 0

# frameworks split an adapter with its base linear (NeMo: A whole and B by columns on a column-parallel
# linear, the reverse on a row-parallel one); peft adds its layers after DTensor has split nothing, so no
# PyTorch route checks such a rule here
ADAPTERS = ("plan does not split adapters by tensor parallelism; plan this fine-tune with tp 1 (ZeRO or FSDP "
            "shard it over dp)")

# context parallelism gives each rank a share of every sequence, which a state carried from token
# to token would make the ranks run one after another: no rule here models that
SEQUENTIAL = ("{} layers carry a state from token to token, so context parallelism's ranks would run one after "
              "another (no rule here models that)")
# a layer that reads other positions needs them passed between cp ranks: planned only where a rule says what
NO_RING = ("{} layers read other tokens, which context parallelism's ranks would have to pass each other (no rule "
           "here says what; attention and mla have one)")

def cp_refusal(component) -> str | None:
    """Why cp cannot split this layer's sequence, else None."""
    if component.sequential:
        return SEQUENTIAL.format(component.kind)
    if component.mixes_tokens and component.ring() is None:
        return NO_RING.format(component.kind)
    return None

def _refuse_shared(spec) -> None:
    for where, item in spec.walk(containers=True):  # the MTP modules' too: plan and serve leave them out (noted)
        if isinstance(item, Repeat) and item.shared and where[0] == "layers":
            raise spec.doc.error(where + ("shared",), "plan does not split shared weights over GPUs yet (each "
                                 "stage would hold them all); plan the spec unshared, or see `symcost memory`")
        if isinstance(item, Tied):
            raise spec.doc.error(where + ("tied",), "plan does not split tied weights over GPUs yet (every stage "
                                 "that uses them would hold them, and their gradients be summed across stages); "
                                 "see `symcost memory`")

def tokens_per_sequence(derivation: Derivation, value) -> int:
    spec = derivation.spec
    return int(value(spec.input_dim("seq_len", 1))) if "seq_len" in spec.dimset else 1

def stage_of(name: str, pieces: list[Piece], derivation: Derivation, ex: Execution, layers, act) -> Stage:
    """What one pipeline rank holds: its share of the repeat and the layers before it (first stage)
    or after it (last stage), with the activations of the micro-batches in flight, and its collectives."""
    first, last = holds(name, ex)
    # a layer's first pass (where it differs) runs on the first rank, the others on every rank
    runs = {None: layers, "first": 1 if first else 0, "later": layers - 1 if first else layers}
    mine = [replace(p, count=p.count * runs[p.phase]) if p.place == "block" else p for p in pieces
            if p.place == "block" or (p.place == "pre" and first) or (p.place == "post" and last)]
    mine = [replace(p, comm=tuple(tp_comm(p, ex, act) + other_comm(p, ex, act))) for p in mine if p.count != 0]
    flights = dict(zip(("block", "pre", "post"), in_flight(name, ex)))
    held = lambda field: sum((getattr(p, field) * p.count for p in mine), sympy.Integer(0))
    weights, trainable = held("params"), held("trainable")
    if name == "last" and ex.pp > 1:
        tied, finetune = _tied_copy(mine), derivation.spec.finetune
        tuning = finetune.tuning("embedding") if finetune is not None else None
        weights, trainable = weights + tied, trainable + (tied if tuning is None or not tuning.frozen else 0)
    flight = lambda p: flights[p.place]
    if ex.recompute == "full":
        acts = _full_recompute((first, last), mine, derivation, ex, layers, flight)
    else:
        acts = sum((p.saved * p.count * flight(p) for p in mine), sympy.Integer(0))
    comm = tuple(r for p in mine for r in p.comm)
    return Stage(name, weights, held("expert_params"), trainable, held("expert_trainable"), held("packed"),
                 held("packed_bytes"), held("expert_packed"), held("expert_packed_bytes"), acts, tuple(mine), comm)

def _tied_copy(pieces: list[Piece]) -> sympy.Expr:
    """Megatron keeps a copy of a tied word embedding on the last stage, for the head (Shoeybi et
    al. 2019; its gradient is all-reduced with the first stage's)."""
    for p in pieces:
        c = p.site.component
        if c.holds_logits and c.tied:
            return c.vocab * c.dim / TP
    return sympy.Integer(0)

def _full_recompute(ends, mine, derivation: Derivation, ex: Execution, layers, flight) -> sympy.Expr:
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
        kept = per_micro(b.later_bytes) * passes
        if inside[0].place != "block" or ends[0]:  # its first pass keeps its own input
            kept += per_micro(b.input_bytes - b.later_bytes)
        acts += kept / CP / (TP if ex.sequence_parallel else 1) * flight(inside[0])
        if b.then is not None and ends[1]:
            acts += per_micro(b.then[1]) / CP
    return acts


def transient(stage: Stage, ex: Execution, w_bytes) -> sympy.Expr:
    """What a rank holds at the start of a micro-batch's backward beyond its resident bytes, as `memory`'s peak
    counts it (memory.backward_transient; an estimate): the logits of its LM head shard and two fp32 gradients of
    them; under full recomputation one pass of its repeat re-materialised; under ZeRO-3 the largest layer's
    weights gathered whole (FSDP's unit: here one layer of the spec; all of it from the host when offloaded)."""
    out = logits_bytes(sum((p.logits for p in stage.pieces), sympy.Integer(0)))
    if ex.recompute == "full":  # a pass: the repeat's first (where it differs, phase "first") or a later one
        one = lambda phase: sum((p.saved for p in stage.pieces if p.place == "block" and p.phase in (None, phase)),
                                sympy.Integer(0))
        out += sympy.Max(one("first"), one("later"))
    if ex.zero == 3 and stage.pieces:  # its own shard resident, unless the weights are offloaded to the host
        own = 0 if ex.offload == "all" else 1 / (DP * CP)
        out += sympy.Max(*(p.params + p.expert_params for p in stage.pieces)) * w_bytes * (1 - own)
    return out
