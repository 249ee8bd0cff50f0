"""Multi-head self-attention (Vaswani et al. 2017) with grouped key/value heads
(GQA, Ainslie et al. 2023; MQA when kv_heads = 1) and per-projection bias switches.

Parameters live only in the four projections. The score and value matmuls hold none but
cost 2 x 2·b·h·n²·head_dim FLOPs forward — the n² term. NB: under pytorch (and macs) the
causal mask does not shrink the count: the kernels multiply the whole score matrix and
mask afterwards. Under `full`, causal attention counts the n(n+1)/2 scores that matter.

Sliding-window attention (Longformer, Beltagy et al. 2020; Mistral 7B): `window: w` with
`causal: true` lets each query see itself and the w - 1 keys before it. Under pytorch the
reference, like Hugging Face's eager path, multiplies the full n x n matrix and masks, so
the count equals full attention; under `full`, only the kept scores count.

Chunked attention (Llama 4's local layers): `chunk: C` with `causal: true` splits the positions into
chunks of C and lets each query see the keys of its own chunk up to itself. As with a window, the
reference multiplies every key it holds and masks (transformers keeps C - 1 cached tokens, as for a
window of C), so under pytorch the count is a window's of C; under `full` and `kernel` only the kept
pairs count: position p sees p mod C + 1 keys.

Attention sinks (gpt-oss; Xiao et al. 2023's sink token as one learned logit a head): `sinks: true`
adds a logit per head to every softmax, with no value, so a query may attend to nothing. A
parameter a head; no FLOPs under pytorch; eager keeps one probability more a query (the sink's
column of the softmax output the value matmul reads a slice of). PyTorch's
scaled_dot_product_attention takes no sink, so the build runs sinks eagerly only; under sdpa the
saved bytes are a fused kernel's (FlashAttention 3's sink folds into each row's log-sum-exp),
stated, not measured here.

Zamba2's shared attention (Glorioso et al. 2024): `out: d` makes o_proj write a width other than the one the
layer reads (it reads [h, e], 2·d, and writes d; no residual then), and `adapter_rank: r` adds to each of q, k
and v a per-use low-rank adapter, dim -> r -> the projection's width, as the MLP's (components/mlp.py): their
weights, their FLOPs, and r values a token kept for each adapter's second linear (the first reads the input
q_proj keeps). In a `tied` block the adapters stay each use's own.

An output gate (Qwen3-Next; Qiu et al. 2025, "Gated Attention for Large Language Models"): `gate: true`
makes q_proj emit a gate beside each head's queries (2 x heads x head_dim outputs, laid out head by
head) and o_proj read the core's output times sigmoid(gate): heads x head_dim x dim parameters more,
no FLOPs more under pytorch; the product keeps the core's output and the sigmoid's. Written with
per-head Q/K norms (as Qwen3-Next has them), so that no query is a view of the doubled projection.

`attention_dropout: p` drops attention probabilities, `hidden_dropout: p` the output before
the residual add (components/dropout.py). With eager attention a dropped core keeps, beside
the probabilities, their one-byte mask and the dropped copy the value matmul reads: 5 bytes a
score in 16-bit, as Korthikanti et al. 2022 count. PyTorch's fused kernels (sdpa, flash) on a
GPU keep no mask: they draw it again in backward from a random-number state (a seed and an
offset) that symcost does not count; on the CPU PyTorch runs such a core unfused, so those
bytes are not measured here (measure/saved.py refuses).
"""

from __future__ import annotations

from typing import Literal

import sympy
from pydantic import StrictBool, field_validator

from .. import ops, symbols
from ..checks import Check, divides
from ..cost import Cost
from ..errors import SpecError
from ..precision import recomputed_cores
from ..symbols import ACT
from . import dropout
from .parallel import TP, Rule, by_heads
from .base import Component, Ctx, Rate, Size
from .linear import ADAPTER_TP, adapter, adapter_checks, adapter_module
from .rmsnorm import norm_grads, rms_saved


