"""Multi-head self-attention (Vaswani et al. 2017) with grouped key/value heads
(GQA, Ainslie et al. 2023; MQA when kv_heads = 1) and per-projection bias switches.

Parameters live only in the four projections. The score and value matmuls hold none but
cost 2 x 2·b·h·n²·head_dim FLOPs forward — the n² term. NB: under pytorch (and macs) the
causal mask does not shrink the count: the kernels multiply the whole score matrix and
mask afterwards. Under `full`, causal attention counts the n(n+1)/2 scores that matter.
"""

from __future__ import annotations

from pydantic import StrictBool

from .. import ops
from ..cost import Cost
from .base import Component, Ctx, Size


class Attention(Component):
    kind = "attention"
    dim: Size
    heads: Size
    kv_heads: Size | None = None  # default: heads (multi-head); 1 is multi-query
    head_dim: Size | None = None  # default: dim / heads
    bias: StrictBool = False  # default for each projection's bias below
    q_bias: StrictBool | None = None
    k_bias: StrictBool | None = None
    v_bias: StrictBool | None = None
    o_bias: StrictBool | None = None
    causal: StrictBool = False
    residual: StrictBool = True  # output is added to the input stream

    # Shared quantities are derived once, here, for the cost rule and the builder alike.
    @property
    def d_head(self):
        return self.head_dim if self.head_dim is not None else self.dim / self.heads

    @property
    def n_kv(self):
        return self.kv_heads if self.kv_heads is not None else self.heads

    def has_bias(self, proj: str) -> bool:
        own = getattr(self, f"{proj}_bias")
        return self.bias if own is None else own

    def parts(self, ctx: Ctx):
        b, n, h, kv, hd = ctx.batch, ctx.seq_len, self.heads, self.n_kv, self.d_head
        conv = ctx.convention
        # Score entries per (batch, head): all n² under pytorch; the causal half under `full`.
        entries = n * (n + 1) / 2 if (self.causal and conv.causal_half) else n * n
        parts = {
            "q_proj": ctx.linear(self.dim, h * hd, self.has_bias("q")),
            "k_proj": ctx.linear(self.dim, kv * hd, self.has_bias("k")),
            "v_proj": ctx.linear(self.dim, kv * hd, self.has_bias("v")),
        }
        if ctx.flow.rotary is not None:
            parts["rotary"] = ctx.elementwise(ctx.tokens * (h + kv) * ctx.flow.rotary, "rotary")
        # scores: q (b·h, n, hd) @ k^T (b·h, hd, n) -> (b·h, n, n), then scale and softmax
        parts["scores"] = (
            ops.matmul(conv, b * h, entries, hd, 1, grad_a=True, grad_b=True)
            + ctx.elementwise(b * h * entries, "attention_scale")
            + ctx.elementwise(b * h * entries, "softmax")
        )
        # values: probs (b·h, n, n) @ v (b·h, n, hd) -> (b·h, n, hd)
        parts["values"] = ops.matmul(conv, b * h, entries, 1, hd, grad_a=True, grad_b=True)
        parts["o_proj"] = ctx.linear(h * hd, self.dim, self.has_bias("o"), input_grad=True)
        if self.residual:
            parts["residual"] = ctx.elementwise(ctx.tokens * self.dim, "residual")
        return parts

    def problems(self, value, ctx: Ctx):
        yield from super().problems(value, ctx)
        dim, heads, kv = value(self.dim), value(self.heads), value(self.n_kv)
        if self.head_dim is None and dim % heads:
            yield "heads", f"{heads} heads do not divide dim {dim}; set head_dim or change heads"
        if heads % kv:
            yield "kv_heads", f"{kv} kv_heads do not divide {heads} heads"
        if ctx.flow.rotary is not None and value(ctx.flow.rotary) > value(self.d_head):
            yield "head_dim", f"rotary dim {value(ctx.flow.rotary)} exceeds head_dim {value(self.d_head)}"

    def build(self, b):
        import torch
        from torch import nn

        from . import rotary

        d, h, kv, hd = b.int(self.dim), b.int(self.heads), b.int(self.n_kv), b.int(self.d_head)
        rotate = b.flow.rotary is not None
        causal, residual = self.causal, self.residual
        mods = {
            "q_proj": nn.Linear(d, h * hd, bias=self.has_bias("q")),
            "k_proj": nn.Linear(d, kv * hd, bias=self.has_bias("k")),
            "v_proj": nn.Linear(d, kv * hd, bias=self.has_bias("v")),
            "o_proj": nn.Linear(h * hd, d, bias=self.has_bias("o")),
        }

        # Written out with matmul rather than F.scaled_dot_product_attention: on CPU the
        # flop counter sees 0 for SDPA, and an explicit product is what it can count.
        def forward(m, x, state):
            B, T, _ = x.shape
            q = m.q_proj(x).view(B, T, h, hd).transpose(1, 2)  # (B, h, T, hd)
            k = m.k_proj(x).view(B, T, kv, hd).transpose(1, 2)  # (B, kv, T, hd)
            v = m.v_proj(x).view(B, T, kv, hd).transpose(1, 2)  # (B, kv, T, hd)
            if rotate:
                q, k = rotary.apply(q, state), rotary.apply(k, state)
            if kv != h:  # each kv head serves h/kv query heads: a copy, no arithmetic
                k = k.repeat_interleave(h // kv, dim=1)  # (B, h, T, hd)
                v = v.repeat_interleave(h // kv, dim=1)
            scores = torch.matmul(q, k.transpose(-2, -1)) * hd**-0.5  # (B, h, T, T)
            if causal:
                future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(future, float("-inf"))
            out = torch.matmul(scores.softmax(dim=-1), v)  # (B, h, T, hd)
            out = m.o_proj(out.transpose(1, 2).reshape(B, T, h * hd))  # (B, T, d)
            return x + out if residual else out

        return b.part(forward, **mods)
