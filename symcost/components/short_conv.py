"""LFM2's gated short convolution (Liquid AI 2025; the double-gated short conv of Hyena's family): a
depthwise causal convolution of a few taps between two input-dependent gates, as transformers'
Lfm2ShortConv runs it,

    B, C, x = in_proj(u)          dim -> 3 x dim
    y = C * conv(B * x)           depthwise over dim channels, kernel k (conv_L_cache), padded k - 1
    out = out_proj(y)

Parameters in the two projections and the kernel's k taps a channel; FLOPs in the projections and
the convolution (2·dim·k a position, over T + k - 1 positions as PyTorch's padded conv computes
them); the gates are elementwise. A decode step convolves the k kept inputs and the new one (two
outputs, the last kept), as transformers' cache runs it; the cache holds batch x dim x k values
(transformers' LinearAttentionLayer keeps k inputs; serving engines keep k - 1).
"""

from __future__ import annotations

from pydantic import StrictBool

from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size
from .conv import causal_conv, conv_cost


class ShortConv(Component):
    kind = "short_conv"
    sequential = True
    dim: Size
    kernel: Size = 3  # conv_L_cache
    bias: StrictBool = False  # conv_bias: the projections' and the conv's
    residual: StrictBool = True

    def parts(self, ctx: Ctx):
        T = ctx.need_tokens()
        d, k, tokens = self.dim, self.kernel, ctx.tokens
        parts = {
            "in_proj": ctx.linear(d, 3 * d, self.bias),
            # padded on both sides over a sequence; a decode step convolves the k kept inputs and the new one
            "conv": conv_cost(ctx, d, d, k, 2 * T if ctx.decoding else T + k - 1, d, self.bias, input_grad=True)
            + ctx.elementwise(2 * tokens * d, "gate"),
            "out_proj": ctx.linear(d, d, self.bias, input_grad=True),
            "state": Cost(cache=ctx.batch * d * k),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * d, "residual")
        return parts

    def saved(self, ctx: Ctx):
        """The input; in_proj's output (B, C and x are views of it, which the gates keep); B·x (the conv's
        input); the conv's output over T + k - 1 positions (its first T, which C multiplies, a view of it);
        and C·conv, out_proj's input."""
        b, T, d, k = ctx.batch, ctx.seq_len, self.dim, self.kernel
        return Cost(saved=ctx.input_saved(d) + b * d * (3 * T + T + (T + k - 1) + T) * ACT)

    def build(self, b):
        from torch import nn

        from .build import layer_state

        d, k, residual = b.int(self.dim), b.int(self.kernel), self.residual
        mods = {
            "in_proj": nn.Linear(d, 3 * d, bias=self.bias),
            "conv": nn.Conv1d(d, d, k, groups=d, padding=k - 1, bias=self.bias),
            "out_proj": nn.Linear(d, d, bias=self.bias),
        }

        def forward(m, u, state):
            cache = layer_state(state, m)
            gate_b, gate_c, x = m.in_proj(u).transpose(-1, -2).chunk(3, dim=-2)  # (B, d, T) each
            h = causal_conv(m.conv, gate_b * x, cache)
            out = m.out_proj((gate_c * h).transpose(-1, -2).contiguous())
            return u + out if residual else out

        return b.part(forward, **mods)