class Heads(Component):
    """What every multi-head layer shares: its heads, kv heads and head size, derived once
    here for the cost rule and the builder alike, and the constraints between them."""

    dim: Size
    heads: Size
    kv_heads: Size | None = None  # default: heads (multi-head); 1 is multi-query
    head_dim: Size | None = None  # default: dim / heads

    @property
    def d_head(self):
        return self.head_dim if self.head_dim is not None else self.dim / self.heads

    @property
    def n_kv(self):
        return self.kv_heads if self.kv_heads is not None else self.heads

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        dim, heads, kv = self.dim, self.heads, self.n_kv
        if self.head_dim is None:
            yield Check("heads", divides(heads, dim), "{} heads do not divide dim {}; set head_dim or change heads", (heads, dim))
        yield Check("kv_heads", divides(kv, heads), "{} kv_heads do not divide {} heads", (kv, heads))


class Projections(Heads):
    """Heads with a bias switch for all four projections and one for each (Whisper's keys have none)."""

    bias: StrictBool = False  # default for each projection's bias below
    q_bias: StrictBool | None = None
    k_bias: StrictBool | None = None
    v_bias: StrictBool | None = None
    o_bias: StrictBool | None = None

    def has_bias(self, proj: str) -> bool:
        own = getattr(self, f"{proj}_bias")
        return self.bias if own is None else own


