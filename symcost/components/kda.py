"""Kimi Delta Attention (Kimi Team 2025, "Kimi Linear: An Expressive, Efficient Attention
Architecture", Sec. 3): Gated DeltaNet's delta rule with a decay per channel instead of one per
head,

    S_t = (I - beta_t k_t k_t^T) Diag(exp(g_t)) S_{t-1} + beta_t k_t v_t^T,    o_t = S_t^T q_t,

as Kimi Linear's KDA layers run it (transformers' KimiLinearDeltaAttention, its torch path):

    q, k, v = q_proj(x), k_proj(x), v_proj(x)      heads x head_dim each
    q, k, v = silu(causal depthwise conv(q, k, v))  kernel k, padded k - 1 each side
    g = -exp(A_log) softplus(f_b(f_a(x)) + dt_bias)  a decay per channel, through a head_dim bottleneck
    beta = sigmoid(b_proj(x))                        one a head
    o = delta rule(l2norm(q) / sqrt(head_dim), l2norm(k), v, g, beta)
    out = o_proj(rmsnorm(o) * weight * sigmoid(g_b(g_a(x))))    the norm over each head, a low-rank gate

The rule runs by chunks of `chunk` tokens (the sequence zero-padded to c = ceil(seq_len / chunk) of
them). The per-channel decay keeps transformers' path from writing the chunk's Q x Q products as
matmuls: it forms keys with keys and queries with keys elementwise (Q x Q x head_dim products, then
sums) and inverts the UT transform's unit triangle by a loop of row updates, none of which
FlopCounterMode counts. Per (batch, head, chunk) it counts (2 FLOPs a multiply-add, D = head_dim):
the inverted triangle times beta·v and times the decayed beta·k (Q²·D each); then chunk by chunk
the state read by the decayed queries and by the decayed keys (Q·D² each), the in-chunk scores
times the corrected values (Q²·D) and the state's update (Q·D²). Backward: each product twice,
except the state's gradient in the first chunk (the zero initial state needs none) and the last
chunk's update (its state is not returned in training), which are not run.

Under `kernel` the work FLA's chunk_kda kernel does as matmuls, which transformers' path does
elementwise, counts too (forward): the two Q x Q products in full (Q²·D multiply-adds each, as the
path forms them before masking) and the triangle's inversion by rows (row i, i values, times the
i x i block above it: sum over i < Q of i² multiply-adds a block).

A decode step runs the recurrent form (elementwise only: no FLOPs under pytorch) and convolves the
k inputs kept and the new one (conv.py's `causal_conv`). The cache is batch x (3 x heads x head_dim
x k + heads x head_dim²) values, the state counted in the cache's dtype (transformers keeps fp32).
`serve --tp` splits it by heads as vLLM does; `plan` refuses tp > 1.

The reference build runs the rule in fp32 as transformers' path does (its inputs upcast), so saved
bytes under bf16 include fp32 copies.
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from .. import ops
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size
from .conv import causal_conv, conv_cost
from .gated_deltanet import FP32, Contracted
from .parallel import TP, Rule


class KDA(Component):
    kind = "kda"
    sequential = True
    # vLLM's split: q, k and v, b_proj and the gates' up-projections column-parallel by heads (the conv's channels,
    # dt_bias and A_log with them), the gates' down-projections and the norm whole on every rank, o_proj row-parallel,
    # the state split by heads. Serving only (Rule.trains): a training framework's split is not modelled
    parallel = Rule("parallel", lambda c: {"heads": c.heads / TP}, lambda c: (("heads", c.heads),), trains=False)
    dim: Size
    heads: Size  # linear_num_heads
    head_dim: Contracted  # linear_head_dim: keys, values and the decay's bottleneck alike
    kernel: Size = 4  # linear_conv_kernel_dim
    chunk: Contracted = 64  # the chunked rule's block length (transformers' and FLA's 64)
    residual: StrictBool = True

    def chunks(self, ctx: Ctx) -> sympy.Expr:
        return sympy.ceiling(ctx.seq_len / self.chunk)

    def parts(self, ctx: Ctx):
        T = ctx.need_tokens()
        b, tokens, h, D, k = ctx.batch, ctx.tokens, self.heads, self.head_dim, self.kernel
        conv, hd = ctx.convention, h * D
        mm = lambda batch, m, kk, n, grads=(True, True): ops.matmul(conv, batch, m, kk, n, grad_a=grads[0],
                                                                       grad_b=grads[1])
        mac = conv.flops_per_mac
        gates = (Cost.weights(hd + h) + ctx.elementwise(h, "exp") + ctx.elementwise(tokens * hd, "bias")
                 + ctx.elementwise(tokens * hd, "softplus") + ctx.elementwise(tokens * hd, "scale")
                 + ctx.elementwise(tokens * h, "sigmoid"))  # dt_bias and A_log; g; beta
        normed = ctx.elementwise(tokens * 2 * hd, "l2_normalize") + ctx.elementwise(tokens * hd, "scale")
        if ctx.decoding:  # the recurrent form, elementwise: decay, read, correct, write, read out
            rule = normed + ctx.elementwise(tokens * hd * D, "delta_step")
        else:
            c, Q = self.chunks(ctx), self.chunk
            blocks = b * h * c
            # FLA's matmuls that transformers' path runs elementwise: two Q x Q products, the triangle's rows
            rows = sympy.Rational(1, 6) * (Q - 1) * Q * (2 * Q - 1)  # 1² + … + (Q - 1)²
            fla = Cost(forward=mac * blocks * (2 * Q * Q * D + rows)) if conv.causal_half else Cost()
            rule = (normed + ctx.elementwise(tokens * 2 * hd, "scale")  # beta k, beta v
                    + ctx.elementwise(blocks * Q * D, "ssd_decay") + ctx.elementwise(blocks * Q * Q * D * 2, "ssd_mask")
                    + ctx.elementwise(blocks * Q * Q * D * 2, "scale") + fla  # the elementwise Q x Q products
                    + 2 * mm(blocks, Q, Q, D)  # the triangle times beta v and times the decayed beta k
                    # chunk by chunk: the old state read twice (no state gradient for the first chunk's zeros)
                    + 2 * mm(blocks, Q, D, D, (True, False)) + Cost(backward=2 * mac * b * h * (c - 1) * Q * D * D)
                    + mm(blocks, Q, Q, D) + ctx.elementwise(blocks * Q * D * 2, "residual")
                    # the update: the last chunk's runs forward only (the final state is dropped in training)
                    + Cost(forward=mac * b * h * Q * D * D) + mm(b * h * (c - 1), D, Q, D)
                    + ctx.elementwise(blocks * D * D * 2, "ssm_step"))
        parts = {
            "qkv_proj": ctx.linear(self.dim, 3 * hd, False),
            # padded on both sides over a sequence; a decode step convolves the k kept inputs and the new one
            "conv": conv_cost(ctx, 3 * hd, 3 * hd, k, 2 * T if ctx.decoding else T + k - 1, 3 * hd, False,
                              input_grad=True) + ctx.elementwise(tokens * 3 * hd, "silu"),
            "gates": ctx.linear(self.dim, D, False) + ctx.linear(D, hd, False, input_grad=True)  # f_a, f_b
            + ctx.linear(self.dim, h, False) + gates,  # b_proj
            "rule": rule,
            # rmsnorm(o) per head, its weight, times sigmoid(g_b(g_a(x)))
            "norm": ctx.linear(self.dim, D, False) + ctx.linear(D, hd, False, input_grad=True) + Cost.weights(D)
            + sum((ctx.elementwise(tokens * hd, e) for e in ("rmsnorm", "affine", "sigmoid", "gate")), Cost()),
            "o_proj": ctx.linear(hd, self.dim, False, input_grad=True),
            "state": Cost(cache=b * (3 * hd * k + hd * D)),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * self.dim, "residual")
        return parts

    def saved(self, ctx: Ctx):
        """As the build below keeps them (transformers' layer keeps the same). In the activation dtype:
        the input; the conv's input (the concatenated q, k, v) and output over T + k - 1 positions;
        the two bottlenecks' outputs (f_a, g_a); beta; o_proj's input. In fp32 (the rule's dtype):
        exp(A_log) and its negation; per token and channel the softplus's exp, 1 + exp and output (and
        its where's boolean condition); q's and k's copies and their norms; over the padded length
        P = c·Q: q, k, v, beta, beta·k and beta·v as padded, exp of the decays' cumulative sums and its
        product with beta·k, and the decayed keys read with the state (from the second chunk on);
        per (batch, head, chunk): the decay matrix and the keys' elementwise product with the keys
        (Q x Q x D each), the loop's rows and blocks (i and i² values at row i), the inverted triangle
        (Q²); chunk by chunk the queries' product with the keys (Q²·D), the scores (Q²), the corrected
        values, the decays on the queries and on the keys and their products (Q·D each; the decayed
        queries from the second chunk on), the chunk's end decay (D) and the state entering it (D²);
        in the norm its input, 1/rms, the normalised values, their product with the weight (and the
        weight's fp32 copy under a 16-bit dtype), and the gate's sigmoid. Three boolean Q x Q masks."""
        b, T, h, D, k = ctx.batch, ctx.seq_len, self.heads, self.head_dim, self.kernel
        c, Q, hd, N = self.chunks(ctx), self.chunk, h * D, ctx.batch * ctx.seq_len
        P, blocks = c * Q, b * h * c
        act = 4 * N * hd + b * 3 * hd * (T + k - 1) + N * (2 * D + h)
        gates = 3 * N * hd + 2 * h
        normed = 2 * b * h * T * (D + 1)
        padded = b * h * P * (5 * D + 1) + 2 * b * h * P * D + b * h * P * D * sympy.Min(c - 1, 1)
        triangle = blocks * (2 * Q * Q * D + sympy.Rational(1, 6) * Q * (Q - 1) * (2 * Q + 2) + Q * Q)
        chunks = blocks * (Q * Q * D + Q * Q + 5 * Q * D + D + D * D) - b * h * Q * D
        norm = 4 * N * hd + N * h
        weight = sympy.Piecewise((0, sympy.Eq(ACT, 4)), (FP32 * D, True))
        # in fp32 the upcasts are no-ops, and of one one-token sequence the transposes of q and k are views: the
        # conv's whole output is kept instead of their copies
        views = sympy.Piecewise((FP32 * hd, sympy.Eq(T, 1) & sympy.Eq(b, 1) & sympy.Eq(ACT, 4)), (0, True))
        fp32 = FP32 * (gates + normed + padded + triangle + chunks + norm) + weight + views
        return Cost(saved=ctx.input_saved(self.dim) + act * ACT + fp32 + N * hd + 3 * Q * Q)

    def build(self, b):
        import torch
        from torch import nn
        from torch.nn import functional as F

        from .build import layer_state

        d, h, D, k, Q = (b.int(x) for x in (self.dim, self.heads, self.head_dim, self.kernel, self.chunk))
        hd, residual = h * D, self.residual
        mods = {
            "q_proj": nn.Linear(d, hd, bias=False), "k_proj": nn.Linear(d, hd, bias=False),
            "v_proj": nn.Linear(d, hd, bias=False),
            "conv": nn.Conv1d(3 * hd, 3 * hd, k, groups=3 * hd, padding=k - 1, bias=False),
            "f_a_proj": nn.Linear(d, D, bias=False), "f_b_proj": nn.Linear(D, hd, bias=False),
            "b_proj": nn.Linear(d, h, bias=False),
            "g_a_proj": nn.Linear(d, D, bias=False), "g_b_proj": nn.Linear(D, hd, bias=False),
            "o_proj": nn.Linear(hd, d, bias=False),
        }

        def forward(m, x, state):
            B, T, _ = x.shape
            cache = layer_state(state, m)
            qkv = torch.cat([m.q_proj(x), m.k_proj(x), m.v_proj(x)], dim=-1).transpose(1, 2)
            q, key, v = (t.view(B, T, h, D) for t in F.silu(causal_conv(m.conv, qkv, cache)).transpose(1, 2).split(
                [hd] * 3, dim=-1))
            g = (m.f_b_proj(m.f_a_proj(x)).float() + m.dt_bias.float().view(1, 1, -1)).view(B, T, h, D)
            g = -m.A_log.float().exp() * torch.where(g > 20.0, g, torch.log(1.0 + torch.exp(g)))
            beta = torch.sigmoid(m.b_proj(x))
            s0 = cache.get("state") if cache is not None else None
            if cache is not None and T == 1:
                s0 = s0 if s0 is not None else x.new_zeros(B, h, D, D, dtype=torch.float32)
                o, last = step(q, key, v, g, beta, s0)
            else:  # concatenated, as transformers joins the chunked part and any step-by-step tail: a copy
                o, last = chunked(q, key, v, g, beta, s0, cache is not None)
                o = torch.cat([o], dim=1)
            if cache is not None:  # kept in the activation dtype (transformers keeps fp32)
                cache["state"] = last.to(x.dtype)
            gate = m.g_b_proj(m.g_a_proj(x)).view(B, T, h, D)
            out = m.o_proj(gated_norm(m.norm, o, gate).reshape(B, T, hd))
            return x + out if residual else out

        def l2norm(t):
            return t / torch.sqrt((t * t).sum(dim=-1, keepdim=True) + 1e-6)

        def gated_norm(weight, t, gate):
            dtype = t.dtype
            t = t.to(torch.float32)
            t = weight.to(torch.float32) * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6))
            return (t * torch.sigmoid(gate.to(torch.float32))).to(dtype)

        def chunked(q, key, v, g, beta, s0, keep):
            """The chunked rule: q, key, v and g (B, T, h, D), beta (B, T, h); out (B, T, h, D)."""
            dtype, T = q.dtype, q.shape[1]
            q, key, v, beta, g = (t.transpose(1, 2).contiguous().to(torch.float32) for t in (q, key, v, beta, g))
            q, key = l2norm(q), l2norm(key)
            B, pad = q.shape[0], -T % Q
            q = F.pad(q, (0, 0, 0, pad)) * D ** -0.5
            key, v, g = (F.pad(t, (0, 0, 0, pad)) for t in (key, v, g))
            beta = F.pad(beta, (0, pad))
            v_beta, k_beta = v * beta[..., None], key * beta[..., None]
            q, key, v, g, k_beta, v_beta = (t.reshape(B, h, -1, Q, D) for t in (q, key, v, g, k_beta, v_beta))
            g = g.cumsum(dim=-2)
            on_above = torch.ones(Q, Q, dtype=torch.bool, device=q.device).triu(0)
            above = torch.ones(Q, Q, dtype=torch.bool, device=q.device).triu(1)
            decay = (g[..., :, None, :] - g[..., None, :, :]).masked_fill(above[..., None], float("-inf")).exp()
            A = -(k_beta[..., :, None, :] * key[..., None, :, :] * decay).sum(dim=-1).masked_fill(on_above, 0)
            for i in range(1, Q):  # (I + A)^-1 by rows, as transformers' loop forms it
                row, sub = A[..., i, :i].clone(), A[..., :i, :i].clone()
                A[..., i, :i] = row + (row[..., None] * sub).sum(-2)
            A = A + torch.eye(Q, dtype=A.dtype, device=A.device)
            values, k_decayed = A @ v_beta, A @ (k_beta * g.exp())
            s = s0.to(values) if s0 is not None else values.new_zeros(B, h, D, D)
            out = torch.zeros_like(values)
            later = torch.ones(Q, Q, dtype=torch.bool, device=q.device).triu(1)  # a third mask, as transformers'
            for i in range(values.shape[2]):
                q_i, k_i, g_i = q[:, :, i], key[:, :, i], g[:, :, i]
                scores = (q_i[..., :, None, :] * k_i[..., None, :, :] * decay[:, :, i]).sum(dim=-1)
                scores = scores.masked_fill(later, 0)
                corrected = values[:, :, i] - k_decayed[:, :, i] @ s
                out[:, :, i] = (q_i * g_i.exp()) @ s + scores @ corrected
                k_i = k_i * (g_i[:, :, -1:] - g_i).exp()
                s = s * g_i[:, :, -1].exp()[..., None] + k_i.transpose(-1, -2) @ corrected
            out = out.reshape(B, h, -1, D)[:, :, :T].transpose(1, 2).contiguous().to(dtype)
            return out, s if keep else None

        def step(q, key, v, g, beta, s):
            """One token's recurrent update: (B, 1, h, ·) inputs, state (B, h, D, D)."""
            dtype = q.dtype
            q, key, v, g, beta = (t[:, 0].to(torch.float32) for t in (q, key, v, g, beta))
            q, key = l2norm(q) * D ** -0.5, l2norm(key)
            s = s.to(torch.float32) * g.exp()[..., None]
            delta = (v - (s * key[..., None]).sum(dim=-2)) * beta[..., None]
            s = s + key[..., None] * delta[..., None, :]
            return (s * q[..., None]).sum(dim=-2)[:, None].to(dtype), s

        part = b.part(forward, **mods)
        part.dt_bias = nn.Parameter(torch.ones(hd))
        part.A_log = nn.Parameter(torch.zeros(1, 1, h, 1))
        part.norm = nn.Parameter(torch.ones(D))
        return part
