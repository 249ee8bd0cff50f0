"""Mamba-2's state-space layer (Dao & Gu 2024, "Transformers are SSMs: Generalized Models and
Efficient Algorithms Through Structured State Space Duality", Sec. 6-7), as Hugging Face's
Mamba2Mixer runs it without the CUDA kernels (its torch path, the paper's "SSD minimal"):

    z, xBC, dt = in_proj(u)                  dim -> inner + (inner + 2 x groups x state) + heads
    x, B, C = silu(causal depthwise conv(xBC))     kernel k, padded k - 1 each side
    dt = softplus(dt + dt_bias)              one step size per head (A: one scalar per head)
    y = SSD(x, dt, A, B, C) + D x            heads of head_dim = inner / heads; B and C per group
    out = out_proj(rmsnorm(y * silu(z)))     the norm over each group's inner / groups channels
                                             (`norm: false`: out_proj(y * silu(z)), as Falcon-H1's)

SSD runs by chunks of `chunk` tokens (the sequence zero-padded to c = ceil(seq_len / chunk)
of them), five matmuls a layer, each of which FlopCounterMode counts (2 FLOPs a multiply-add):
within a chunk, the scores C·B (b·c·h·Q²·state multiply-adds) and their product with x
(b·c·h·Q²·head_dim); each chunk's end state B·x (b·c·h·Q·head_dim·state); the carry between
chunks ((c + 1)² chunk pairs a head: b·h·(c+1)²·head_dim·state — quadratic in the number of
chunks, as the torch path computes it); and the carried states read out by C
(b·c·h·Q·state·head_dim). Every matmul's operands need gradients, so backward is twice forward.
The decay masks (cumsums and exps over Q x Q per chunk), the step sizes and the gated norm are
elementwise: counted under `full` only, at conventions' constants.

A decode step runs the recurrent form instead, as transformers does for one token against a
cache: the state (head_dim x state per head) is decayed and updated elementwise and read out
by one matmul (b·h·head_dim·state multiply-adds); the conv convolves the k inputs kept and the
new one (two outputs, as transformers' cache does: conv.py's `causal_conv`). The cache is
batch x ((inner + 2 x groups x state) x k + inner x state) values, whatever the context.

NB: transformers' torch path upcasts the scan and the gated norm to fp32; the reference build
here runs them in the activation dtype, so under bf16 training it saves fewer bytes than that
path would (fp32 training saves the same). The fused kernels that train Mamba-2 in practice
recompute most of this and keep far less.
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from .. import ops
from ..checks import Check, divides
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Domain, Size, number
from .conv import causal_conv, conv_cost


# torch.einsum multiplies elementwise, not by bmm, where the size it contracts is 1, and the
# counter then counts nothing: the state (contracted by C.B) and the chunk (by the two
# in-chunk products) are refused at 1 rather than written with an indicator in every formula.
CONTRACTED = Domain(2, "an integer >= 2 (at 1 torch.einsum contracts it elementwise, which FlopCounterMode "
                    "does not count)")
Contracted = number(CONTRACTED)


class Mamba2(Component):
    kind = "mamba2"
    sequential = True
    dim: Size
    inner: Size  # expand x dim in Mamba-2's configs
    heads: Size  # inner / head_dim
    state: Contracted  # d_state (N)
    groups: Size = 1  # n_groups: heads in a group share B and C
    kernel: Size = 4  # d_conv
    chunk: Contracted = 256  # chunk_size: SSD's block length
    bias: StrictBool = False  # in_proj's, and out_proj's unless out_bias says
    out_bias: StrictBool | None = None  # out_proj's, where it differs (Falcon-H1's projectors_bias)
    norm: StrictBool = True  # the gated RMSNorm (its weight); false: the gate alone
    conv_bias: StrictBool = True
    residual: StrictBool = True

    @property
    def head_dim(self) -> sympy.Expr:
        return self.inner / self.heads

    @property
    def out_proj_bias(self) -> bool:
        return self.bias if self.out_bias is None else self.out_bias

    @property
    def conv_dim(self) -> sympy.Expr:
        """Channels the conv runs over: x, B and C."""
        return self.inner + 2 * self.groups * self.state

    def chunks(self, ctx: Ctx) -> sympy.Expr:
        return sympy.ceiling(ctx.seq_len / self.chunk)

    def parts(self, ctx: Ctx):
        T = ctx.need_tokens()
        b, tokens, di, h, n, k, cd = ctx.batch, ctx.tokens, self.inner, self.heads, self.state, self.kernel, self.conv_dim
        p, conv = self.head_dim, ctx.convention
        mm = lambda batch, m, kk, nn: ops.matmul(conv, batch, m, kk, nn, grad_a=True, grad_b=True)
        scan = (Cost.weights(3 * h) + ctx.elementwise(h, "exp")  # dt_bias, A_log and D; A = -exp(A_log)
                + ctx.elementwise(tokens * h, "bias") + ctx.elementwise(tokens * h, "softplus"))
        if ctx.decoding:  # the recurrent form, per state element; y = h . C, a matmul per head
            scan += (ctx.elementwise(tokens * di * n, "ssm_discretize") + ctx.elementwise(tokens * di * n, "ssm_step")
                     + mm(tokens * h, p, n, 1) + ctx.elementwise(tokens * di, "ssm_skip"))
        else:
            c, Q = self.chunks(ctx), self.chunk
            blocks = b * c * h  # (batch, chunk, head) blocks of Q positions
            scan += (ctx.elementwise(tokens * (di + h), "scale")  # x * dt and A * dt
                     + ctx.elementwise(blocks * Q, "ssd_decay") + ctx.elementwise(blocks * Q * Q, "ssd_mask")
                     + mm(blocks, Q, n, Q) + mm(blocks, Q, Q, p)  # scores C.B; times x
                     + ctx.elementwise(blocks * Q * n, "scale") + mm(blocks, p, Q, n)  # decayed B; chunk end states
                     + ctx.elementwise(b * h * (c + 1) ** 2, "ssd_carry") + mm(b * h, c + 1, c + 1, p * n)  # the carry
                     + mm(blocks, Q, n, p)  # carried states read out by C
                     + ctx.elementwise(blocks * Q * p, "ssd_combine") + ctx.elementwise(blocks * Q * p, "ssm_skip"))
        parts = {
            "in_proj": ctx.linear(self.dim, di + cd + h, self.bias),
            # padded on both sides over a sequence; a decode step convolves the k kept inputs and the new one
            "conv": conv_cost(ctx, cd, cd, k, 2 * T if ctx.decoding else T + k - 1, cd, self.conv_bias, input_grad=True)
            + ctx.elementwise(tokens * cd, "silu"),
            "scan": scan,
            # rmsnorm(y * silu(z)) by group, then its weight; or y * silu(z)
            "norm": Cost.weights(di * int(self.norm)) + sum((ctx.elementwise(tokens * di, e) for e in (
                "silu", "gate", *("rmsnorm", "affine") * self.norm)), Cost()),
            "out_proj": ctx.linear(di, self.dim, self.out_proj_bias, input_grad=True),
            "state": Cost(cache=b * (cd * k + di * n)),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * self.dim, "residual")
        return parts

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        yield Check("heads", divides(self.heads, self.inner), "{} heads do not divide inner {}", (self.heads, self.inner))
        yield Check("groups", divides(self.groups, self.heads), "{} groups do not divide {} heads",
                    (self.groups, self.heads))

    def saved(self, ctx: Ctx):
        """As the build below keeps them. Per token: in_proj's output (the conv's input is a view
        of it; so are z and dt), softplus's and clamp's inputs and clamp's output (dt, per head),
        the conv's output over T + k - 1 positions (silu's input) and silu's output (x, B and C
        are views of it), and for the gated norm silu(z), y * silu(z), 1/rms per group, the
        normalised values and their product with the weight (out_proj's input; without the norm,
        silu(z) and y * silu(z) alone). Over the padded
        length P = c·Q: x for the skip, and the scan's output y. Per (batch, chunk, head) block:
        the copies `mm` makes of the matmuls' operands (C twice, B and the decayed B once, Q x
        state each; x twice, Q x head_dim; the masked scores, Q x Q; the carried states, head_dim
        x state), the scores and their decay mask (Q x Q each), the two decays (Q each), B as
        padded (Q x state) and the carried states read out (Q x head_dim). Per (batch, head): the
        carry's decays and their copy ((c + 1)^2 each) and the end states copied ((c + 1) x
        head_dim x state). The four boolean masks of the two segment sums (one byte a value),
        and A and exp(A_log)."""
        b, T, d, di, h, n, g, k, cd = (ctx.batch, ctx.seq_len, self.dim, self.inner, self.heads, self.state,
                                       self.groups, self.kernel, self.conv_dim)
        c, Q, p = self.chunks(ctx), self.chunk, self.head_dim
        P, blocks = c * Q, b * c * h
        tokens = b * T * (di + cd + h + 3 * h + cd + (4 * di + g if self.norm else 2 * di))
        padded = 2 * b * P * di
        per_block = 5 * Q * n + 3 * Q * p + 3 * Q * Q + n * p + 2 * Q
        carry = b * h * (2 * (c + 1) ** 2 + (c + 1) * p * n)
        kept = (b * cd * (T + k - 1) + tokens + padded + blocks * per_block + carry + 2 * h) * ACT
        return Cost(saved=ctx.input_saved(d) + kept + 2 * Q * Q + 2 * (c + 1) ** 2)

    def build(self, b):
        import torch
        from torch import nn
        from torch.nn import functional as F

        from .build import layer_state

        d, di, h, n, g, k, Q = (b.int(x) for x in (self.dim, self.inner, self.heads, self.state, self.groups,
                                                   self.kernel, self.chunk))
        p, cd, residual, norm = di // h, di + 2 * g * n, self.residual, self.norm
        mods = {
            "in_proj": nn.Linear(d, di + cd + h, bias=self.bias),
            "conv": nn.Conv1d(cd, cd, k, groups=cd, padding=k - 1, bias=self.conv_bias),
            "out_proj": nn.Linear(di, d, bias=self.out_proj_bias),
        }

        def forward(m, u, state):
            B, T, _ = u.shape
            cache = layer_state(state, m)  # a decoder's recurrent state
            z, xBC, dt = m.in_proj(u).split([di, cd, h], dim=-1)
            xBC = xBC.transpose(1, 2)  # (B, conv channels, T)
            x, Bm, Cm = F.silu(causal_conv(m.conv, xBC, cache)).transpose(1, 2).split([di, g * n, g * n], dim=-1)
            A = -torch.exp(m.A_log)
            dt = F.softplus(dt + m.dt_bias)
            h0 = cache.get("ssm") if cache is not None else None
            if cache is not None and T == 1:  # a decode step: the recurrent form, from a zero state before any
                h0 = h0 if h0 is not None else u.new_zeros(B, h, p, n)
                y, last = recurrent(x.reshape(B, h, p), dt.view(B, h), A, Bm.reshape(B, g, n), Cm.reshape(B, g, n),
                                    m.D, h0)
            else:
                y, last = ssd(x.reshape(B, T, h, p), torch.clamp(dt, 0.0, float("inf")), A, Bm.reshape(B, T, g, n),
                              Cm.reshape(B, T, g, n), m.D, h0)
            if cache is not None:
                cache["ssm"] = last
            y = y.reshape(B, T, di) * F.silu(z)
            if norm:
                grouped = y.view(B, T, g, di // g)
                y = m.norm * (grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + 1e-6)).view(B, T, di)
            out = m.out_proj(y)
            return u + out if residual else out

        def segsum(a):
            """(..., L) -> (..., L, L): the sums of a over (j, i] below the diagonal, -inf above."""
            L = a.shape[-1]
            ones = torch.ones(L, L, dtype=torch.bool, device=a.device)
            a = a[..., None].expand(*a.shape, L).masked_fill(~torch.tril(ones, diagonal=-1), 0)
            return torch.cumsum(a, dim=-2).masked_fill(~torch.tril(ones), -torch.inf)

        def mm(a, b):
            """a @ b over their leading dims, each operand copied first, as torch.einsum copies
            them in general (always here, so what backward keeps does not depend on the sizes)."""
            a, b = (t.clone(memory_format=torch.contiguous_format) for t in (a, b))
            out = torch.bmm(a.view(-1, *a.shape[-2:]), b.view(-1, *b.shape[-2:]))
            return out.view(*a.shape[:-1], b.shape[-1])

        def ssd(x, dt, A, Bm, Cm, D, h0):
            """SSD by chunks of Q: x (B, T, h, p), dt (B, T, h), A (h), B and C (B, T, g, n)."""
            B, T = x.shape[:2]
            Bm, Cm = (t.repeat_interleave(h // g, dim=2, output_size=h) for t in (Bm, Cm))
            pad = -T % Q
            padded = lambda t: F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad))
            skip = D[..., None] * padded(x)
            x, A = x * dt[..., None], A * dt
            # (B, c, h, Q, ·): a block per (batch, chunk, head); A: (B, h, c, Q)
            x, Bm, Cm = (padded(t).view(B, -1, Q, h, t.shape[-1]).transpose(2, 3) for t in (x, Bm, Cm))
            A = padded(A).view(B, -1, Q, h).permute(0, 3, 1, 2)
            cum = torch.cumsum(A, dim=-1)
            M = mm(Cm, Bm.transpose(-1, -2)) * torch.exp(segsum(A)).transpose(1, 2)  # (B, c, h, l, s)
            y_diag = mm(M, x)
            decayed = Bm * torch.exp(cum[..., -1:] - cum).transpose(1, 2)[..., None]
            states = mm(x.transpose(-1, -2), decayed)  # each chunk's end state: (B, c, h, p, n)
            start = h0[:, None] if h0 is not None else torch.zeros_like(states[:, :1])
            carry = torch.exp(segsum(F.pad(cum[..., -1], (1, 0))))  # (B, h, c + 1, c + 1)
            states = torch.cat([start, states], dim=1).permute(0, 2, 1, 3, 4)  # (B, h, c + 1, p, n)
            states = mm(carry, states.reshape(B, h, -1, p * n)).view(B, h, -1, p, n).transpose(1, 2)
            y_off = mm(Cm, states[:, :-1].transpose(-1, -2)) * torch.exp(cum).transpose(1, 2)[..., None]
            # contiguous first: else at one chunk the sum below takes a permuted layout and y's cut to T copies
            y = (y_diag + y_off).transpose(2, 3).contiguous().view(B, -1, h, p) + skip
            return y[:, :T], states[:, -1]

        def recurrent(x, dt, A, Bm, Cm, D, h0):
            B = x.shape[0]
            dt = dt[..., None, None]  # (B, h, 1, 1)
            Bm, Cm = (t.repeat_interleave(h // g, dim=1, output_size=h) for t in (Bm, Cm))  # (B, h, n)
            s = h0 * torch.exp(dt * A[:, None, None]) + dt * Bm[:, :, None] * x[..., None]  # (B, h, p, n)
            y = torch.bmm(s.view(B * h, p, n), Cm.reshape(B * h, n, 1)).view(B, h, p) + x * D[:, None]
            return y, s

        part = b.part(forward, **mods)
        part.dt_bias = nn.Parameter(torch.zeros(h))
        part.A_log = nn.Parameter(torch.zeros(h))
        part.D = nn.Parameter(torch.ones(h))
        if norm:
            part.norm = nn.Parameter(torch.ones(di))
        return part
