"""Gated DeltaNet (Yang, Kautz & Hatamizadeh 2024, "Gated Delta Networks: Improving Mamba2 with
Delta Rule", ICLR 2025): linear attention whose state S (key_dim x value_dim a value head) is
decayed and corrected by the delta rule at each token,

    S_t = exp(g_t) S_{t-1} (I - beta_t k_t k_t^T) + beta_t k_t v_t^T,    o_t = S_t^T q_t,

as Qwen3-Next's linear layers run it (transformers' Qwen3NextGatedDeltaNet, its torch path):

    q, k, v, z = in_proj_qkvz(x)      key_heads x key_dim each for q and k, value_heads x value_dim for v and z
    b, a = in_proj_ba(x)              one beta and one decay a value head
    q, k, v = silu(causal depthwise conv(q, k, v))     kernel k, padded k - 1 each side
    beta = sigmoid(b);  g = -exp(A_log) softplus(a + dt_bias)
    o = delta rule(l2norm(q) / sqrt(key_dim), l2norm(k), v, g, beta)   a key head serves value_heads / key_heads
    out = out_proj(rmsnorm(o) * weight * silu(z))      the norm over each value head

The rule runs by chunks of `chunk` tokens (the sequence zero-padded to c = ceil(seq_len / chunk)
of them; Yang et al. Sec. 3.3, the WY/UT form). Per (batch, value head), FlopCounterMode counts
(2 FLOPs a multiply-add): in each chunk the two Q x Q products of keys with keys and queries
with keys (Q²·key_dim each); then chunk by chunk, the old state read by the decayed keys and by
the queries (Q·key_dim·value_dim each), the in-chunk attention times the corrected values
(Q²·value_dim) and the state's update (Q·key_dim·value_dim). The UT transform's two triangular
solves (torch.linalg.solve_triangular) are not counted by FlopCounterMode: under `kernel` they are
(Q(Q - 1)/2 multiply-adds a right-hand column, key_dim + value_dim columns, as substitution
solves a unit lower-triangular system — the work FLA's chunk kernel does beside the products).
Backward: each Q x Q product twice; each solve adds the gradient of its triangle, a
Q x value_dim (or key_dim) by Q product; the state products' state gradients are not run for the
first chunk (the zero initial state needs none), nor the last chunk's update (its state is not
returned in training).

A decode step runs the recurrent form (elementwise only: no FLOPs under pytorch) and, as
transformers' cache does, convolves the k inputs it keeps and the new one (two outputs, the last
kept). The cache is batch x (conv channels x k + value_heads x key_dim x value_dim) values: k
inputs as transformers' LinearAttentionLayer keeps them (serving engines keep k - 1), and the
state, counted in the cache's dtype (NB: transformers' torch path and FLA keep it in fp32, twice
a 16-bit cache's bytes).

The reference build runs the rule in fp32, as transformers' path does (its inputs upcast), so
saved bytes under bf16 include fp32 copies. Under fp32 transformers' upcasts are no-ops that leave
q, k and v transposed views; where nothing is padded (seq_len a multiple of the chunk) PyTorch's
matmuls then copy them, and transformers keeps those copies instead: the build lays them out
first, as its bf16 path does. A prefill shorter than the kernel against
transformers' cache convolves k + k - 1 positions (its cache pads the prompt to k): a few FLOPs
more than counted here.
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
from .parallel import TP, Rule

FP32 = 4  # bytes of a value the rule keeps in fp32, whatever the activation dtype
# the chunk and the key size are what the rule's matmuls contract over; at 1 PyTorch's matmul copies its
# operands (and a chunk of one token is the recurrence itself): refused rather than followed
Contracted = number(Domain(2, "an integer >= 2 (the chunked rule's matmuls contract over it; at 1 PyTorch copies "
                              "their operands, which the saved-bytes rule does not follow)"))


class GatedDeltaNet(Component):
    kind = "gated_deltanet"
    sequential = True
    # vLLM's split: in_proj column-parallel by key heads (each with its value heads, as the checkpoint lays them
    # out), the conv's channels, dt_bias and A_log with them (its sharded weight loader), out_proj row-parallel,
    # the state split by heads. Serving only (Rule.trains): a training framework's split is not modelled
    parallel = Rule("parallel", lambda c: {"key_heads": c.key_heads / TP, "value_heads": c.hv / TP},
                    lambda c: (("key_heads", c.key_heads),), trains=False)
    dim: Size
    key_heads: Size  # linear_num_key_heads: q and k heads
    value_heads: Size | None = None  # linear_num_value_heads (default: key_heads); a key head serves several
    key_dim: Contracted  # linear_key_head_dim
    value_dim: Size | None = None  # linear_value_head_dim (default: key_dim)
    kernel: Size = 4  # linear_conv_kernel_dim
    chunk: Contracted = 64  # the chunked rule's block length (transformers' and FLA's 64)
    residual: StrictBool = True

    @property
    def hv(self) -> sympy.Expr:
        return self.value_heads if self.value_heads is not None else self.key_heads

    @property
    def dv(self) -> sympy.Expr:
        return self.value_dim if self.value_dim is not None else self.key_dim

    @property
    def conv_dim(self) -> sympy.Expr:
        """Channels the conv runs over: q, k and v."""
        return 2 * self.key_heads * self.key_dim + self.hv * self.dv

    def chunks(self, ctx: Ctx) -> sympy.Expr:
        return sympy.ceiling(ctx.seq_len / self.chunk)

    def parts(self, ctx: Ctx):
        T = ctx.need_tokens()
        b, tokens, h, dk, dv, k, cd = ctx.batch, ctx.tokens, self.hv, self.key_dim, self.dv, self.kernel, self.conv_dim
        conv, kd, vd = ctx.convention, self.key_heads * dk, h * dv
        mm = lambda batch, m, kk, n, grads=(True, True): ops.matmul(conv, batch, m, kk, n, grad_a=grads[0],
                                                                       grad_b=grads[1])
        gates = (Cost.weights(2 * h) + ctx.elementwise(h, "exp") + ctx.elementwise(tokens * h, "sigmoid")
                 + ctx.elementwise(tokens * h, "bias") + ctx.elementwise(tokens * h, "softplus")
                 + ctx.elementwise(tokens * h, "scale"))  # dt_bias and A_log; beta; g
        normed = ctx.elementwise(tokens * 2 * h * dk, "l2_normalize") + ctx.elementwise(tokens * h * dk, "scale")
        if ctx.decoding:  # the recurrent form, elementwise: decay, read, correct, write, read out
            rule = normed + ctx.elementwise(tokens * h * dk * dv, "delta_step")
        else:
            c, Q = self.chunks(ctx), self.chunk
            blocks = b * h * c
            solve = Cost(forward=conv.flops_per_mac * blocks * Q * (Q - 1) / 2 * (dk + dv)) if conv.causal_half \
                else Cost()
            rule = (normed + ctx.elementwise(tokens * h * (dk + dv), "scale")  # beta k, beta v
                    + ctx.elementwise(blocks * Q, "ssd_decay") + ctx.elementwise(blocks * Q * Q, "ssd_mask")
                    + mm(blocks, Q, dk, Q) + mm(blocks, Q, dk, Q)  # keys with keys, queries with keys
                    + Cost(backward=conv.flops_per_mac * blocks * Q * Q * (dk + dv)) + solve  # the solves' triangles
                    + ctx.elementwise(blocks * Q * (2 * dk + 2 * Q), "scale")  # decays on keys, queries, scores
                    # chunk by chunk: the old state read twice (no state gradient for the first chunk's zeros)
                    + 2 * mm(blocks, Q, dk, dv, (True, False))
                    + Cost(backward=2 * conv.flops_per_mac * b * h * (c - 1) * Q * dk * dv)
                    + mm(b * h * c, Q, Q, dv) + ctx.elementwise(blocks * Q * dv * 2, "residual")
                    # the update: the last chunk's runs forward only (the final state is dropped in training)
                    + Cost(forward=conv.flops_per_mac * b * h * Q * dk * dv) + mm(b * h * (c - 1), dk, Q, dv)
                    + ctx.elementwise(blocks * dk * dv * 2, "ssm_step"))
        parts = {
            "in_proj": ctx.linear(self.dim, 2 * kd + 2 * vd, False) + ctx.linear(self.dim, 2 * h, False),
            # padded on both sides over a sequence; a decode step convolves the k kept inputs and the new one
            "conv": conv_cost(ctx, cd, cd, k, 2 * T if ctx.decoding else T + k - 1, cd, False, input_grad=True)
            + ctx.elementwise(tokens * cd, "silu"),
            "gates": gates,
            "rule": rule,
            # rmsnorm(o) per value head, its weight, times silu(z)
            "norm": Cost.weights(dv) + sum((ctx.elementwise(tokens * vd, e) for e in ("rmsnorm", "affine", "silu",
                                                                                     "gate")), Cost()),
            "out_proj": ctx.linear(vd, self.dim, False, input_grad=True),
            "state": Cost(cache=b * (cd * k + h * dk * dv)),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * self.dim, "residual")
        return parts

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        yield Check("key_heads", divides(self.key_heads, self.hv), "{} key_heads do not divide {} value_heads",
                    (self.key_heads, self.hv))

    def saved(self, ctx: Ctx):
        """As the build below keeps them. In the activation dtype: the input; the conv's input (b x T
        x conv channels, a concatenation) and output over T + k - 1 positions (silu's input); beta;
        and in the norm the normalised values cast back, their product with the weight, and
        out_proj's input. In fp32 (the rule's dtype): exp(A_log) and its negation (a value a head),
        softplus's input and output; per (batch, value head, token) q's and k's copies and their
        1/norms; over the padded length P = c·Q: v, beta, k, beta·k and q as padded, the solved
        values and decayed keys, three decays, and the keys decayed to each chunk's end (the
        queries decayed too, read with a state that needs a gradient only from the second chunk
        on); per (batch, head, chunk): the decay matrix, the two Q x Q products and their decayed
        forms (Q² each), each chunk's state entering (key_dim x value_dim) and corrected values
        (Q x value_dim), and the chunk's end decay; in the norm its input, 1/rms, silu's input
        (z, copied) and output. One boolean Q x Q mask."""
        b, T, h, dk, dv, k, cd = ctx.batch, ctx.seq_len, self.hv, self.key_dim, self.dv, self.kernel, self.conv_dim
        c, Q, vd = self.chunks(ctx), self.chunk, h * dv
        P, blocks = c * Q, b * h * c
        act = b * T * cd + b * cd * (T + k - 1) + b * T * h + 3 * b * T * vd
        gates = 2 * h + 2 * b * T * h
        normed = 2 * b * h * T * (dk + 1)
        padded = b * h * P * (dv + 1 + 3 * dk)
        rule = (5 * blocks * Q * Q + b * h * P * (dv + dk + 3) + blocks + blocks * dk * dv + b * h * P * dv
                + b * h * P * dk * (1 + sympy.Min(c - 1, 1)))
        norm = 3 * b * T * vd + b * T * h
        fp32 = FP32 * (gates + normed + padded + rule + norm)
        return Cost(saved=ctx.input_saved(self.dim) + act * ACT + fp32 + Q * Q)

    def build(self, b):
        import torch
        from torch import nn
        from torch.nn import functional as F

        from .build import layer_state

        d, hk, h, dk, dv, k, Q = (b.int(x) for x in (self.dim, self.key_heads, self.hv, self.key_dim, self.dv,
                                                    self.kernel, self.chunk))
        r, kd, vd, residual = h // hk, hk * dk, h * dv, self.residual
        cd = 2 * kd + vd
        mods = {
            "in_proj_qkvz": nn.Linear(d, 2 * kd + 2 * vd, bias=False),
            "in_proj_ba": nn.Linear(d, 2 * h, bias=False),
            "conv": nn.Conv1d(cd, cd, k, groups=cd, padding=k - 1, bias=False),
            "out_proj": nn.Linear(vd, d, bias=False),
        }

        def forward(m, x, state):
            B, T, _ = x.shape
            cache = layer_state(state, m)
            # laid out by key head (q, k, then its r value heads' v and z), as Qwen3-Next's checkpoints are
            q, key, v, z = m.in_proj_qkvz(x).view(B, T, hk, -1).split([dk, dk, r * dv, r * dv], dim=-1)
            beta, a = m.in_proj_ba(x).view(B, T, hk, -1).split([r, r], dim=-1)
            # a copy, as transformers' reshape makes where key heads serve several value heads (at one key head,
            # or one value head a key head, it is a view of in_proj's output, which silu then keeps whole in fp32)
            z = z.reshape(B, T, h, dv).clone(memory_format=torch.contiguous_format)
            qkv = torch.cat([t.reshape(B, T, -1) for t in (q, key, v)], dim=-1).transpose(1, 2)
            qkv = F.silu(causal_conv(m.conv, qkv, cache))
            q, key, v = qkv.transpose(1, 2).split([kd, kd, vd], dim=-1)
            beta = beta.reshape(B, T, h).sigmoid()
            g = -m.A_log.float().exp() * F.softplus(a.reshape(B, T, h).float() + m.dt_bias)
            q, key = (t.reshape(B, T, hk, dk).repeat_interleave(r, dim=2) for t in (q, key))
            # (B, h, T, ·) in fp32, laid out so: in fp32 transformers' `.to` returns the transposed views, which at
            # a whole number of chunks (nothing padded) reach the matmuls unmoved, and PyTorch copies them there
            q, key, v, beta, g = (t.transpose(1, 2).to(torch.float32).contiguous()
                                  for t in (q, key, v.reshape(B, T, h, dv), beta, g))
            q, key = l2norm(q), l2norm(key)
            q = q * dk ** -0.5
            s0 = cache.get("state") if cache is not None else None
            if cache is not None and T == 1:
                o, last = step(q, key, v, g, beta, s0 if s0 is not None else q.new_zeros(B, h, dk, dv))
            else:
                o, last = chunked(q, key, v, g, beta, s0, cache is not None)
            if cache is not None:  # kept in the activation dtype (transformers keeps fp32)
                cache["state"] = last.to(x.dtype)
            # (B, T, h, dv), a copy (transformers' cast returns a view where it is contiguous already: one value
            # head and a batch of one)
            o = o.transpose(1, 2).clone(memory_format=torch.contiguous_format).to(x.dtype)
            o = gated_norm(m.norm, o.reshape(-1, dv), z.reshape(-1, dv)).reshape(B, T, vd)
            out = m.out_proj(o)
            return x + out if residual else out

        def l2norm(t):
            return t * torch.rsqrt((t * t).sum(dim=-1, keepdim=True) + 1e-6)

        def gated_norm(weight, t, gate):
            dtype = t.dtype
            t = t.to(torch.float32)
            t = t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6)
            return (weight * t.to(dtype) * F.silu(gate.to(torch.float32))).to(dtype)

        def chunked(q, key, v, g, beta, s0, keep):
            """The chunked rule: q, key (B, h, T, dk), v (B, h, T, dv), g and beta (B, h, T)."""
            B, T = q.shape[0], q.shape[2]
            pad = -T % Q
            q, key, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, key, v))
            beta, g = (F.pad(t, (0, pad)) for t in (beta, g))
            v_beta, k_beta = v * beta[..., None], key * beta[..., None]
            q, key, k_beta, v_beta = (t.reshape(B, h, -1, Q, t.shape[-1]) for t in (q, key, k_beta, v_beta))
            cum = g.reshape(B, h, -1, Q).cumsum(dim=-1)
            above = torch.ones(Q, Q, dtype=torch.bool, device=q.device).triu(1)
            decay = (cum[..., :, None] - cum[..., None, :]).masked_fill(above, float("-inf")).exp()
            system = (k_beta @ key.transpose(-1, -2)) * decay
            scores = (q @ key.transpose(-1, -2)) * decay
            values = torch.linalg.solve_triangular(system, v_beta, upper=False, unitriangular=True)
            k_decayed = torch.linalg.solve_triangular(system, k_beta * cum.exp()[..., None], upper=False,
                                                      unitriangular=True)
            s = s0.to(values) if s0 is not None else values.new_zeros(B, h, dk, dv)
            out = torch.zeros_like(values)
            q = q * cum.exp()[..., None]
            key = key * (cum[..., -1:] - cum).exp()[..., None]
            ends = cum[..., -1].exp()[..., None, None]
            for i in range(values.shape[2]):
                corrected = values[:, :, i] - k_decayed[:, :, i] @ s
                out[:, :, i] = q[:, :, i] @ s + scores[:, :, i] @ corrected
                s = s * ends[:, :, i] + key[:, :, i].transpose(-1, -2) @ corrected
            return out.reshape(B, h, -1, dv)[:, :, :T], s if keep else None

        def step(q, key, v, g, beta, s):
            """One token's recurrent update: (B, h, 1, ·) inputs, state (B, h, dk, dv)."""
            q, key, v, g, beta = q[:, :, 0], key[:, :, 0], v[:, :, 0], g[:, :, 0], beta[:, :, 0]
            s = s * g.exp()[..., None, None]
            delta = (v - (s * key[..., None]).sum(dim=-2)) * beta[..., None]
            s = s + key[..., None] * delta[..., None, :]
            return (s * q[..., None]).sum(dim=-2)[:, :, None], s

        part = b.part(forward, **mods)
        part.dt_bias = nn.Parameter(torch.ones(h))
        part.A_log = nn.Parameter(torch.zeros(h))
        part.norm = nn.Parameter(torch.ones(dv))
        return part
