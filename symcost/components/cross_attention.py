"""Cross-attention (Vaswani et al. 2017; T5, BART): queries from this stream, keys and
values from the output of an `encoder` block earlier in the spec.

With n target tokens and m source tokens: the query and output projections run over
b·n tokens, the key and value projections over b·m memory tokens, and the two
parameter-free matmuls cost 2·b·h·n·m·head_dim FLOPs each. Never causal: every target
token sees the whole source.
"""

from __future__ import annotations

from dataclasses import replace

import sympy
from pydantic import StrictBool

from ..checks import Check
from ..cost import Cost

from ..symbols import ACT
from .attention import Projections, core, core_saved, products
from .base import Ctx, Size


class CrossAttention(Projections):
    kind = "cross_attention"
    mixes_tokens = True
    attends = "cross"
    reads_memory = True
    memory_dim: Size | None = None  # the encoder output's width; default: dim
    residual: StrictBool = True

    @property
    def d_memory(self):
        return self.memory_dim if self.memory_dim is not None else self.dim

    def parts(self, ctx: Ctx):
        memory = self.encoder_output(ctx)
        h, kv, hd = self.heads, self.n_kv, self.d_head
        memory_tokens = ctx.batch * memory.length

        def projection(proj: str) -> Cost:
            cost = ctx.linear(self.d_memory, kv * hd, self.has_bias(proj), tokens=memory_tokens, input_grad=memory.grad)
            # decoding, the memory's keys and values were computed at prefill: weights, no work
            return Cost.weights(cost.params) if ctx.decoding else cost

        return {
            "q_proj": ctx.linear(self.dim, h * hd, self.has_bias("q")),
            "k_proj": projection("k"),
            "v_proj": projection("v"),
            **products(ctx, h, ctx.seq_len * memory.length, hd, hd),
            "kv_cache": Cost(cache=memory_tokens * 2 * kv * hd),
            "o_proj": ctx.linear(h * hd, self.dim, self.has_bias("o"), input_grad=True),
            **({"residual": ctx.elementwise(ctx.tokens * self.dim, "residual")} if self.residual else {}),
        }

    def saved(self, ctx: Ctx):
        memory, h, hd = ctx.flow.memory, self.heads, self.d_head
        # x, o_proj's input, and the encoder's output, which the first cross-attention layer keeps for all
        kept = ctx.input_saved(self.dim) + ctx.tokens * h * hd * ACT + memory.saved(ctx.batch, self.d_memory)
        return Cost(saved=kept) + core_saved(ctx.batch, h, ctx.seq_len, memory.length, hd, hd, False, out_is_view=True)

    def after(self, flow):
        return replace(super().after(flow), memory=replace(flow.memory, kept=True))

    def checks(self, ctx):
        yield from super().checks(ctx)
        if (width := ctx.flow.memory.width) is not None:
            yield Check("memory_dim", sympy.Eq(width, self.d_memory), "the encoder gives {} features, memory_dim is {}",
                        (width, self.d_memory))

    def build(self, b):
        from torch import nn

        d, h, kv, hd, dm = (b.int(x) for x in (self.dim, self.heads, self.n_kv, self.d_head, self.d_memory))
        residual = self.residual
        mods = {
            "q_proj": nn.Linear(d, h * hd, bias=self.has_bias("q")),
            "k_proj": nn.Linear(dm, kv * hd, bias=self.has_bias("k")),
            "v_proj": nn.Linear(dm, kv * hd, bias=self.has_bias("v")),
            "o_proj": nn.Linear(h * hd, d, bias=self.has_bias("o")),
        }

        attend = core(b)

        def forward(m, x, state):
            B, T, _ = x.shape
            q = m.q_proj(x).view(B, T, h, hd).transpose(1, 2)  # (B, h, T, hd)
            cache = state.get("kv")
            if cache is not None and m in cache:  # a decode step: the memory's keys and values are kept
                k, v = cache[m]
            else:
                memory = state["memory"]  # (B, S, dm)
                S = memory.shape[1]
                k = m.k_proj(memory).view(B, S, kv, hd).transpose(1, 2)  # (B, kv, S, hd)
                v = m.v_proj(memory).view(B, S, kv, hd).transpose(1, 2)
                if cache is not None:
                    cache[m] = (k, v)
            if kv != h:
                k, v = k.repeat_interleave(h // kv, dim=1), v.repeat_interleave(h // kv, dim=1)
            out = attend(q, k, v, False, None)  # (B, h, T, hd)
            out = m.o_proj(out.transpose(1, 2).reshape(B, T, h * hd))
            return x + out if residual else out

        return b.part(forward, **mods)
