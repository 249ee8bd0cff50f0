"""Lightning attention (Qin et al. 2024, "Lightning Attention-2"; MiniMax 2025, "MiniMax-01: Scaling
Foundation Models with Lightning Attention", Sec. 2.2): linear attention with a fixed decay per head,
run by blocks — softmax-free scores inside a block, a carried key-value state between blocks — as
MiniMax-Text-01's linear layers run it (transformers' MiniMaxLightningAttention):

    q, k, v = silu(qkv_proj(x))                      heads x head_dim each
    per block of `block` tokens (the last one shorter: nothing padded), with S the state (head_dim²):
        o = ((q k^T) * D) v + (q * d_q) S            D: the in-block decays, zero above the diagonal
        S = S * d_B + (k * d_k)^T v
    out = out_proj(sigmoid(output_gate(x)) * rmsnorm(o))     the norm over all heads at once

Per (batch, head) FlopCounterMode counts (2 FLOPs a multiply-add, D = head_dim, L a block's length,
sum over blocks): q k^T and its product with v (L²·D each), the state read (L·D²) and updated
(L·D²). Backward: each product twice, except the state's gradient in the first block (the zero
initial state needs none) and the last block's update (its state is not returned in training). Under
`kernel` the in-block products count the L(L + 1)/2 pairs the decay keeps (Lightning Attention-2's
intra-block part is masked causal attention), as causal attention's do.

A decode step adds the token's k^T v to the decayed state and reads it with q (D² multiply-adds
each); the cache is the state, batch x heads x head_dim² values, whatever the context. The decays
(a rate per head, its powers over a block, and the block's B x B decay matrix per head) are buffers,
not parameters: heads·(2·block + block² + 1) values a layer, not counted here. `serve --tp` splits it by
heads as vLLM does; `plan` refuses tp > 1.
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from .. import ops
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size
from .parallel import TP, Rule


class LightningAttention(Component):
    kind = "lightning_attention"
    sequential = True
    # vLLM's split: qkv_proj and output_gate column-parallel by heads, out_proj row-parallel, the norm's weight split
    # with them (its variance all-reduced), the state split by heads. Serving only (Rule.trains)
    parallel = Rule("parallel", lambda c: {"heads": c.heads / TP}, lambda c: (("heads", c.heads),), trains=False)
    dim: Size
    heads: Size
    head_dim: Size
    block: Size = 256  # block_size
    residual: StrictBool = True

    def blocks(self, ctx: Ctx) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
        """The number of blocks, the first block's length and the last one's."""
        T, B = ctx.seq_len, self.block
        n = sympy.ceiling(T / B)
        return n, sympy.Min(B, T), T - (n - 1) * B

    def parts(self, ctx: Ctx):
        b, tokens, h, D, hd = ctx.batch, ctx.tokens, self.heads, self.head_dim, self.heads * self.head_dim
        conv, mac = ctx.convention, ctx.convention.flops_per_mac
        if ctx.decoding:  # the token's k^T v, then the state read by q
            rule = ops.matmul(conv, tokens * h, D, 1, D, grad_a=True, grad_b=True) \
                + ops.matmul(conv, tokens * h, 1, D, D, grad_a=True, grad_b=True) \
                + ctx.elementwise(tokens * h * D * D, "ssm_step")
        else:
            T = ctx.seq_len
            n, first, last = self.blocks(ctx)
            squares = (n - 1) * self.block ** 2 + last ** 2  # the sum of the blocks' L²
            pairs = squares / 2 + T / 2 if conv.causal_half else squares  # L(L + 1)/2 each under kernel
            rule = (Cost(forward=2 * mac * b * h * D * pairs, backward=4 * mac * b * h * D * pairs)
                    + ctx.elementwise(b * h * D * squares, "ssd_mask")
                    # the state read: no state gradient in the first block (its zeros)
                    + Cost(forward=mac * b * h * D * D * T, backward=mac * b * h * D * D * (2 * T - first))
                    # the update: the last block's runs forward only
                    + Cost(forward=mac * b * h * D * D * T, backward=2 * mac * b * h * D * D * (T - last))
                    + ctx.elementwise(tokens * h * D * 3, "scale"))
        parts = {
            "qkv_proj": ctx.linear(self.dim, 3 * hd, False) + ctx.elementwise(tokens * 3 * hd, "silu"),
            "rule": rule,
            "norm": Cost.weights(hd) + ctx.elementwise(tokens * hd, "rmsnorm") + ctx.elementwise(tokens * hd, "affine"),
            "output_gate": ctx.linear(self.dim, hd, False) + ctx.elementwise(tokens * hd, "sigmoid")
            + ctx.elementwise(tokens * hd, "gate"),
            "out_proj": ctx.linear(hd, self.dim, False, input_grad=True),
            "state": Cost(cache=b * h * D * D),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * self.dim, "residual")
        return parts

    def saved(self, ctx: Ctx):
        """As the build below keeps them (transformers' layer keeps the same). In the activation dtype:
        the input; qkv_proj's output (silu's input); per block its scores (L²), the decayed queries
        (from the second block on: the state they read needs a gradient) and keys (L·D each), the state
        it reads (D²) and from the second block the state's decay (a value a head); q, k and v as the
        matmuls copy them to fold batch and heads (v twice), or, for one sequence, one token or one
        head, silu's whole output, of which they are views; in the norm the normalised values times the weight's
        input, the gate's sigmoid, and their product (out_proj's input). In fp32: the norm's input
        and 1/rms a token."""
        b, T, h, D, hd, N = ctx.batch, ctx.seq_len, self.heads, self.head_dim, self.heads * self.head_dim, ctx.tokens
        n, first, last = self.blocks(ctx)
        squares = (n - 1) * self.block ** 2 + last ** 2
        # q, k and v fold their batch and heads into one dim without a copy only when one of the three is 1
        copies = sympy.Piecewise((3 * N * hd, sympy.Eq(b, 1) | sympy.Eq(T, 1) | sympy.Eq(h, 1)), (4 * N * hd, True))
        act = 9 * N * hd + b * h * (squares - first * D + n * D * D) + (n - 1) * h + copies
        return Cost(saved=ctx.input_saved(self.dim) + act * ACT + 4 * (N * hd + N))

    def build(self, b):
        import torch
        from torch import nn
        from torch.nn import functional as F

        from .build import layer_state

        d, h, D, B = (b.int(x) for x in (self.dim, self.heads, self.head_dim, self.block))
        hd, residual = h * D, self.residual
        mods = {"qkv_proj": nn.Linear(d, 3 * hd, bias=False), "output_gate": nn.Linear(d, hd, bias=False),
                "out_proj": nn.Linear(hd, d, bias=False)}
        layers = 2  # the decay rates depend on the layer's depth in transformers; any rate costs the same
        rate = (1 / (2 ** (8 / h))) ** (torch.arange(h) + 1.0) * (1 - 0 / (layers - 1 + 1e-5) + 1e-5)
        rate = rate[:, None, None]
        steps = torch.arange(B) + 1
        gaps = rate * (steps[:, None] - steps[None, :])[None, None]

        def forward(m, x, state):
            Bt, T, _ = x.shape
            cache = layer_state(state, m)
            q, k, v = F.silu(m.qkv_proj(x)).reshape(Bt, T, h, 3 * D).split(D, dim=3)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            s = cache.get("state") if cache is not None else None
            outs = []
            if s is None:
                s = x.new_zeros(Bt, h, D, D)
                for start in range(0, T, B):
                    L = min(B, T - start)
                    qi, ki, vi = (t[:, :, start:start + L] for t in (q, k, v))
                    intra = torch.matmul(torch.matmul(qi, ki.transpose(-1, -2)) * m.diagonal[:, :, :L, :L], vi)
                    outs.append(torch.matmul(qi * m.query_decay[:, :L], s) + intra)
                    s = s * torch.exp(-m.rate * L) + torch.matmul((ki * m.key_decay[:, -L:]).transpose(-1, -2), vi)
            else:
                for i in range(T):
                    s = torch.exp(-m.rate) * s + torch.matmul(k[:, :, i:i + 1].transpose(-1, -2), v[:, :, i:i + 1])
                    outs.append(torch.matmul(q[:, :, i:i + 1], s))
            if cache is not None:
                cache["state"] = s
            o = torch.cat(outs, dim=-2).transpose(1, 2).reshape(Bt, T, hd)
            dtype = o.dtype
            o = o.to(torch.float32)
            o = m.norm * (o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + 1e-6)).to(dtype)
            out = m.out_proj(torch.sigmoid(m.output_gate(x)) * o)
            return x + out if residual else out

        part = b.part(forward, **mods)
        part.norm = nn.Parameter(torch.ones(hd))
        part.register_buffer("rate", rate)
        part.register_buffer("query_decay", torch.exp(-rate * steps[:, None]))
        part.register_buffer("key_decay", torch.exp(-rate * (B - steps[:, None])))
        part.register_buffer("diagonal", torch.exp(torch.where(gaps >= 0, -gaps, float("-inf"))))
        return part