class Attention(Projections):
    kind = "attention"
    attends = "self"
    mixes_tokens = True
    tunable = True
    parallel = Rule("parallel", by_heads, lambda c: (("heads", c.heads), ("kv_heads", c.n_kv)),
                    torch=(("q_proj", "colwise"), ("k_proj", "colwise"), ("v_proj", "colwise"), ("o_proj", "rowwise")),
                    widens=lambda c: {"kv_heads": sympy.Max(c.n_kv, TP)},
                    refuses=lambda c: "qk_norm: full normalises over every head at once, so a tp rank would need the "
                    "other ranks' heads (a communication no rule here models)" if c.qk_norm == "full" else
                    ADAPTER_TP if c.adapter_rank is not None else None)
    # RMSNorm of queries and keys: true (or "head") over each head with one head_dim of weights for
    # all heads (Qwen3); "full" over all heads at once, as OLMo 2 does, with weights for each
    qk_norm: Literal[False, True, "head", "full"] = False
    causal: StrictBool = False
    window: Size | None = None  # sliding window: each query sees itself and window - 1 earlier keys
    chunk: Size | None = None  # chunked attention: each query sees its own chunk of `chunk` positions up to itself
    sinks: StrictBool = False  # a learned logit per head beside each row's scores (gpt-oss)
    rope: StrictBool = True  # false: this layer leaves the rotary layer's rotation out (NoPE: SmolLM3)
    # an output gate (Qwen3-Next): q_proj also makes a gate per query value, and o_proj reads the core's
    # output times sigmoid(gate)
    gate: StrictBool = False
    residual: StrictBool = True  # output is added to the input stream
    attention_dropout: Rate | None = None  # on the probabilities
    hidden_dropout: Rate | None = None  # on the output, before the residual add
    out: Size | None = None  # o_proj's width, when not dim (Zamba2's: it reads [h, e] and writes h's width)
    adapter_rank: Size | None = None  # a per-use low-rank adapter on each of q, k and v (Zamba2's)

    @field_validator("qk_norm", mode="before")
    @classmethod
    def _not_a_number(cls, value):  # a Literal would take 1 for true
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError("Input should be false, true, 'head' or 'full'")
        return value

    def ring(self):
        """Each token's keys and values: what Megatron-Core's ring attention passes (a shard per tp rank)."""
        return 2 * self.n_kv * self.d_head

    def parts(self, ctx: Ctx):
        h, kv, hd = self.heads, self.n_kv, self.d_head
        parts = {
            "q_proj": ctx.linear(self.dim, h * hd * (2 if self.gate else 1), self.has_bias("q"), name="q_proj"),
            "k_proj": ctx.linear(self.dim, kv * hd, self.has_bias("k"), name="k_proj"),
            "v_proj": ctx.linear(self.dim, kv * hd, self.has_bias("v"), name="v_proj"),
        }
        if self.qk_norm:
            normed = ctx.tokens * (h + kv) * hd
            weights = (h + kv) * hd if self.qk_norm == "full" else 2 * hd
            parts["qk_norm"] = (ctx.weights(weights) + ctx.elementwise(normed, "rmsnorm")
                                + ctx.elementwise(normed, "affine"))
        if (rotary := self.rotary(ctx.flow)) is not None:
            parts["rotary"] = ctx.elementwise(ctx.tokens * (h + kv) * rotary, "rotary")
        entries = score_entries(ctx, ctx.seq_len, self.causal, self.window, self.chunk)
        grads = self.grads(ctx)
        parts |= products(ctx, h, entries, hd, hd, grads)
        if self.gate:
            gated = ctx.tokens * h * hd
            parts["gate"] = ctx.elementwise(gated, "sigmoid") + ctx.elementwise(gated, "gate")
        if self.sinks:  # one logit a head, one more softmax entry a query
            parts["sinks"] = ctx.weights(h) + ctx.elementwise(ctx.batch * h * ctx.seq_len, "softmax")
        if self.attention_dropout is not None:  # part of the core, which selective recomputation runs again
            parts["scores"] += dropout.flops(ctx, self.attention_dropout, ctx.batch * h * entries)
        if self.causal:  # a decoder keeps each token's key and value (kv heads, not query heads)
            parts["kv_cache"] = Cost(cache=ctx.batch * 2 * kv * hd * cached_tokens(ctx, self.span))
        if self.adapter_rank is not None:
            parts["adapter"] = sum((adapter(ctx, self.dim, self.adapter_rank, n * hd) for n in (h, kv, kv)), Cost())
        parts["o_proj"] = ctx.linear(h * hd, self.width, self.has_bias("o"), input_grad=any(grads), name="o_proj")
        return parts | dropout.output(ctx, self.hidden_dropout, self.width, self.residual)

    @property
    def width(self):
        """What o_proj writes: `out`, or the width the layer reads."""
        return self.out if self.out is not None else self.dim

    def out_width(self, flow):
        return self.width

    @staticmethod
    def grads(ctx: Ctx) -> tuple[bool, bool, bool]:
        """Whether q, k and v need a gradient: always in full training; under a fine-tune, from
        the first layer with a trainable weight on (or any before it)."""
        return tuple(ctx.grad_after(name) for name in ("q_proj", "k_proj", "v_proj"))

    def saved(self, ctx: Ctx):
        b, T, h, kv, hd = ctx.batch, ctx.seq_len, self.heads, self.n_kv, self.d_head
        gq, gk, gv = self.grads(ctx)
        values = ctx.tokens * h * hd * ACT  # the core's output as o_proj's input is laid out: (b, T, h x hd)
        # x, and o_proj's input
        kept = (ctx.linear_saved(self.dim, ("q_proj", "k_proj", "v_proj"))
                + ctx.linear_saved(h * hd, ("o_proj",), stored=values, input_grad=gq or gk or gv))
        out_kept = ctx.reads(("o_proj",))
        if self.gate:  # o_proj's input is the gated product; the product keeps the core's output and sigmoid's
            kept += values * (int(gq) + int(gq or gk or gv))
            out_kept = int(gq)
        if self.qk_norm:  # on each head or on all at once; its input's storage is the projection's output
            full = self.qk_norm == "full"
            kept += sum(rms_saved(b * T * (1 if full else n), n * hd if full else hd,
                                  ctx.tokens * n * hd * ACT * wide, *norm_grads(ctx, g))
                        for n, g, wide in ((h, gq, 2 if self.gate else 1), (kv, gk, 1)))
        if self.adapter_rank is not None:  # each adapter's second linear keeps its input
            kept += 3 * ctx.tokens * self.adapter_rank * ACT
        return Cost(saved=kept + self.output_mask(ctx)) + core_saved(
            b, h, T, T, hd, hd, self.causal, masked=self.span is not None,
            out_is_view=self.rotary(ctx.flow) is None and self.qk_norm in (False, "full"),
            prob_dropout=self.attention_dropout, grads=(gq, gk, gv), out_kept=out_kept, sinks=self.sinks)

    def output_mask(self, ctx: Ctx):
        return dropout.output_mask(ctx, self.hidden_dropout, self.width)

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        yield from adapter_checks(self, ctx)
        if self.adapter_rank is not None and (self.gate or self.qk_norm == "full"):
            yield Check("adapter_rank", sympy.false, "adapters are modelled on plain q, k and v projections "
                        "(Zamba2's), not with an output gate or a Q/K norm over all heads")
        if self.out is not None and self.residual:
            yield Check("out", sympy.Eq(self.out, self.dim), "out {} differs from dim {}: a layer that changes the "
                        "width cannot add its input back; set residual: false", (self.out, self.dim))
        if self.window is not None and not self.causal:
            yield Check("window", sympy.false, "a sliding window needs causal: true")
        if self.chunk is not None and not self.causal:
            yield Check("chunk", sympy.false, "chunked attention needs causal: true")
        if self.chunk is not None and self.window is not None:
            yield Check("chunk", sympy.false, "a layer takes a window or chunks, not both")
        if self.gate and self.qk_norm not in (True, "head"):  # else q would be a view of the doubled projection
            yield Check("gate", sympy.false, "an output gate is modelled with per-head Q/K norms (qk_norm: true), "
                        "as Qwen3-Next has them")
        if (rotary := self.rotary(ctx.flow)) is not None:
            yield Check("head_dim", rotary <= self.d_head, "rotary dim {} exceeds head_dim {}", (rotary, self.d_head))

    @property
    def span(self):
        """The most earlier keys plus one a query can see: the window, or the chunk (None: all)."""
        return self.window if self.window is not None else self.chunk

    def rotary(self, flow):
        """The rotary dims this layer rotates: the rotary layer's, unless rope is off."""
        return flow.rotary if self.rope else None

    def build(self, b):
        from torch import nn

        from . import rotary

        d, h, kv, hd = b.int(self.dim), b.int(self.heads), b.int(self.n_kv), b.int(self.d_head)
        rotate = self.rotary(b.flow) is not None
        causal, residual = self.causal, self.residual
        mods = {
            "q_proj": nn.Linear(d, h * hd * (2 if self.gate else 1), bias=self.has_bias("q")),
            "k_proj": nn.Linear(d, kv * hd, bias=self.has_bias("k")),
            "v_proj": nn.Linear(d, kv * hd, bias=self.has_bias("v")),
            "o_proj": nn.Linear(h * hd, b.int(self.width), bias=self.has_bias("o")),
        }
        if self.adapter_rank is not None:
            r = b.int(self.adapter_rank)
            mods["adapter"] = nn.ModuleDict({name: adapter_module(d, r, n * hd) for name, n in
                                             (("q", h), ("k", kv), ("v", kv))})
        adapted = self.adapter_rank is not None
        full = self.qk_norm == "full"
        if self.qk_norm:
            mods |= {"q_norm": nn.RMSNorm(h * hd if full else hd), "k_norm": nn.RMSNorm(kv * hd if full else hd)}

        window = None if self.window is None else b.int(self.window)
        chunk = None if self.chunk is None else b.int(self.chunk)
        span = window or chunk
        qk_norm, attend, sinks, gated = self.qk_norm, core(b, self.sinks), self.sinks, self.gate
        drop_probs, drop_out = b.rate(self.attention_dropout), b.rate(self.hidden_dropout)

        def heads(t):  # (B, T, n·hd) -> (B, n, T, hd), n from the shape: a tensor-parallel rank holds h/tp heads
            return t.view(*t.shape[:2], t.shape[-1] // hd, hd).transpose(1, 2)

        def forward(m, x, state):
            B, T, _ = x.shape
            if full:
                q, k, v = heads(m.q_norm(m.q_proj(x))), heads(m.k_norm(m.k_proj(x))), heads(m.v_proj(x))
            elif gated:  # each head's queries, then its gates
                q, gate = m.q_proj(x).view(B, T, -1, 2 * hd).chunk(2, dim=-1)
                q, k, v = q.transpose(1, 2), heads(m.k_proj(x)), heads(m.v_proj(x))
            elif adapted:  # each projection plus its use's adapter
                q, k, v = (heads(getattr(m, f"{n}_proj")(x) + m.adapter[n](x)) for n in "qkv")
            else:
                q, k, v = heads(m.q_proj(x)), heads(m.k_proj(x)), heads(m.v_proj(x))  # (B, h | kv, T, hd)
            if qk_norm and not full:
                q, k = m.q_norm(q), m.k_norm(k)
            if rotate:
                q, k = rotary.apply(q, state), rotary.apply(k, state)
            k, v, past = extend_cache(m, state, k, v, causal, span)  # (B, kv, past + T, hd)
            if kv != h:  # each kv head serves h/kv query heads: a copy, no arithmetic
                k = k.repeat_interleave(h // kv, dim=1)  # (B, h, past + T, hd)
                v = v.repeat_interleave(h // kv, dim=1)
            # chunks by absolute position: the first key held sits at the pass's offset less the cached keys
            chunks = None if chunk is None else (chunk, state.get("offset", 0) - past)
            extra = (m.sinks,) if sinks else ()
            out = attend(q, k, v, causal, window, past, drop_probs if m.training else 0.0, chunks, *extra)
            out = out.transpose(1, 2).reshape(B, T, out.shape[1] * hd)
            if gated:
                out = out * gate.reshape(B, T, -1).sigmoid()
            out = m.o_proj(out)  # (B, T, d)
            out = dropout.apply(out, drop_out, m.training)
            return x + out if residual else out

        part = b.part(forward, **mods)
        if sinks:
            import torch

            part.sinks = nn.Parameter(torch.zeros(h))
        return part


def score_entries(ctx: Ctx, n, causal: bool, window=None, chunk=None):
    """Score entries per (batch, head): n queries against the context's cached keys and their own.

    Only causal layers keep a cache. pytorch and macs: every key the reference multiplies
    against, whatever the mask (eager and SDPA-math kernels multiply and then mask): the
    cache and the new keys, n(c + n);
    with a window only the last w + n - 1 keys can be seen by any query, so the reference
    keeps those (a chunk of C as a window of C). `full`: only what the mask keeps — query i sees
    min(w, c + i + 1) keys; in chunks, (c + i) mod C + 1.
    """
    if not causal:  # no cache: bidirectional layers only ever see the tokens of this pass
        return n * n
    c = ctx.context
    if ctx.convention.causal_half and chunk is not None:
        return _chunk_sum(chunk, c + n) - _chunk_sum(chunk, c)
    window = window if window is not None else chunk
    if ctx.convention.causal_half:
        if window is None:
            return n * c + n * (n + 1) / 2
        return _window_sum(window, c + n) - _window_sum(window, c)
    if window is None or c == 0:
        return n * (c + n)
    return n * least(c + n, window + n - 1)


CONTEXT = symbols.dim("context")  # derive.CONTEXT's symbol: the tokens already cached before a decode step


def least(*args):
    """min, left unevaluated where it reads the context: a decode step may start from context 0, which the
    context dim's positive symbol rules out, so sympy would take min(window - 1, context + 1) for window - 1
    (window <= 2 + context always, it reasons); the numbers substituted later evaluate it."""
    return sympy.Min(*args, evaluate=not any(CONTEXT in sympy.sympify(a).free_symbols for a in args))


def _chunk_sum(C, k):
    """sum over p = 0..k-1 of (p mod C + 1): whole chunks of C(C + 1)/2 and the part of the last one."""
    whole, r = sympy.floor(k / C), k - C * sympy.floor(k / C)
    return whole * C * (C + 1) / 2 + r * (r + 1) / 2


def _window_sum(w, k):
    """sum over j = 1..k of min(w, j) = m·k - m(m - 1)/2 with m = min(w, k)."""
    m = least(w, k)
    return m * k - m * (m - 1) / 2


def cached_tokens(ctx: Ctx, window=None):
    """Tokens a layer's cache holds after this pass: the context and the new ones, at most w - 1
    with a window — all the next token's query can see besides itself, and what transformers'
    sliding-window cache keeps (DynamicSlidingWindowLayer)."""
    held = ctx.context + ctx.seq_len
    return held if window is None else least(window - 1, held)


def products(ctx: Ctx, heads, entries, qk_dim, v_dim, grads=(True, True, True)) -> dict:
    """The two parameter-free matmuls of attention, over `entries` scores per (batch, head);
    `grads`: whether q, k and v need a gradient."""
    b, conv = ctx.batch, ctx.convention
    gq, gk, gv = grads
    return {
        # scores: q (b·h, n, qk_dim) @ k^T (b·h, qk_dim, n_k) -> (b·h, n, n_k), then scale and softmax
        "scores": ops.matmul(conv, b * heads, entries, qk_dim, 1, grad_a=gq, grad_b=gk)
        + ctx.elementwise(b * heads * entries, "attention_scale")
        + ctx.elementwise(b * heads * entries, "softmax"),
        # values: probs (b·h, n, n_k) @ v (b·h, n_k, v_dim) -> (b·h, n, v_dim)
        "values": ops.matmul(conv, b * heads, entries, 1, v_dim, grad_a=gq or gk, grad_b=gv),
    }


def extend_cache(m, state, k, v, causal: bool, window: int | None):
    """With a decode cache in `state` and a causal layer, prepend this layer's cached keys
    and values and keep what later steps need (the last window - 1 for a sliding window);
    returns (k, v, how many of them were cached). Otherwise (k, v, 0). k, v: (B, heads, T, d)."""
    import torch

    cache = state.get("kv")
    if cache is None or not causal:
        return k, v, 0
    T = k.shape[2]
    if m in cache:
        past_k, past_v = cache[m]
        k, v = torch.cat((past_k, k), dim=2), torch.cat((past_v, v), dim=2)
    if window is not None:  # any of the T queries sees at most the last window + T - 1 keys
        k, v = k[:, :, -(window + T - 1):], v[:, :, -(window + T - 1):]
    # the next query sees itself and window - 1 before it
    start = 0 if window is None else max(k.shape[2] - (window - 1), 0)
    cache[m] = (k[:, :, start:], v[:, :, start:])
    return k, v, k.shape[2] - T


def above_one(*sizes):
    """1 when every size (a positive integer) is at least 2, else 0: min(1, size - 1) each, an
    integer form (exact and vectorisable) of the cases where PyTorch keeps a view, not a copy."""
    return sympy.Mul(*(sympy.Min(1, x - 1) for x in sizes))


def below(a, b):
    """1 when a < b, else 0, for integers."""
    return sympy.Min(1, sympy.Max(0, b - a))


def copied(heads, n):
    """1 when o_proj's input is a copy of the core's output (batch, heads, n, dim), 0 when it
    is a view of it: with one head or one query the transpose moves nothing."""
    return above_one(heads, n)


def core_saved(batch, heads, n, n_keys, qk_dim, v_dim, causal: bool, *, masked: bool = False,
               out_is_view: bool = False, v_stored=None, prob_dropout=None, grads=(True, True, True),
               out_kept=1, sinks: bool = False, selected: bool = False) -> Cost:
    """What the attention core keeps, run as `core` runs it, for n queries and n_keys keys.

    Its inputs q, k, v (`v_stored` elements when v is a slice of a larger storage) are what
    a checkpoint keeps under selective recomputation. Eager: the matmuls' copies of q, k
    and v, the n x n_keys probabilities and, causal, one boolean mask; with dropout on the
    probabilities (`prob_dropout`), their dropped copy and its one-byte mask too; with `sinks`, the
    probabilities' sink column. sdpa (PyTorch's fused
    kernel, see `sdpa`): its inputs (padded to one head size when q and v differ), its
    output (unless o_proj reads it as a view: the kernel lays it out as q is laid out, and
    q straight from q_proj is (batch, n, heads, dim) in memory), an fp32 log-sum-exp per
    row, and a sliding window's mask, made additive in the activations' dtype. `selected`: an
    indexer chose each query's keys (DeepSeek's sparse attention): a mask a sequence, and under
    selective recomputation the checkpoint keeps the boolean choice beside q, k and v.
    """
    gq, gk, gv = map(int, grads)
    if not (gq or gk or gv):  # a fine-tune's first layers, before anything trains: no graph
        return Cost()
    bh = batch * heads
    q, k, v = bh * n * qk_dim, bh * n_keys * qk_dim, bh * n_keys * v_dim
    v_stored = v if v_stored is None else v_stored
    if qk_dim == v_dim:
        # its output, unless o_proj keeps it as its own input (a view of it, or out_is_view)
        same = 1 if out_is_view else 1 - copied(heads, n)
        fused = q + k + v_stored + bh * n * v_dim * (1 - same * out_kept)
    else:  # padded to d: q and k when v is wider, v when narrower (then the output is sliced, a copy)
        d, narrower = sympy.Max(qk_dim, v_dim), below(v_dim, qk_dim)
        padded_v = narrower * bh * n_keys * d + (1 - narrower) * v_stored
        fused = bh * n * d + bh * n_keys * d + padded_v + bh * n * d * (narrower + (1 - narrower) * copied(heads, n))
    dropped = 0 if prob_dropout is None else dropout.mask(prob_dropout, bh * n * n_keys) * (1 + ACT)
    rows = batch if selected else 1  # masks: one for the batch, or one a sequence
    return Cost(
        core_inputs=(q + k + v_stored) * ACT + (batch * n * n_keys if selected else 0),
        # each matmul keeps one operand for the other's gradient; the mask serves the scores' gradient
        core_eager=(q * gk + k * gq + v * (gq or gk) + bh * n * (n_keys + int(sinks))) * ACT
        + (rows * n * n_keys if causal and (gq or gk) else 0) + dropped,
        core_sdpa=(fused + (rows * n * n_keys if masked or selected else 0)) * ACT + 4 * bh * n,
    )


def core(b, sinks: bool = False):
    """The attention core as the build asks for it: `attend` (eager) or PyTorch's
    scaled_dot_product_attention (sdpa), checkpointed under selective recomputation."""
    if sinks and b.attention != "eager":
        raise SpecError(f"{b.path}: attention sinks run eagerly here (PyTorch's scaled_dot_product_attention takes "
                        "no sink logits); measure with attention eager")
    fn = attend if b.attention == "eager" else sdpa
    if not recomputed_cores(b.recompute):
        return fn
    from .build import checkpointed

    return checkpointed(fn)


def hidden(T: int, S: int, past: int, window: int | None, chunks, device, selected=None):
    """The (T, S) boolean mask of the scores a causal query may not see (True: hidden). Query i sits at
    position past + i among the keys; `chunks`: (C, the absolute position of the first key); `selected`
    (B, T, S): the keys an indexer chose, the rest hidden too (then the mask is (B, 1, T, S))."""
    import torch

    i = torch.arange(T, device=device).unsqueeze(1) + past
    j = torch.arange(S, device=device).unsqueeze(0)
    out = j > i
    if window is not None:
        out = out | (i - j >= window)
    if chunks is not None:
        C, start = chunks
        out = out | ((i + start) // C != (j + start) // C)
    return out if selected is None else out | ~selected[:, None]


def sdpa(q, k, v, causal: bool, window: int | None, past: int = 0, p: float = 0.0, chunks=None, sinks=None,
         selected=None):
    """attend's result from F.scaled_dot_product_attention (a fused kernel: it keeps its
    output and the log-sum-exp of each row for backward, no n x n matrix). q and v of
    different head sizes (MLA) are zero-padded to one, as Hugging Face's flash path does
    for DeepSeek: PyTorch's fused kernels need one head size."""
    import torch
    from torch.nn import functional as F

    qk, vd = q.shape[-1], v.shape[-1]
    d = max(qk, vd)
    pad = lambda t: F.pad(t, (0, d - t.shape[-1])) if t.shape[-1] < d else t
    options = {"scale": qk**-0.5, "dropout_p": p}
    if causal and (window is not None or chunks is not None or past or selected is not None):
        options["attn_mask"] = ~hidden(q.shape[-2], k.shape[-2], past, window, chunks, q.device, selected)
    else:
        options["is_causal"] = causal
    out = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), **options)
    return out if vd == d else out[..., :vd].clone(memory_format=torch.contiguous_format)  # never a view of `out`


def attend(q, k, v, causal: bool, window: int | None, past: int = 0, p: float = 0.0, chunks=None, sinks=None,
           selected=None):
    """softmax(q k^T / sqrt(d)) v with explicit matmuls: FlopCounterMode counts them on every
    device (it counts 0 for F.scaled_dot_product_attention on CPU). The first `past` keys
    come from a cache: query i sits at position past + i among the keys. `sinks` (h,): a logit
    a head joins each row's softmax and is dropped after it, as transformers' gpt-oss does; `selected`
    (B, T, S): the keys each query may see besides the causal mask (DeepSeek's sparse attention).

    q: (B, h, T, d), k: (B, h, S, d), v: (B, h, S, dv) -> (B, h, T, dv)
    """
    import torch

    scores = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (B, h, T, S)
    if causal:
        scores = scores.masked_fill(hidden(*scores.shape[-2:], past, window, chunks, q.device, selected), float("-inf"))
    if sinks is None:
        probs = scores.softmax(dim=-1)
    else:
        column = sinks.view(1, -1, 1, 1).expand(*scores.shape[:-1], 1)
        probs = torch.cat((scores, column), dim=-1).softmax(dim=-1)[..., :-1]
    return torch.matmul(dropout.apply(probs, p, True), v)
