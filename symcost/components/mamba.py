"""Mamba's selective state-space layer (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling
with Selective State Spaces", Sec. 3 and Fig. 3), as Hugging Face's MambaMixer runs it without
the CUDA kernels:

    x, z = in_proj(u)                       dim -> 2 x inner
    x = silu(causal depthwise conv(x))      kernel k over the tokens (padded k - 1 each side)
    dt, B, C = x_proj(x)                    inner -> dt_rank + 2 x state
    dt = softplus(dt_proj(dt))              dt_rank -> inner
    h_t = exp(dt_t A) h_t-1 + dt_t B_t x_t  per channel: a state of `state` values
    y_t = h_t . C_t + D x_t                 (a matmul per step)
    out = out_proj(y * silu(z))             inner -> dim

Parameters: the four projections, the conv, A (inner x state) and D (inner). FLOPs under
pytorch: the projections, the conv over T + k - 1 positions (it is padded on both sides and
cut to T after; NB: its weight gradient counts inner x the forward, as the counter's formula
for a grouped convolution does), and y's contraction with C, a matmul of 2·b·T·inner·state.
NB: the counter sees none of the scan's recurrence (exp, the state update): elementwise work,
counted under `full` at conventions' constants ("ssm_discretize", "ssm_step").

Work and memory grow linearly in seq_len — against attention's n². For inference a layer keeps
a recurrent state instead of a growing KV cache: the conv's last k inputs and the SSM state,
batch x inner x (k + state) values, whatever the context (`cache` here). A decode step runs the
conv over those k inputs and the new one, unpadded (two output positions, the last kept), as
transformers' cache does (conv.py's `causal_conv`), so its FLOPs do not depend on the context.
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from .. import ops
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size
from .conv import causal_conv, conv_cost


class Mamba(Component):
    kind = "mamba"
    sequential = True
    dim: Size
    inner: Size  # expand x dim in Mamba's configs
    state: Size  # d_state (N)
    kernel: Size = 4  # d_conv
    dt_rank: Size  # ceil(dim / 16) in Mamba's configs
    bias: StrictBool = False  # in_proj and out_proj
    conv_bias: StrictBool = True
    norms: StrictBool = False  # an RMSNorm each on dt, B and C after x_proj (Jamba)
    residual: StrictBool = True

    def parts(self, ctx: Ctx):
        T = ctx.need_tokens()
        tokens, di, n, k, r = ctx.tokens, self.inner, self.state, self.kernel, self.dt_rank
        states = tokens * di * n
        parts = {
            "in_proj": ctx.linear(self.dim, 2 * di, self.bias),
            # padded on both sides over a sequence; a decode step convolves the k kept inputs and the new one
            "conv": conv_cost(ctx, di, di, k, 2 * T if ctx.decoding else T + k - 1, di, self.conv_bias, input_grad=True)
            + ctx.elementwise(tokens * di, "silu"),
            "x_proj": ctx.linear(di, r + 2 * n, False, input_grad=True) + (
                Cost.weights(r + 2 * n) + ctx.elementwise(tokens * (r + 2 * n), "rmsnorm")
                + ctx.elementwise(tokens * (r + 2 * n), "affine") if self.norms else Cost()),
            "dt_proj": ctx.linear(r, di, True, input_grad=True) + ctx.elementwise(tokens * di, "softplus"),
            # A = -exp(A_log) and D: parameters; the recurrence is elementwise
            "scan": Cost.weights(di * n + di) + ctx.elementwise(di * n, "exp")
            + ctx.elementwise(states, "ssm_discretize") + ctx.elementwise(states, "ssm_step")
            # y_t = h_t . C_t: (b, inner, state) @ (b, state, 1) at each step
            + ops.matmul(ctx.convention, tokens, di, n, 1, grad_a=True, grad_b=True)
            + ctx.elementwise(tokens * di, "ssm_skip")
            + ctx.elementwise(tokens * di, "silu") + ctx.elementwise(tokens * di, "gate"),
            "out_proj": ctx.linear(di, self.dim, self.bias, input_grad=True),
            "state": Cost(cache=ctx.batch * di * (k + n)),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * self.dim, "residual")
        return parts

    def saved(self, ctx: Ctx):
        """As the build below keeps them: per token in_proj's output (2 x inner), the conv's
        input is a view of it; the conv's output over T + k - 1 positions (silu's input); x as
        x_proj reads it, x_proj's output (which dt_proj, B and C are views of), softplus's input
        and output, y + D x, silu(z) and out_proj's input (inner each); per state element
        exp(dt A), dt B and every state h_0..h_T (h_0 = 0 included: the update keeps it); and
        exp(A_log) and A (inner x state, once)."""
        b, T, tokens, di, n, k, r = ctx.batch, ctx.seq_len, ctx.tokens, self.inner, self.state, self.kernel, self.dt_rank
        kept = (tokens * 8 * di + b * di * (T + k - 1) + (3 * tokens + b) * di * n + 2 * di * n) * ACT
        projected = tokens * (r + 2 * n)  # x_proj's output
        if self.norms:  # each norm keeps, as RMSNorm does, its input in fp32 (x_proj's output itself when
            # fp32, once for the three), 1/rms per row and the normalised values; the next op keeps its output
            kept += (sympy.Piecewise((projected * ACT, sympy.Eq(ACT, 4)), (4 * projected, True))
                     + 4 * (3 * tokens + projected) + projected * ACT)
        else:
            kept += projected * ACT
        return Cost(saved=ctx.input_saved(self.dim) + kept)

    def build(self, b):
        import torch
        from torch import nn
        from torch.nn import functional as F

        from .build import layer_state

        d, di, n, k, r = (b.int(x) for x in (self.dim, self.inner, self.state, self.kernel, self.dt_rank))
        residual = self.residual
        mods = {
            "in_proj": nn.Linear(d, 2 * di, bias=self.bias),
            "conv": nn.Conv1d(di, di, k, groups=di, padding=k - 1, bias=self.conv_bias),
            "x_proj": nn.Linear(di, r + 2 * n, bias=False),
            "dt_proj": nn.Linear(r, di, bias=True),
            "out_proj": nn.Linear(di, d, bias=self.bias),
        }

        norms = self.norms
        if norms:
            mods |= {"dt_norm": nn.RMSNorm(r), "b_norm": nn.RMSNorm(n), "c_norm": nn.RMSNorm(n)}

        def forward(m, u, state):
            B, T, _ = u.shape
            cache = layer_state(state, m)  # a decoder's recurrent state
            x, z = m.in_proj(u).chunk(2, dim=-1)  # (B, T, inner) views
            x = x.transpose(1, 2)  # (B, inner, T)
            x = F.silu(causal_conv(m.conv, x, cache)).transpose(1, 2).contiguous()
            dt, Bm, Cm = m.x_proj(x).split([r, n, n], dim=-1)
            if norms:
                dt, Bm, Cm = m.dt_norm(dt), m.b_norm(Bm), m.c_norm(Cm)
            dt = F.softplus(m.dt_proj(dt))  # (B, T, inner)
            A = -torch.exp(m.A_log)  # (inner, state)
            dA = torch.exp(dt.unsqueeze(-1) * A)  # (B, T, inner, state)
            dBx = (dt.unsqueeze(-1) * Bm.unsqueeze(2)) * x.unsqueeze(-1)
            h = cache["ssm"] if cache and "ssm" in cache else u.new_zeros(B, di, n)  # the kept state, or 0
            ys = []
            for t in range(T):
                h = dA[:, t] * h + dBx[:, t]
                ys.append(torch.matmul(h, Cm[:, t].unsqueeze(-1)))  # (B, inner, 1)
            if cache is not None:
                cache["ssm"] = h
            y = torch.cat(ys, dim=-1).transpose(1, 2) + x * m.D  # (B, T, inner)
            out = m.out_proj(y * F.silu(z))
            return u + out if residual else out

        part = b.part(forward, **mods)
        part.A_log = nn.Parameter(torch.zeros(di, n))
        part.D = nn.Parameter(torch.ones(di))
        return part
