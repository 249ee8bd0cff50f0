"""A model served on one replica of tp x pp GPUs (a serving engine's layout, vLLM's by default), or of tp x dp
GPUs under expert parallelism (each data-parallel rank its own attention and sequences, the routed experts split
whole over them all).

Exact, per GPU of the most loaded pipeline stage:
- weights: each layer's share of a tensor-parallel rank (plan's pieces, the same rules), in the
  weights' dtype or as the spec's `quantization` stores its linears (quantization.py); the token
  table and LM head padded to a multiple of 64 rows, as vLLM pads them (where tp divides 64); what
  a rule `widens` widened (key/value heads fewer than tp: one on each rank, as vLLM replicates them);
- the KV cache of one sequence: each layer's decode cache on the rank (keys and values of its
  kv_heads / tp heads; MLA's compressed latent and rope key, whole on every rank, as vLLM keeps it;
  a window's last tokens; a recurrent state, fixed per sequence), its tokens rounded up to whole
  blocks of `block_size` as vLLM's paged allocator holds them (a window layer keeps
  min(window - 1, that) tokens, as transformers does, not rounded: vLLM holds the blocks that cover
  the window, a block or two more);
- capacity: vLLM's arithmetic. The KV pool is memory_utilization x the GPU's memory, less the
  weights and the activation reserve; blocks = floor(pool / (block_size x bytes per token));
  max concurrency = floor(pool / one sequence's bytes) = floor(blocks / blocks per sequence)
  for full attention (vLLM's "maximum concurrency", rounded down).

Estimates, labelled as such:
- the activation reserve: the largest one layer's prefill working set over
  max_num_batched_tokens tokens (the rule memory.prefill_transient uses), split by tp — vLLM measures its own by
  a profiling run;
- time bounds: rooflines, max(FLOPs / (tp x peak), bytes / (tp x bandwidth)) per replica, which no
  engine beats, the FLOPs under the `kernel` convention (causal attention's kept scores only):
  prefill reads every weight once; a decode step reads the weights its tokens use (a MoE's k
  experts: a floor, as a batch touches more) and each sequence's cache; communication is not
  counted in them (a bound stays one). TPOT is the step bound at the generation's mean context, which
  for a convex bound is at most the mean of the steps' bounds;
- predictions, where an efficiency file has an entry for the hardware (plan/efficiency.py): each phase's
  FLOPs and bytes at the entry's achieved shares of the peak and the bandwidth, then its tensor- and
  expert-parallel collectives at the link's bandwidth (Clock.comm), one after the other; and the throughput
  of a batch prefilled and decoded to its end (Clock.throughput), bound and predicted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction

import sympy

from .. import symbols
from ..components.base import Component
from ..cost import total
from ..derive import CONTEXT, Derivation, derive, mtp_notes
from ..errors import DoesNotFit, SpecError
from ..limits import finite, whole
from ..precision import Precision
from ..results import Result
from .offload import offload, routed
from .speculative import acceptance_of, tokens_per_step

FP8_FORMATS = ("fp8", "fp8-channel", "fp8-block", "mxfp8")  # W8A8: the matmuls run in FP8
MAX_TOKENS = 10**9  # a prompt or an output, in tokens
MEMORY_NOTE = ("GPU memory: the catalog's datasheet figure x 10^9 bytes (the driver reports a little more or "
               "less: give --hardware-file with your card's measured figure)")


@dataclass(frozen=True)
class Serving:
    """How the model is served: the replica's layout and the engine's settings (vLLM's defaults)."""

    tp: int = 1
    pp: int = 1
    dp: int = 1  # data-parallel attention ranks of a replica, each its own tp group (vLLM's --data-parallel-size)
    ep: bool = False  # the routed experts split whole over the replica's tp x dp GPUs (--enable-expert-parallel)
    gpus: int | None = None  # GPUs in all: a multiple of tp x pp x dp (replicas); default one replica
    memory_utilization: float = 0.9
    block_size: int = 16
    prompt: int | None = None  # tokens; default: the spec's seq_len
    output: int = 256
    lengths: tuple[tuple[int, int, int], ...] = ()  # (prompt, output, count) of a mix of requests, for prompt/output
    concurrency: int | None = None  # sequences a replica decodes together; default: as many as fit
    prefix: int = 0  # prompt tokens every request shares (a system prompt), cached once (vLLM's prefix caching)
    offload_experts: bool = False  # a MoE's routed experts in host memory, a cache of them on the GPU (offload.py)
    hit_rate: float | None = None  # of the expert cache; default: the share of the experts it holds
    max_num_batched_tokens: int = 8192
    precision: Precision = Precision()

    def __post_init__(self) -> None:
        if not (whole(self.prefix) and self.prefix >= 0):
            raise SpecError(f"prefix {self.prefix!r}: expected a whole number of shared prompt tokens", param="prefix")
        for name in ("tp", "pp", "dp", "gpus", "block_size", "prompt", "output", "concurrency",
                     "max_num_batched_tokens"):
            x = getattr(self, name)
            if x is not None and not (whole(x) and 1 <= x <= MAX_TOKENS):
                raise SpecError(f"{name} {x!r}: expected a whole number from 1 to {MAX_TOKENS:,}", param=name)
        for i, shape in enumerate(self.lengths):
            if not (isinstance(shape, tuple) and len(shape) == 3
                    and all(whole(x) and 1 <= x <= MAX_TOKENS for x in shape)):
                raise SpecError(f"lengths[{i}] {shape!r}: expected (prompt, output, count), whole numbers from 1 to "
                                f"{MAX_TOKENS:,}", param="lengths")
        if self.lengths and self.prefix:
            raise SpecError("a shared prefix is modelled for requests of one length: give prefix or lengths",
                            param="prefix")
        h = self.hit_rate
        if h is not None and not (finite(h) and 0 <= h <= 1):
            raise SpecError(f"hit_rate {h!r}: expected the share of expert reads the cache answers, in [0, 1]",
                            param="hit_rate")
        if h is not None and not self.offload_experts:
            raise SpecError("hit_rate is the offloaded experts' cache's: give offload_experts", param="hit_rate")
        if self.offload_experts and self.pp > 1:
            raise SpecError("offload_experts is modelled on one pipeline stage: give pp 1", param="offload_experts")
        u = self.memory_utilization
        if not (finite(u) and 0 < u <= 1):
            raise SpecError(f"memory_utilization {u!r}: expected the share of each GPU's memory the engine may "
                            "use, in (0, 1]", param="memory_utilization")
        if self.dp > 1 and not self.ep:
            raise SpecError(f"dp {self.dp} without expert parallelism: data-parallel ranks that share nothing are "
                            "replicas (give gpus), or give ep to split the experts over them", param="dp")
        if self.ep and (self.pp > 1 or self.offload_experts):
            raise SpecError("ep is modelled on one pipeline stage with every expert on a GPU: give pp 1 and no "
                            "offload_experts", param="ep")
        if self.gpus is not None and self.gpus % self.replica:
            raise SpecError(f"gpus {self.gpus} is not a multiple of tp x pp x dp = {self.replica} (a replica's GPUs)",
                            param="gpus")

    @property
    def replica(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def shapes(self) -> tuple[tuple[int, int, int], ...]:
        """The requests' (prompt, output, count): the lengths' mix, or one of prompt + output."""
        return self.lengths or ((self.prompt, self.output, 1),)

    @property
    def requests(self) -> int:
        return sum(c for *_, c in self.shapes)

    def mean(self, f) -> Fraction:
        """f(prompt, output) over the requests, each counted."""
        return Fraction(sum(c * f(p, o) for p, o, c in self.shapes), self.requests)

    @property
    def ranks(self) -> int:
        """GPUs a decode step's work spreads over: a replica's tp ranks of each data-parallel rank."""
        return self.tp * self.dp

    @property
    def replicas(self) -> int:
        return 1 if self.gpus is None else self.gpus // self.replica


@dataclass(frozen=True)
class Draft:
    """Speculative decoding's draft (another spec: a small model, EAGLE heads, an MTP module)."""

    derivation: Derivation
    gamma: int = 4
    acceptance: object = 0.7  # a rate, or one per drafted token
    values: dict = field(default_factory=dict)  # its dims, where not its spec's

    @property
    def rates(self) -> tuple[Fraction, ...]:
        return acceptance_of(self.acceptance, self.gamma)


@dataclass(frozen=True, repr=False)
class Serve(Result):
    name: str
    hardware: object
    hardware_key: str
    serving: Serving
    numbers: dict  # the document's figures, by group (see render/serve.py)
    notes: tuple[str, ...]
    quantization: object = None  # the spec's (quantization.py), or None
    dims: dict = field(default_factory=dict)
    given: dict = field(default_factory=dict)  # the dims the call set, which the title names as plan's does

    def to_dict(self) -> dict:
        from ..render.serve import serve_data

        return serve_data(self)

    def text(self, width: int | None = None) -> str:
        from ..render.serve import serve_text

        return serve_text(self, width)

    def summary(self):
        from ..render.text import bytes_human

        n = self.numbers
        return f"{self.name} on {self.serving.replica} x {self.hardware.name}", [
            ("weights per GPU", bytes_human(n["per_gpu"]["weights_bytes"])),
            ("max concurrency", f"{n['max_concurrency']:,}"),
            ("TPOT bound", f"{n['tpot_seconds'] * 1e3:.3g} ms"),
        ]


@dataclass(frozen=True)
class Replica:
    """One model's figures on a replica, per GPU of its most loaded stage, at the serving's sizes."""

    weights: int  # bytes per GPU
    weights_total: int  # bytes of the whole model
    active_total: int  # bytes of the weights one token reads (a MoE's k experts)
    experts_active: int  # of those, the routed experts' (under ep a replica's data-parallel ranks share them)
    kv_per_token: int  # bytes per GPU per cached token, of the layers whose cache grows with the context
    kv: object  # context -> bytes per GPU of one sequence's cache holding context + 1 tokens (exact)
    step_flops: object  # context -> FLOPs of one sequence's decode step against that cache
    prefill_flops: object  # prompt tokens -> one prompt's forward
    scales: int  # bytes per GPU of an 8-bit cache's per-layer scales
    reduced: int  # values a token all-reduces over tp on the most loaded stage (each row-parallel layer's output)
    routed: int  # values a token sends to its experts on that stage (top_k x width a MoE layer; combined back too)


def _values(derivation: Derivation, values: Mapping[str, int] | None, **sizes) -> dict:
    out = dict(values or {})
    for name, n in sizes.items():
        if name in derivation.spec.dimset:
            out[name] = n
    return out


def replica(derivation: Derivation, serving: Serving, values: Mapping[str, int] | None) -> Replica:
    """The model's figures on one replica (see the module docstring)."""
    from ..evaluate import dim_values
    from ..plan.execution import Execution
    from ..plan.pieces import layer_sites
    from ..plan.plan import _check, formulas
    from ..plan.schedule import main_repeat

    spec, precision = derivation.spec, serving.precision
    prompt = serving.prompt
    one = _values(derivation, values, batch=1, seq_len=prompt)
    subst = dim_values(derivation, one)
    # vLLM's VocabParallelEmbedding pads the vocabulary to a multiple of 64 and splits that by tp
    pad = 64 // serving.tp if 64 % serving.tp == 0 else None
    ex = Execution(tp=serving.tp, pp=serving.pp, precision=precision, vocab_multiple=pad)
    value = lambda e: sympy.sympify(e).xreplace(subst)
    sites = [(widened(site, rule, serving.tp, value), rule) for site, rule in
             layer_sites(derivation, serving.tp, training=False)]
    main = main_repeat(derivation, value)
    _check(derivation, ex, value, sites, main)
    f = formulas(derivation, ex, sites, main)
    at = lambda e: sympy.sympify(e).xreplace(subst).xreplace(ex.values())
    weights = max(int(at(d["weights_bytes"])) for d in f.per_stage.values())
    t = derivation.total
    w = precision.bytes("weights")
    weights_total = int(at((t.params - t.packed) * w + t.packed_bytes))
    active_total = int(at((t.active_params - t.active_packed) * w + t.active_packed_bytes))
    experts_active = 0
    if serving.ep:  # each GPU its tp share of the rest and ranks-th of the routed experts, whole (vLLM's EP)
        held = [int(value(site.component.experts)) for site, _ in sites if site.component.routes_tokens]
        if not held:
            raise SpecError("ep splits a MoE's routed experts over GPUs; this spec has no moe layer", param="ep")
        if any(e % serving.ranks for e in held):
            raise SpecError(f"ep over tp x dp = {serving.ranks} GPUs does not divide {held[0]} routed experts",
                            param="ep")
        stage = f.stages[0]
        share = int(at((stage.expert - stage.expert_packed) * w + stage.expert_packed_bytes))  # tp's, in `weights`
        experts = routed(derivation, precision, one, 1)
        weights, experts_active = weights - share + experts.total // serving.ranks, experts.active

    # the bounds' FLOPs: what a fused kernel needs (conventions.py), causal attention's kept scores only
    prefill = derive(spec, "kernel")
    step = derive(spec, "kernel", decode=True)
    # one prompt's forward as a closed form in its length (every other dim given once)
    seq = symbols.dim("seq_len")
    forward = prefill.total.forward.xreplace(spec.dimset.substitution())
    forward = forward.xreplace({k: v for k, v in dim_values(prefill, one).items() if k != seq})
    context = symbols.dim(CONTEXT)
    step_subst = {k: v for k, v in dim_values(step, {**one, CONTEXT: 1}).items() if k != context}  # kept a symbol
    cache, layers, reduced, dispatched = _rank_cache(step, serving, main)
    kv_bytes = precision.bytes("kv")
    per_gpu = sympy.expand(cache.xreplace(step_subst) * kv_bytes)
    kv = _compiled(per_gpu, CONTEXT)
    far = 10**12  # past any window: what still grows per token
    # on average: compressed entries close every m tokens, and the tokens of their open window come and go (a
    # sawtooth, its slope taken as 0: floor(x) read as x); rounded up where the average is no whole byte
    slope = sympy.diff(per_gpu.replace(sympy.floor, lambda x: x), context).xreplace({context: sympy.Integer(far)})
    flops = step.total.forward.xreplace(step_subst)
    scales = 8 * int(layers.xreplace(step_subst)) if precision.dtype("kv") in ("fp8", "int8") else 0
    prompts, prefill_flops = {p for p, _, _ in serving.shapes}, _compiled(forward, "seq_len")
    prefill_flops.prime(prompts)  # every prompt length the figures read, each form in one vectorised call
    kv.prime(p - 1 for p in prompts)
    return Replica(weights, weights_total, active_total, experts_active, int(sympy.ceiling(slope)), kv,
                   _compiled(flops, CONTEXT), prefill_flops, scales,
                   int(reduced.xreplace(step_subst)), int(dispatched.xreplace(step_subst)))


class _compiled:
    """e, a closed form in the one dim `name`, as an exact function of its value: compiled once
    (codegen.vectorized), each value computed once — a lengths file asks at each of its rows, whose values `prime`
    computes in one vectorised call first."""

    def __init__(self, e: sympy.Expr, name: str) -> None:
        from ..codegen.vectorized import Vectorized

        self.f, self.name, self.known = Vectorized(e), name, {}

    def __call__(self, x: int) -> int:
        if x not in self.known:
            self.known[x] = int(self.f({self.name: x}))
        return self.known[x]

    def prime(self, xs) -> None:
        import numpy as np

        if todo := sorted({x for x in xs if x not in self.known}):
            self.known |= dict(zip(todo, map(int, self.f({self.name: np.array(todo, dtype=np.int64)}).tolist())))


def widened(site, rule, tp: int, value=None):
    """The site as vLLM runs it under tp: key/value heads fewer than tp replicated so that each rank holds
    one (its QKVParallelLinear; tp must then be a multiple of them), the rule's `widens`; with `value`,
    that checked at the sizes."""
    from ..plan.execution import TP

    widen = rule.widens(site.component)
    if tp == 1 or not widen:
        return site
    for name, size in rule.divides(site.component) if value is not None else ():
        if name in widen and value(size) < tp and tp % value(size):
            raise SpecError(f"tp {tp}: neither divides nor is a multiple of {name} = {value(size)} "
                            "(vLLM replicates them only then)", param="tp")
    update = {k: v.xreplace({TP: tp}) for k, v in widen.items()}
    return replace(site, component=site.component.model_copy(update=update))


def _rank_cache(step: Derivation, serving: Serving, main: int | None) -> tuple[sympy.Expr, ...]:
    """Values one tensor-parallel rank of the most loaded stage caches, per sequence, as a closed form in
    the context; the number of its layers that cache (each keeps a key and a value scale in 8 bits); and, per
    token, the values its row-parallel layers all-reduce over tp and those its MoE layers send to their experts
    under ep. A pipeline splits the repeat `main` evenly; what comes before it sits on the first stage, after it
    on the last (plan's placement), so the most loaded stage holds its share and the more of the two."""
    from ..plan.execution import TP
    from ..plan.pieces import rank_ctx
    from ..plan.rules import rule_of
    from ..plan.schedule import placed

    zero = sympy.Integer(0)
    sums = [{"pre": zero, "block": zero, "post": zero} for _ in range(4)]
    for site in step.sites:
        c = site.component
        if not isinstance(c, Component):
            continue
        rule = rule_of(c)
        c = widened(site, rule, serving.tp).component
        local = c.model_copy(update=rule.shard(c)) if rule.shard(c) else c
        top = site.where[1]
        place = "block" if serving.pp == 1 else placed(top, main)  # pp > 1 has a repeat to split (plan._check)
        share = sympy.Integer(serving.pp) if place == "block" else 1
        for ctx, n in site.runs:
            held = total(local.parts(replace(rank_ctx(site, rule.shard(c), ctx), batch=ctx.batch)).values()).cache
            reduces = serving.tp > 1 and rule.region in ("parallel", "vocab_in")  # a row-parallel exit (plan/comm.py)
            routes = serving.ep and c.routes_tokens
            for out, x in zip(sums, (held, 1 if held != 0 else 0, c.dim if reduces else 0,
                                     c.top_k * c.dim if routes else 0)):
                out[place] += x * n / share
    most = lambda by: by["block"] + sympy.Max(by["pre"], by["post"])
    return tuple(most(by).xreplace({TP: serving.tp}) for by in sums)


def _reserve(derivation: Derivation, serving: Serving, values) -> int:
    """The activation reserve per GPU (an estimate): the largest working set of a layer but the LM head
    (memory.prefill_transient) over max_num_batched_tokens tokens — prompts of the serving's length,
    as many as that many tokens make — split by tp. The head's logits are an engine's for the sampled
    tokens only (one a sequence), and not counted."""
    from ..evaluate import dim_values
    from ..memory import prefill_transient

    prompts = -(-serving.max_num_batched_tokens // serving.prompt)
    act = dim_values(derivation, _values(derivation, values, batch=prompts, seq_len=serving.prompt))
    working = prefill_transient(derivation, "flash", logits=False).xreplace(act)
    return int(sympy.ceiling(working.xreplace({symbols.ACT: serving.precision.bytes("activations")}) / serving.tp))


def _blocks(tokens: int, block: int) -> int:
    return -(-tokens // block) * block


@dataclass(frozen=True)
class Memory:
    """A replica GPU's bytes at the serving's sizes (with the draft's where there is one)."""

    weights: int
    reserve: int  # the activation reserve (an estimate)
    scales: int  # an 8-bit cache's per-layer scales
    pool: int  # what the KV cache may fill
    per_token: int
    per_sequence: int | float  # one sequence's own cache, its shared prefix left out (a mix: the mean)
    shared: int  # the shared prefix's cache, held once
    most: int | None  # sequences that fit; None when nothing is cached per sequence

    def needed(self, batch: int, hardware) -> float:
        """The share of the GPU's memory `batch` sequences need: vLLM's --gpu-memory-utilization for them."""
        held = self.weights + self.reserve + self.scales + self.shared + batch * self.per_sequence
        return held / hardware.memory_bytes


def _memory(derivation, serving: Serving, hardware, values, target: Replica, small: Replica | None,
            offloaded: int = 0) -> Memory:
    """The bytes of a replica GPU; `offloaded`: those of its weights kept in host memory instead."""
    P, O, B = serving.prompt, serving.output, serving.block_size
    L, S = _blocks(P + O, B), serving.prefix // B * B  # tokens a sequence holds; shared ones, whole blocks
    held = lambda r: serving.mean(lambda p, o: r.kv(_blocks(p + o, B) - 1))  # a sequence's cache, on average
    capacity = math.floor(hardware.memory_bytes * Fraction(serving.memory_utilization).limit_denominator(10**9))
    reserve = _reserve(derivation, serving, values)
    weights = target.weights - offloaded + (small.weights if small else 0)
    scales = target.scales + (small.scales if small else 0)
    pool = capacity - weights - reserve - scales
    models = (target, small) if small else (target,)
    if S and any(r.kv(L - 1) != L * r.kv_per_token for r in models):
        raise SpecError(f"prefix {serving.prefix}: sharing a prefix is modelled for full attention caches only "
                        "(a window's or a recurrent state's cache is its own per sequence)", param="prefix")
    shared = sum(r.kv(S - 1) for r in models) if S else 0
    per_sequence = sum(held(r) for r in models) - shared  # a whole number of bytes but for a mix's mean
    if pool - shared <= 0:
        raise DoesNotFit(f"the weights ({weights / 2**30:.2f} GiB a GPU) and the activation reserve "
                         f"({reserve / 2**30:.2f} GiB) leave no KV cache in {serving.memory_utilization:g} of "
                         f"{hardware.memory_bytes / 2**30:.2f} GiB: add GPUs (tp, pp, or dp with ep) or store the "
                         "weights smaller")
    most = math.floor((pool - shared) / per_sequence) if per_sequence else None
    return Memory(weights, reserve, scales, pool, sum(r.kv_per_token for r in models), _exact(per_sequence), shared,
                  most)


def _exact(x: Fraction):
    """An integer where x is one, else x as a float (a mix's mean)."""
    return int(x) if x.denominator == 1 else float(x)


def serve(derivation: Derivation, serving: Serving, hardware, hardware_key: str = "",
          values: Mapping[str, int] | None = None, draft: Draft | None = None, efficiency=None) -> Serve:
    """The model served (the module docstring); `efficiency`: the hardware's entry of an efficiency file
    (plan/efficiency.py), which turns the bounds into predictions, or None (bounds alone)."""
    from ..evaluate import dim_values

    spec = derivation.spec
    if "seq_len" not in spec.dimset:
        raise SpecError("serve needs a token model: declare `seq_len` (the prompt's length)")
    if derivation.spec.finetune is not None:
        raise spec.doc.error(("finetune",), "serve serves a model, not a fine-tune: drop the finetune block (merge "
                             "its adapters into the weights first)")
    if serving.lengths:  # the longest prompt sizes the activation reserve, and the prefill reported
        serving = replace(serving, prompt=max(p for p, _, _ in serving.lengths),
                          output=max(o for _, o, _ in serving.lengths))
    if serving.prompt is None:
        serving = replace(serving, prompt=int(dim_values(derivation, values)[symbols.dim("seq_len")]))
    if serving.prefix > serving.prompt:
        raise SpecError(f"prefix {serving.prefix}: longer than the prompt ({serving.prompt} tokens)", param="prefix")
    if draft is not None and (serving.pp > 1 or serving.ep):
        raise SpecError("a draft is served on the target's tensor-parallel ranks with pp 1 and no ep; give those to "
                        "plan speculative decoding", param="draft")
    rates = draft.rates if draft is not None else ()
    target = replica(derivation, serving, values)
    small = replica(draft.derivation, replace(serving, pp=1), draft.values) if draft is not None else None
    experts = routed(derivation, serving.precision, values, serving.tp) if serving.offload_experts else None
    m = _memory(derivation, serving, hardware, values, target, small, experts.total if experts else 0)
    dp = serving.dp  # each data-parallel rank caches its own sequences: a GPU holds its rank's share
    most = None if m.most is None else m.most * dp
    batch = serving.concurrency or (1 if experts else most)  # offloading: one sequence unless told
    if batch is None:
        raise SpecError("nothing is cached per sequence, so nothing bounds the concurrency: give `concurrency=N`")
    L = serving.prompt + serving.output
    if batch < 1:
        raise DoesNotFit(f"one sequence of {L:,} tokens needs {m.per_sequence / 2**30:.2f} GiB of KV cache a GPU, "
                         f"has {(m.pool - m.shared) / 2**30:.2f} GiB")
    if m.most is not None and busiest(dp, batch) > m.most:
        held = busiest(dp, batch) * m.per_sequence + m.shared
        raise DoesNotFit(f"concurrency {batch:,} needs {held / 2**30:.2f} GiB of KV cache a GPU, has "
                         f"{m.pool / 2**30:.2f} GiB (at most {most:,} sequences of {L:,} tokens; "
                         f"{m.needed(busiest(dp, batch), hardware):.3f} of the GPU's memory would hold them)",
                         param="concurrency")
    clock = Clock(derivation, serving, hardware, efficiency)
    moved = None
    if experts is not None:
        room = m.pool - m.shared - batch * m.per_sequence  # what the batch's cache leaves the experts
        moved = offload(experts, room, clock.tpot(target, 1), hardware, serving.hit_rate)
        clock.floor = moved["link_seconds_per_token"]  # any step reads at least one token's missed experts
    B = serving.block_size
    blocks = max(m.pool - m.shared, 0) // (B * m.per_token) if m.per_token else None
    numbers = {
        "per_gpu": {"weights_bytes": m.weights, "kv_bytes_per_token": m.per_token,
                    "kv_bytes_per_sequence": m.per_sequence, "shared_prefix_bytes": m.shared,
                    "activation_reserve_bytes": m.reserve, "kv_pool_bytes": m.pool},
        "kv": {"capacity_tokens": None if blocks is None else blocks * B, "blocks": blocks},
        "max_concurrency": most,
        "memory_utilization_needed": m.needed(busiest(dp, batch), hardware),
        **clock.figures(target, batch),
        "curve": [{"batch": b, "tpot_seconds": t, "tpot_seconds_predicted": clock.tpot_predicted(target, b),
                   "tokens_per_second_per_gpu": b / t / serving.replica,
                   "memory_utilization_needed": m.needed(busiest(dp, b), hardware)}
                  for b in _curve(batch) for t in (clock.tpot(target, b),)],
    }
    numbers["disaggregated"] = clock.disaggregated(target, batch, numbers["ttft_seconds"], numbers["tpot_seconds"])
    if moved is not None:
        numbers["offload"] = moved
    if draft is not None:
        numbers["speculative"] = clock.speculative(target, small, draft, rates, batch, numbers["tpot_seconds"])
        numbers["speculative"]["draft_kv_bytes_per_sequence"] = small.kv(_blocks(L, B) - 1)
    notes = _notes(derivation, serving, clock.peak_dtype, draft) + mtp_notes(
        derivation, values, "a server drops them (or runs them as its own draft: --draft)")
    if efficiency is None:
        notes.append(f"no efficiency entry for {hardware_key or hardware.name!r}: bounds alone, nothing predicted "
                     "(give an efficiency file: plan/efficiency.py says how one is fitted)")
    else:
        notes.append(efficiency.label(hardware_key))
        if clock.peak_dtype not in efficiency.dtypes:
            notes.append(f"the efficiency entry was fitted on {', '.join(efficiency.dtypes)} matmuls; these run in "
                         f"{clock.peak_dtype}: its matmul share applied to the {clock.peak_dtype} peak unchanged")
    return Serve(spec.name, hardware, hardware_key, serving, numbers, tuple(notes), spec.quantization,
                 spec.dimset.plain(dim_values(derivation, values)), dict(values or {}))


def _curve(batch: int) -> list[int]:
    """Batches for the throughput-latency curve: powers of two up to `batch`, and `batch`."""
    return sorted({*(2**i for i in range(batch.bit_length()) if 2**i < batch), batch})


def peak_dtype(quantization, precision: Precision) -> str:
    """The dtype whose dense peak a served model's matmuls run at: FP8 for the W8A8 formats, else the weights'."""
    if quantization is not None and quantization.format in FP8_FORMATS:
        return "fp8"
    return precision.peak_dtype()


def busiest(dp: int, b: int) -> int:
    """Sequences on the most loaded of dp data-parallel ranks serving b."""
    return -(-b // dp)


class Clock:
    """The time bounds of one replica (the module docstring): rooflines of exact counts."""

    def __init__(self, derivation, serving: Serving, hardware, efficiency=None) -> None:
        from ..plan.time import link_bandwidth

        self.serving, self.hardware, self.efficiency = serving, hardware, efficiency
        # bytes a second a GPU sends in the replica's tp and ep groups, at the link each group spans
        v = serving
        self.links = {dim: float(link_bandwidth(dim, hardware, v.tp, 1, v.dp, v.ranks)) for dim in ("tp", "ep")}
        self.peak_dtype = peak_dtype(derivation.spec.quantization, serving.precision)
        self.peak, self.bw = hardware.peak_flops(self.peak_dtype), hardware.memory_GBps * 1e9
        # a request's decode steps run at contexts P .. P + O - 2: the mean over every request's steps
        steps = sum(c * (o - 1) for _, o, c in serving.shapes)
        self.mean = (sum(c * (o - 1) * (2 * p + o - 2) for p, o, c in serving.shapes) // (2 * steps) if steps
                     else serving.prompt)
        # MLA's reference decode re-expands the whole cached latent through kv_b_proj every step, which an
        # engine absorbing kv_b_proj into the query and output does not: its step FLOPs would bound too high
        self.latent = any(getattr(s.component, "attends", None) == "latent" for s in derivation.sites)
        self.floor = 0.0  # seconds no decode step beats (offloaded experts crossing the host link)

    def bound(self, flops, moved) -> float:
        return max(self.seconds(flops, moved))

    def seconds(self, flops, moved) -> tuple[float, float]:
        """The replica's seconds for `flops` at the dense peak and for `moved` bytes at the HBM bandwidth."""
        ranks = self.serving.ranks
        return flops / (ranks * self.peak), moved / (ranks * self.bw)

    def predicted(self, flops, moved, comm: float = 0.0) -> float | None:
        """The efficiency file's prediction (plan/efficiency.py), where there is an entry: `comm` seconds of
        communication after the phase's arithmetic and memory traffic."""
        if self.efficiency is None:
            return None
        return max(self.efficiency.seconds(*self.seconds(flops, moved), comm), self.floor)

    def comm(self, r: Replica, tokens) -> tuple[float, float]:
        """(bytes, seconds) a GPU sends for `tokens` tokens of its data-parallel rank: a ring all-reduce over tp
        of each row-parallel layer's output (plan/comm.py's rule) and, under ep, each MoE layer's dispatch and
        combine (an all-to-all over the replica, each tp rank sending its share of the tokens), each at the
        link its group spans (plan/time.py); a collective's latency not counted."""
        from ..plan.collectives import all_to_all, ring_all_reduce

        v = self.serving
        if not (r.reduced or r.routed):
            return 0, 0.0
        act = float(v.precision.bytes("activations"))
        reduce = ring_all_reduce(r.reduced * tokens * act, v.tp)
        spread = all_to_all(2 * r.routed * tokens * act / v.tp, v.ranks)
        return reduce + spread, reduce / self.links["tp"] + spread / self.links["ep"]

    def read(self, r: Replica, b: int) -> int:
        """Weights a step of b sequences reads: each busy data-parallel rank its own of those a token uses, the
        routed experts' once for the replica (a floor, as a batch touches more)."""
        return min(b, self.serving.dp) * (r.active_total - r.experts_active) + r.experts_active

    def step(self, r: Replica, c: int, b: int, tokens: int = 1) -> tuple[int, int, float]:
        """One decode step of b sequences with `tokens` new each (a verify step: several) at context c: a
        shared prefix's cache read once a rank (as a kernel reading it for the batch, cascade attention, does)."""
        flops = b * sum(r.step_flops(c + i) for i in range(tokens))
        prefix = self.serving.prefix // self.serving.block_size * self.serving.block_size
        shared = r.kv(prefix - 1) if prefix else 0
        cached = b * r.kv(c + tokens - 1) - (b - min(b, self.serving.dp)) * shared
        moved = self.read(r, b) + cached * self.serving.tp
        seconds = self.bound(0 if self.latent else flops, moved)
        return flops, moved, max(seconds, self.floor)

    def tpot(self, r: Replica, b: int) -> float:
        return self.step(r, self.mean, b)[2]

    def tpot_predicted(self, r: Replica, b: int) -> float | None:
        flops, moved, _ = self.step(r, self.mean, b)
        return self.predicted(0 if self.latent else flops, moved, self.comm(r, busiest(self.serving.dp, b))[1])

    def prefill(self, target: Replica, prompt: int) -> dict:
        flops, moved = target.prefill_flops(prompt), target.weights_total + target.kv(prompt - 1) * self.serving.tp
        sent, comm = self.comm(target, prompt)
        return {"flops": flops, "bytes": moved, "comm_bytes": sent, "comm_seconds": comm,
                "seconds_bound": max(self.bound(flops, moved), self.floor),
                "seconds_predicted": self.predicted(flops, moved, comm)}

    def throughput(self, target: Replica, batch: int) -> dict:
        """A batch of requests prefilled together and decoded to their ends (a static batch, as
        TensorRT-LLM's throughput tables run it; continuous batching does the same work interleaved): the
        prompts' prefill reads the weights once, then mean(output) - 1 decode steps at the mean context give
        each request its tokens after the first."""
        v = self.serving
        flops = batch * v.mean(lambda p, o: target.prefill_flops(p))
        moved = target.weights_total + batch * v.mean(lambda p, o: target.kv(p - 1)) * v.tp
        steps = v.mean(lambda p, o: o) - 1
        f, m, step = self.step(target, self.mean, batch)
        f = 0 if self.latent else f
        rank = busiest(self.serving.dp, batch)
        prompts, each = self.comm(target, rank * v.mean(lambda p, o: p))[1], self.comm(target, rank)[1]
        compute, memory = self.seconds(float(flops + steps * f), float(moved + steps * m))
        bound = max(self.bound(float(flops), float(moved)), self.floor) + float(steps) * step
        guess = self.predicted(float(flops), float(moved), prompts)
        if guess is not None:
            guess += float(steps) * self.predicted(f, m, each)
        tokens = batch * v.mean(lambda p, o: o)
        per_gpu = lambda t: None if t is None else float(tokens) / t / v.replica
        return {"batch": batch, "output_tokens": _exact(tokens), "compute_seconds": compute, "memory_seconds": memory,
                "comm_seconds": prompts + float(steps) * each, "seconds_bound": bound, "seconds_predicted": guess,
                "tokens_per_second_per_gpu_bound": per_gpu(bound),
                "tokens_per_second_per_gpu_predicted": per_gpu(guess)}

    def figures(self, target: Replica, batch: int) -> dict:
        tp = self.serving.tp
        each = {p: self.prefill(target, p) for p in {p for p, _, _ in self.serving.shapes}}  # a mix: each length once
        prefill = each[self.serving.prompt]  # the longest prompt's
        ttft = float(self.serving.mean(lambda p, o: Fraction(each[p]["seconds_bound"])))
        guess = None if self.efficiency is None else float(
            self.serving.mean(lambda p, o: Fraction(each[p]["seconds_predicted"])))
        flops, moved, seconds = self.step(target, self.mean, batch)
        sent, comm = self.comm(target, busiest(self.serving.dp, batch))
        tpot = self.predicted(0 if self.latent else flops, moved, comm)
        k = target.kv(self.mean) * tp  # one sequence's cache, the whole replica's
        slope = self.bw * target.step_flops(self.mean) - self.peak * k
        read = self.read(target, self.serving.dp)  # every rank busy: the batch it turns at exceeds dp
        turn = math.ceil(read * self.peak / slope) if slope > 0 and not self.latent else None
        return {"prefill": prefill,
                "decode": {"batch": batch, "context": self.mean, "flops_per_step": flops, "bytes_per_step": moved,
                           "comm_bytes_per_step": sent, "comm_seconds": comm, "seconds_bound": seconds,
                           "seconds_predicted": tpot, "compute_bound_batch": turn, "flops_in_bound": not self.latent},
                "ttft_seconds": ttft, "tpot_seconds": seconds, "ttft_seconds_predicted": guess,
                "tpot_seconds_predicted": tpot, "tokens_per_second_per_gpu": batch / seconds / self.serving.replica,
                "throughput": self.throughput(target, batch)}

    def disaggregated(self, target: Replica, batch: int, ttft: float, tpot: float) -> dict:
        """Prefill on one pool, decode on another: each request's prompt cache crosses between them
        (every GPU of a replica sends its share over its scale-out link), and how many prefill replicas
        keep one decode replica fed: its requests a second (batch / (output x TPOT)) x TTFT."""
        v = self.serving
        per_gpu = v.mean(lambda p, o: target.kv(p - 1))
        return {"kv_bytes_per_request": _exact(per_gpu * v.tp),
                "transfer_seconds": float(per_gpu) / (self.hardware.inter_node_GBps * 1e9),
                "prefill_replicas_per_decode_replica": batch / (float(v.mean(lambda p, o: o)) * tpot) * ttft}

    def speculative(self, target: Replica, small: Replica, draft: Draft, rates, batch: int, tpot: float) -> dict:
        tau = tokens_per_step(rates)
        _, _, t_draft = self.step(small, self.mean, batch)
        _, _, t_verify = self.step(target, self.mean, batch, draft.gamma + 1)
        per_token = (draft.gamma * t_draft + t_verify) / float(tau)
        return {"gamma": draft.gamma, "acceptance": [float(a) for a in rates], "tokens_per_step": float(tau),
                "draft_weights_bytes": small.weights, "draft_seconds_bound": t_draft,
                "verify_seconds_bound": t_verify, "tpot_seconds": per_token, "speedup_bound": tpot / per_token}


def _notes(derivation: Derivation, serving: Serving, peak_dtype: str, draft: Draft | None) -> list[str]:
    q = derivation.spec.quantization
    notes = [
        f"per GPU: a GPU of the replica's {serving.replica}"
        + (f" ({serving.dp} data-parallel ranks of {serving.tp})" if serving.dp > 1 else "")
        + (" (the most loaded pipeline stage)" if serving.pp > 1 else "")
        + f"; weights {serving.precision.dtype('weights')}"
        + (f", linears stored {q.label}" if q is not None else "") + f"; KV cache {serving.precision.dtype('kv')}"
        + (" (with a key and a value fp32 scale a layer)" if serving.precision.dtype("kv") in ("fp8", "int8") else ""),
        f"capacity as vLLM computes it: {serving.memory_utilization:g} of the GPU's memory, less the weights and "
        f"the activation reserve, in blocks of {serving.block_size} tokens; "
        + (f"each sequence's {serving.prompt:,} + {serving.output:,} tokens rounded up to whole blocks"
           if not serving.lengths else
           f"{serving.requests:,} requests of {len(serving.lengths)} lengths (the file's), each rounded up to whole "
           "blocks: the concurrency is the pool over their mean cache (the mix held in its proportions), TTFT their "
           "mean prefill bound, TPOT at the mean context of all their decode steps; the prefill row the longest "
           "prompt's"),
        f"activation reserve: an estimate, the largest layer's prefill working set over "
        f"{serving.max_num_batched_tokens:,} tokens (prompts of {serving.prompt:,}) / tp (vLLM profiles its own)",
        f"times are roofline bounds (an engine is slower): {peak_dtype} dense peak, HBM bandwidth, tp GPUs; a "
        "decode step reads the weights one token uses (a MoE's k experts) and every sequence's cache; "
        "communication not counted in a bound (a prediction adds it); TPOT at the generation's mean context",
        MEMORY_NOTE,
    ]
    if any(getattr(s.component, "attends", None) == "latent" for s in derivation.sites):
        notes.append("MLA: a decode step's bound is its bytes alone — its FLOPs are the reference's, which re-expands "
                     "the cached latent through kv_b_proj every step where an engine absorbs kv_b_proj (far fewer); "
                     "TTFT keeps both terms (prefill expands once, as engines do)")
    if serving.ep:
        notes.append(f"expert parallelism: each of the {serving.dp} data-parallel ranks runs attention (and every "
                     f"layer but the routed experts) on its {serving.tp} tensor-parallel GPUs over its own sequences "
                     f"and caches; the routed experts split whole over all {serving.ranks} GPUs (vLLM's "
                     "--enable-expert-parallel); a decode step's bound spreads the replica's work over them, each "
                     "rank reading its own weights and the experts read once (routing assumed even); the all-to-all "
                     "in a prediction, not in a bound")
    if serving.offload_experts:
        notes.append("routed experts in host memory: the GPU holds the rest, the batch's KV cache and as many experts "
                     "as fit (the expert cache); each expert a token reads and the cache misses crosses the host link "
                     + ("(hit rate given)" if serving.hit_rate is not None else "(hit rate: the share of the experts "
                        "cached, routing assumed even)") + "; the ceiling is one sequence's")
    if serving.prefix:
        notes.append(f"prefix caching: the first {serving.prefix // serving.block_size * serving.block_size:,} of the "
                     f"{serving.prefix:,} shared prompt tokens (whole blocks) cached once for every sequence; a decode "
                     "step reads them once")
    if any(getattr(s.component, "window", None) is not None for s in derivation.sites):
        notes.append("a windowed layer's cache: min(window - 1, tokens), not rounded; vLLM holds the blocks that cover "
                     "the window, a block or two more")
    if draft is not None:
        notes.append(f"speculative decoding: {draft.gamma} draft tokens a step, the draft "
                     f"({draft.derivation.spec.name}) on the same tp ranks with its own cache; expected tokens a step "
                     "1 + α1 + α1α2 + … (Leviathan et al. 2023); speedup = the target's step bound / (γ draft steps "
                     "+ one verify step of γ + 1 tokens) per expected token, a ratio of bounds")
    return notes
