"""Manifold-constrained hyper-connections (mHC; Xie et al. 2026, as DeepSeek-V4 Sec. 2.2 uses them): the
residual stream is `streams` copies of the model's width, mixed at every residual block, as transformers'
DeepseekV4HyperConnection and DeepseekV4HyperHead run them.

- `hyper_expand: {streams}` widens the stream to streams copies of itself (a copy; no arithmetic).
- `residual: [...]` with `streams: N` is one mHC site (the rule `site` and `site_saved` below; derive.py
  and the reference build call them): from the N streams (flattened, RMS-normalised without weight) one
  linear makes 2N + N² mixing logits per token — `pre` (sigmoid) collapses the streams into the body's
  input, `post` (2·sigmoid) spreads the body's output back over them, `comb` (softmax, then
  `sinkhorn_iters` Sinkhorn-Knopp normalisations towards a doubly stochastic N x N matrix) mixes the
  streams: out = post ⊗ body(x) + combᵀ · streams. Parameters: the projection (2N + N²) x N·width, its
  bias (2N + N²) and three scales; FLOPs: the projection and the N x N by N x width product a token.
- `hyper_head: {dim, streams}` collapses the streams for the final norm: a linear to N weights a token
  (sigmoid), their weighted sum; parameters N x N·dim, N biases and one scale.

transformers keeps these modules in fp32 whatever the model's dtype (`_keep_in_fp32_modules_strict`);
the reference build does the same, and the saved-bytes rules below follow it.
"""

from __future__ import annotations

import sympy

from .. import ops
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, FieldError, Flow, Size, fresh

EPS = 1e-6


def site(ctx: Ctx, streams, width, iters) -> dict[str, Cost]:
    """One mHC site's parts, beside its body's: the mixing logits from the streams, and the join."""
    N, tokens, conv = streams, ctx.tokens, ctx.convention
    logits = (2 + N) * N
    mix = (Cost.weights(logits * N * width + logits + 3)
           + ops.matmul(conv, 1, tokens, N * width, logits, grad_a=True, grad_b=True)
           + ctx.elementwise(tokens * N * width, "rmsnorm") + ctx.elementwise(tokens * 2 * N, "sigmoid")
           + ctx.elementwise(tokens * N * N, "softmax")
           + ctx.elementwise(tokens * N * N * (2 * iters - 1), "scale") + ctx.elementwise(tokens * N * width, "gate"))
    join = (ops.matmul(conv, tokens, N, N, width, grad_a=True, grad_b=True)
            + ctx.elementwise(tokens * N * width, "gate") + ctx.elementwise(tokens * N * width, "residual"))
    return {"mix": mix, "join": join}


def site_saved(ctx: Ctx, streams, width, iters) -> Cost:
    """What one mHC site keeps for backward, its body's aside (per token): the streams (unless the layer
    before kept them; under a 16-bit dtype their fp32 copy too), 1/rms and the normalised streams (fp32),
    the logits; pre's and post's sigmoids and post itself, pre as used; comb's softmax, each Sinkhorn
    division's numerator and denominator and the final comb; the body's output (read by the join). Under
    a 16-bit dtype the join reads post and comb in the activation dtype: copies."""
    N, T = streams, ctx.tokens
    wide = sympy.Piecewise((0, sympy.Eq(ACT, 4)), (1, True))
    divisions = 2 * iters - 1
    # post and the final comb are kept by the join in fp32; under 16 bits their copies (below) instead
    fp32 = T * (1 + N * width * (1 + wide) + (2 + N) * N + 3 * N + N * N * (1 + divisions) + N * divisions) \
        + T * (N + N * N) * (1 - wide)
    act = T * (width + wide * (N + N * N))
    return Cost(saved=ctx.input_saved(N * width) + 4 * fp32 + act * ACT)


class HyperExpand(Component):
    kind = "hyper_expand"
    streams: Size

    def parts(self, ctx: Ctx):
        return {}

    def saved(self, ctx: Ctx):
        return Cost()  # a copy saves nothing; the first site keeps what it made

    def after(self, flow: Flow) -> Flow:
        if flow.width is None or flow.length is None:
            raise FieldError(None, "hyper_expand widens a token stream of known width: put it after the embedding")
        return fresh(flow, width=flow.width * self.streams)

    def build(self, b):
        n = b.int(self.streams)

        def forward(m, x, state):
            B, T, D = x.shape
            return x.unsqueeze(2).expand(B, T, n, D).contiguous().view(B, T, n * D)

        return b.part(forward)


