"""xLSTM's matrix-memory LSTM layer (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory", Sec. 2.3;
xLSTM-7B: Beck et al. 2025, "xLSTM 7B: A Recurrent LLM for Fast and Efficient Inference"), as xLSTM-7B's
blocks run it in transformers (xLSTMLayer, its native path: the xlstm package's Triton kernels are not on the CPU):

    q, k = q(x), k(x)                 dim -> qk_dim each (heads x dq)
    v, o = v(x), ogate_preact(x)      dim -> v_dim each (heads x dv)
    i, f = cap(igate(x)), cap(fgate(x))   dim -> heads each, with biases; cap(z) = 15 tanh(z / 15)
    C_t = f_t C_t-1 + i_t k_t v_t^T,  n_t = f_t n_t-1 + i_t k_t,  h_t = C_t^T q_t / max(|n_t^T q_t|, exp(-m_t))
                                      (exponential input gate, log-sigmoid forget gate, m_t the stabiliser)
    out = out_proj(sigmoid(o) * layernorm per head(h))

A sequence of T tokens runs as transformers' inference wrapper runs it (its default mode, with gradients too):
the first c = floor(T / chunk) chunks by the chunkwise form, the T - c·chunk tokens left one step at a time;
one token alone takes a step. FLOPs under pytorch, per (batch, head), dq and dv each head's sizes, Q = chunk:
per chunk the chunk's keys with its values into the state (dq·Q·dv multiply-adds), queries with keys (Q²·dq),
queries with the state entering the chunk (Q·dq·dv) and with its normaliser (Q·dq), the decayed scores with the
values (Q²·dv); per step the key-value outer product and the query with the state (dq·dv each) and with the
normaliser (dq). Backward: each product twice (every operand needs a gradient; the state's last update and its
zero initial value included, as autograd runs them). The xlstm package's kernels (TFLA) run the same products by
chunk and the same step-by-step tail, so `kernel` counts as pytorch does.

A decode step takes one step. The cache is batch x heads x (dq·dv + dq + 1) values: the memory, the
normaliser and the stabiliser, in the cache's dtype (transformers' xLSTMCache: the model's).

The reference build runs the cell in fp32: transformers' native path fails under bf16 once a prompt fills a chunk
(the fp32 stabiliser meets bf16 keys in a matmul), so under a 16-bit dtype the cell's inputs are cast up and its
output down, and the cell's saved bytes are fp32 whatever the dtype.
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from .. import ops
from ..checks import Check, divides
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size
from .gated_deltanet import FP32, Contracted

CAP = 15.0  # gate_soft_cap of transformers' default and of xLSTM-7B


class MLSTM(Component):
    kind = "mlstm"
    sequential = True
    dim: Size
    heads: Size  # num_heads
    qk_dim: Size  # int(hidden_size x qk_dim_factor): queries and keys, all heads
    v_dim: Size | None = None  # int(hidden_size x v_dim_factor): values (default: dim)
    chunk: Contracted = 64  # chunk_size of the chunkwise form
    residual: StrictBool = True

    @property
    def v(self) -> sympy.Expr:
        return self.v_dim if self.v_dim is not None else self.dim

    def split(self, ctx: Ctx):
        """(chunks the chunkwise form runs, tokens left to the steps) a sequence."""
        T = ctx.seq_len
        if ctx.decoding:
            return sympy.Integer(0), T
        c = sympy.floor(T / self.chunk)
        return c, T - c * self.chunk

    def parts(self, ctx: Ctx):
        ctx.need_tokens()
        tokens, h, d, Q = ctx.tokens, self.heads, self.dim, self.chunk
        dq, dv = self.qk_dim / h, self.v / h
        bh = ctx.batch * h
        c, r = self.split(ctx)
        mm = lambda batch, m, k, n: ops.matmul(ctx.convention, batch, m, k, n, grad_a=True, grad_b=True)
        cell = (mm(bh * c, dq, Q, dv) + mm(bh * c, Q, dq, Q) + mm(bh * c, Q, dq, dv) + mm(bh * c, Q, dq, 1)
                + mm(bh * c, Q, Q, dv) + 2 * mm(bh * r, dq, 1, dv) + mm(bh * r, 1, dq, 1)
                + ctx.elementwise(tokens * h * (dq * dv + dq), "ssm_step"))
        parts = {
            "qk": ctx.linear(d, self.qk_dim, False) + ctx.linear(d, self.qk_dim, False),
            "vo": ctx.linear(d, self.v, False) + ctx.linear(d, self.v, False),
            "gates": ctx.linear(d, h, True) + ctx.linear(d, h, True) + ctx.elementwise(tokens * 2 * h, "tanh")
            + ctx.elementwise(tokens * 2 * h, "exp"),
            "cell": cell,
            "norm": ctx.weights(self.v) + ctx.elementwise(tokens * self.v, "layernorm")
            + ctx.elementwise(tokens * self.v, "affine") + ctx.elementwise(tokens * self.v, "sigmoid")
            + ctx.elementwise(tokens * self.v, "gate"),
            "out_proj": ctx.linear(self.v, d, False, input_grad=True),
            "state": Cost(cache=bh * (dq * dv + dq + 1)),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * d, "residual")
        return parts

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        for name, width in (("qk_dim", self.qk_dim), ("v_dim", self.v)):
            yield Check("heads", divides(self.heads, width), "{} heads do not divide " + name + " {}",
                        (self.heads, width))

    def saved(self, ctx: Ctx):
        """As the build below keeps them (transformers' layer keeps the same under fp32). In the activation
        dtype: the input; the two gates' tanh; the head norm's output, the output gate's sigmoid, their product
        and out_proj's input. In fp32, N = batch x T tokens: the cell's output as the head norm reads it, the
        norm's centred values and 1/std. The cell's inputs as it reads them: q (chunks), k, v and f (chunks and
        steps), i (steps), each either a copy of the part it covers or, where that part is laid out contiguously
        already (one head or a one-token part, and one sequence or the whole sequence), the whole tensor, once.
        Per (batch, head) in fp32: a chunk's forget gates' log-sigmoid buffer and its stabiliser's maximum (and
        that maximum's int64 index); each chunk of the state recurrence its two stabiliser terms, its key decays,
        the state and normaliser entering it, the decayed keys; the parallel part per chunk the in-chunk maximum's
        int64 index, the two maxima it combines, the decay matrix, the scores and their decayed product (Q² each),
        the query decays, the decayed queries, the numerator, the denominator's three terms, its sum and the
        state and normaliser it reads (copies, or the states' whole buffer with one chunk or one batch x head);
        one boolean Q x Q mask. Per step: eight scalars, the state's clone, the outer product and the new state
        (dq·dv each), the normaliser's clone, the scaled query and the new normaliser (dq each), the numerator
        (dv)."""
        b, T, h, Q, N = ctx.batch, ctx.seq_len, self.heads, self.chunk, ctx.tokens
        dq, dv, bh = self.qk_dim / h, self.v / h, ctx.batch * self.heads
        c, r = self.split(ctx)
        L = c * Q

        def laid_out(part):  # the slice of a (b, h, T, w) transposed view is contiguous
            return (sympy.Eq(h, 1) | sympy.Eq(part, 1)) & (sympy.Eq(b, 1) | sympy.Eq(part, T))

        chunks, steps = sympy.Ge(T, Q), sympy.Ne(r, 0)
        whole_chunk, whole_step = chunks & laid_out(L), steps & laid_out(r)

        def read(w, in_chunks=True, in_steps=True):
            """Elements of the cell's input of w values a head as its parts keep it."""
            whole = N * h * w
            first = sympy.Piecewise((whole, whole_chunk), (b * h * L * w, chunks), (0, True)) if in_chunks else 0
            kept = whole_step & whole_chunk if in_chunks else sympy.false  # the whole tensor, kept by the chunks
            then = (sympy.Piecewise((0, kept), (whole, whole_step), (b * h * r * w, steps), (0, True))
                    if in_steps else 0)
            return first + then

        inputs = read(dq, in_steps=False) + read(dq) + read(dv) + read(1) + read(1, in_chunks=False)
        recurrent = bh * c * (Q + 1) + c * bh * (2 + Q + dq * dv + Q * dq + dq)
        parallel = bh * c * (3 * Q * Q + 7 * Q + Q * dq + Q * dv + dq * dv + dq) + sympy.Piecewise(
            (bh * dq * (dv + 1), chunks & (sympy.Eq(c, 1) | sympy.Eq(bh, 1))), (0, True))
        stepped = r * bh * (8 + 3 * dq * dv + 3 * dq + dv)
        fp32 = FP32 * (inputs + recurrent + parallel + stepped + 2 * N * self.v + N * h)
        int64 = 8 * bh * c * (1 + Q) + sympy.Piecewise((Q * Q, chunks), (0, True))
        act = (2 * N * h + 4 * N * self.v) * ACT
        return Cost(saved=ctx.input_saved(self.dim) + act + fp32 + int64)

    def build(self, b):
        import torch
        from torch import nn
        from torch.nn import functional as F

        from .build import layer_state

        d, h, qk, v, Q = (b.int(x) for x in (self.dim, self.heads, self.qk_dim, self.v, self.chunk))
        dq, dv, residual = qk // h, v // h, self.residual
        mods = {"q": nn.Linear(d, qk, bias=False), "k": nn.Linear(d, qk, bias=False),
                "v": nn.Linear(d, v, bias=False), "ogate_preact": nn.Linear(d, v, bias=False),
                "igate_preact": nn.Linear(d, h), "fgate_preact": nn.Linear(d, h),
                "out_proj": nn.Linear(v, d, bias=False)}

        def cap(z):
            return CAP * torch.tanh(z / CAP)

        def forward(m, x, state):
            B, T, _ = x.shape
            cache = layer_state(state, m)
            heads = lambda t: t.float().reshape(B, T, h, -1).transpose(1, 2)
            q, k, val = heads(m.q(x)), heads(m.k(x)), heads(m.v(x))
            o = m.ogate_preact(x)
            i, f = cap(m.igate_preact(x)).float().transpose(1, 2), cap(m.fgate_preact(x)).float().transpose(1, 2)
            kept = cache.get("state") if cache is not None else None
            kept = tuple(t.float() for t in kept) if kept is not None else (
                x.new_zeros(B, h, dq, dv, dtype=torch.float32), x.new_zeros(B, h, dq, dtype=torch.float32),
                x.new_zeros(B, h, 1, dtype=torch.float32))
            if T > 1:  # a contiguous copy of each input's tokens in `s`, as transformers' wrapper takes them
                outs, n_chunk = [], T // Q * Q
                part = lambda s: (t[..., s, :].contiguous() if t.dim() == 4 else t[..., s].contiguous()
                                  for t in (q, k, val, i, f))
                if n_chunk:
                    out, kept = chunkwise(*part(slice(None, n_chunk)), *kept)
                    outs.append(out)
                if n_chunk < T:
                    out, kept = sequence(*part(slice(n_chunk, None)), *kept)
                    outs.append(out)
                hidden = torch.concatenate(outs, dim=2)
            else:
                hidden, kept = step(q.squeeze(2), k.squeeze(2), val.squeeze(2), i, f, *kept)
                hidden = hidden[:, :, None, :]
            if cache is not None:  # kept in the activation dtype, as transformers' cache keeps the model's
                cache["state"] = tuple(t.to(x.dtype) for t in kept)
            hidden = head_norm(hidden.transpose(1, 2).to(x.dtype)) * m.norm
            out = m.out_proj(torch.sigmoid(o) * hidden)
            return x + out if residual else out

        def head_norm(t):
            B, T = t.shape[:2]
            dtype, t = t.dtype, t.float()
            centred = t - t.mean(dim=-1, keepdim=True)
            return (centred * torch.rsqrt(t.var(dim=-1, keepdim=True, unbiased=False) + 1e-6)).to(dtype).reshape(
                B, T, -1)

        def chunkwise(q, k, val, i, f, c0, n0, m0):
            """The chunkwise form over whole chunks: (B, h, c·Q, ·) inputs; the output and the last states."""
            B, _, S, _ = q.shape
            nc = S // Q
            vecI, vecB = i.view(B, h, nc, Q), F.logsigmoid(f.view(B, h, nc, Q)).cumsum(-1)
            scale = dq ** -0.5
            # the state entering each chunk, and the last, into one buffer as transformers' loop writes them
            c_all = torch.zeros(B, h, (nc + 1) * dq, dv, dtype=k.dtype, device=k.device)
            n_all = torch.zeros(B, h, (nc + 1) * dq, dtype=k.dtype, device=k.device)
            m_all = torch.zeros(B, h, nc + 1, dtype=k.dtype, device=k.device)
            vecA = vecB[..., -1, None] - vecB + vecI
            scaG, scaA_max = vecB[..., -1], vecA.max(-1).values
            c_k, n_k, m_k = c0, n0, m0.squeeze(-1)
            for j in range(nc):
                c_all[:, :, j * dq:(j + 1) * dq, :], n_all[:, :, j * dq:(j + 1) * dq], m_all[:, :, j] = c_k, n_k, m_k
                m_next = torch.max(scaG[:, :, j] + m_k, scaA_max[:, :, j])
                k_gated = k[:, :, j * Q:(j + 1) * Q, :] * torch.exp(vecA[:, :, j, :] - m_next[..., None])[..., None]
                g = torch.exp(scaG[:, :, j] + m_k - m_next)[:, :, None]
                c_k = g[..., None] * c_k + k_gated.transpose(-2, -1) @ val[:, :, j * Q:(j + 1) * Q, :]
                n_k = g * n_k + k_gated.transpose(-2, -1).sum(-1)
                m_k = m_next
            c_all[:, :, -dq:, :], n_all[:, :, -dq:], m_all[:, :, -1] = c_k, n_k, m_k
            cs = c_all[:, :, :-dq, :].view(B, h, nc, dq, dv)
            ns, ms = n_all[:, :, :-dq].view(B, h, nc, dq), m_all[:, :, :-1]
            qc, kc, vc = q.view(B, h, nc, Q, dq), k.view(B, h, nc, Q, dq), val.view(B, h, nc, Q, dv)
            below = torch.tril(torch.ones(Q, Q, dtype=torch.bool, device=q.device))
            logD = torch.where(below, vecB[..., :, None] - vecB[..., None, :], -float("inf")) + vecI[..., None, :]
            m_inter = vecB + ms[..., None]
            m_comb = torch.maximum(m_inter, torch.max(logD, dim=-1).values)[..., None]
            D = torch.exp(logD - m_comb)
            M = (qc @ kc.transpose(-2, -1)) * scale * D
            q_gated = qc * torch.exp(m_inter[..., None] - m_comb) * scale
            num = q_gated @ cs + M @ vc
            den = torch.maximum(torch.abs(q_gated @ ns.unsqueeze(-1) + M.sum(dim=-1, keepdim=True)),
                                torch.exp(-m_comb))
            out = (num / (den + 1e-6)).view(B, h, S, dv)
            return out, (c_all[:, :, -dq:, :], n_all[:, :, -dq:], m_all[:, :, -1:])

        def sequence(q, k, val, i, f, c0, n0, m0):
            outs, kept = [], (c0, n0, m0)
            for t in range(q.shape[2]):
                out, kept = step(q[:, :, t], k[:, :, t], val[:, :, t], i[:, :, t, None], f[:, :, t, None], *kept)
                outs.append(out)
            return torch.stack(outs, dim=-2), kept

        def step(q, k, val, i, f, c_old, n_old, m_old):
            """One token: q, k (B, h, dq), val (B, h, dv), i, f (B, h, 1)."""
            f_log = F.logsigmoid(f)
            m_new = torch.max(f_log + m_old, i)
            f_act, i_act = torch.exp(f_log + m_old - m_new), torch.exp(i - m_new)
            q_scaled = q * dq ** -0.5
            c_new = f_act[..., None] * c_old.clone() + i_act[..., None] * (k[..., None] @ val[:, :, None, :])
            n_new = f_act * n_old.clone() + i_act * k
            num = q_scaled[:, :, None, :] @ c_new
            qn = q_scaled[:, :, None, :] @ n_new[..., None]
            den = torch.maximum(qn.squeeze(2).abs(), torch.exp(-m_new)) + 1e-6
            return num.squeeze(2) / den, (c_new, n_new, m_new)

        part = b.part(forward, **mods)
        part.norm = nn.Parameter(torch.ones(v))
        return part