class HyperHead(Component):
    kind = "hyper_head"
    dim: Size
    streams: Size

    def in_width(self):
        return self.dim * self.streams

    def parts(self, ctx: Ctx):
        N, d, tokens = self.streams, self.dim, ctx.tokens
        return {"collapse": Cost.weights(N * N * d + N + 1)
                + ops.matmul(ctx.convention, 1, tokens, N * d, N, grad_a=True, grad_b=True)
                + ctx.elementwise(tokens * N * d, "rmsnorm") + ctx.elementwise(tokens * N, "sigmoid")
                + ctx.elementwise(tokens * N * d, "gate")}

    def saved(self, ctx: Ctx):
        """The streams (and their fp32 copy under 16 bits), 1/rms and the normalised streams, the logits,
        the sigmoid and the weights as used (fp32)."""
        N, d, T = self.streams, self.dim, ctx.tokens
        wide = sympy.Piecewise((0, sympy.Eq(ACT, 4)), (1, True))
        return Cost(saved=ctx.input_saved(N * d) + 4 * T * (1 + N * d * (1 + wide) + 3 * N))

    def after(self, flow: Flow) -> Flow:
        return fresh(flow, width=self.dim)

    def build(self, b):
        import torch
        from torch import nn

        from .build import keep_fp32, unweighted

        n, d = b.int(self.streams), b.int(self.dim)

        def forward(m, x, state):
            B, T, _ = x.shape
            streams = x.view(B, T, n, d)
            flat = unweighted(streams.flatten(2).float(), EPS)
            pre = torch.sigmoid(nn.functional.linear(flat, m.fn) * m.scale + m.base) + EPS
            return (pre.unsqueeze(-1) * streams).sum(dim=2).to(x.dtype)

        part = b.part(forward)
        part.fn = nn.Parameter(torch.randn(n, n * d) * 0.02)
        part.base, part.scale = nn.Parameter(torch.zeros(n)), nn.Parameter(torch.ones(1))
        return keep_fp32(part)


def site_module(body, streams: int, width: int, iters: int, path: str):
    """The reference build's mHC site around `body` (a module of (x, state)): a component that makes the
    mixing weights and collapses the streams, the body, and the same component's join, which finds the
    streams and weights in `state` (so that each runs, and is counted, alone). fp32, as transformers keeps it."""
    import torch
    from torch import nn

    from .build import Part, keep_fp32, unweighted

    key = ("hyper", path)

    def mix(m, x, state):
        B, T, _ = x.shape
        n = streams
        hidden = x.view(B, T, n, width)
        mixes = nn.functional.linear(unweighted(hidden.view(B, T, -1).float(), EPS), m.fn.float())
        pre_w, post_w, comb_w = mixes.split([n, n, n * n], dim=-1)
        pre_b, post_b, comb_b = m.base.split([n, n, n * n])
        pre_s, post_s, comb_s = m.scale.unbind(0)
        pre = torch.sigmoid(pre_w * pre_s + pre_b) + EPS
        post = 2 * torch.sigmoid(post_w * post_s + post_b)
        comb = torch.softmax(comb_w.view(B, T, n, n) * comb_s + comb_b.view(n, n), dim=-1) + EPS
        comb = comb / (comb.sum(dim=-2, keepdim=True) + EPS)
        for _ in range(iters - 1):
            comb = comb / (comb.sum(dim=-1, keepdim=True) + EPS)
            comb = comb / (comb.sum(dim=-2, keepdim=True) + EPS)
        state[key] = (hidden, post, comb)
        return (pre.unsqueeze(-1) * hidden).sum(dim=2).to(x.dtype)

    def join(m, out, state):
        hidden, post, comb = state[key]
        B, T, n, _ = hidden.shape
        dtype = hidden.dtype
        mixed = post.to(dtype).unsqueeze(-1) * out.unsqueeze(-2) + torch.matmul(comb.to(dtype).transpose(-1, -2),
                                                                                 hidden)
        return mixed.view(B, T, n * width)

    mixer = Part(mix, path)
    logits = (2 + streams) * streams
    mixer.fn = nn.Parameter(torch.randn(logits, streams * width) * 0.02)
    mixer.base, mixer.scale = nn.Parameter(torch.zeros(logits)), nn.Parameter(torch.ones(3))

    class Site(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mix, self.residual, self.join = keep_fp32(mixer), body, Part(join, path)

        def forward(self, x, state):
            return self.join(self.residual(self.mix(x, state), state), state)

    return Site()
