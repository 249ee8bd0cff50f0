"""Griffin's recurrent block with its Real-Gated Linear Recurrent Unit (De et al. 2024, "Griffin: Mixing
Gated Linear Recurrences with Local Attention for Efficient Language Models", Sec. 2.4), as
RecurrentGemma's recurrent layers run it (transformers' RecurrentGemmaRecurrentBlock):

    y = gelu_tanh(linear_y(x))                 dim -> width
    u = causal depthwise conv(linear_x(x))     kernel k, padded k - 1 each side, with a bias
    i, r = sigmoid(block-diagonal gates(u))     one width/heads x width/heads block a head each, with biases
    a = exp(-8 r softplus(Λ));  h_t = a_t h_t-1 + sqrt(1 - a_t²) (i_t u_t)     per channel
    out = linear_out(h * y)                    width -> dim

FLOPs under pytorch (2 a multiply-add): the three linears, the conv over T + k - 1 positions, and the
two gates' baddbmm (width²/heads multiply-adds a token each); the recurrence is elementwise. A decode
step convolves the k - 1 inputs kept and the new one elementwise (a sum of products: no FLOPs under
pytorch) and runs the gates and linears on the token. The cache is batch x width x (k - 1 + 1) values:
the conv's last k - 1 inputs and the recurrence's state (transformers keeps the state in fp32).
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from .. import ops
from ..checks import Check, divides
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size
from .conv import conv_cost


class RGLRU(Component):
    kind = "rg_lru"
    sequential = True
    dim: Size
    width: Size  # lru_width
    heads: Size  # num_attention_heads: the gates' diagonal blocks
    kernel: Size = 4  # conv1d_width
    residual: StrictBool = True

    def parts(self, ctx: Ctx):
        T = ctx.need_tokens()
        tokens, w, h, k = ctx.tokens, self.width, self.heads, self.kernel
        gate = ops.matmul(ctx.convention, h, tokens, w / h, w / h, grad_a=True, grad_b=True)
        parts = {
            "linear_y": ctx.linear(self.dim, w, True) + ctx.elementwise(tokens * w, "gelu"),
            "linear_x": ctx.linear(self.dim, w, True),
            # padded on both sides over a sequence; a decode step's is a sum of products (elementwise)
            "conv": conv_cost(ctx, w, w, k, T + k - 1, w, True, input_grad=True) if not ctx.decoding
            else Cost.weights(w * k + w) + ctx.elementwise(tokens * w * k, "scale"),
            "gates": 2 * (Cost.weights(w * w / h + w) + gate) + ctx.elementwise(tokens * w * 2, "sigmoid"),
            "recurrence": Cost.weights(w) + ctx.elementwise(tokens * w, "ssm_discretize")
            + ctx.elementwise(tokens * w, "ssm_step"),
            "linear_out": ctx.linear(w, self.dim, True, input_grad=True) + ctx.elementwise(tokens * w, "gate"),
            "state": Cost(cache=ctx.batch * w * k),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * self.dim, "residual")
        return parts

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        yield Check("heads", divides(self.heads, self.width), "{} heads do not divide width {}",
                    (self.heads, self.width))

    def saved(self, ctx: Ctx):
        """As the build below keeps them (transformers' block keeps the same). In the activation dtype: the
        input; linear_y's and linear_x's outputs (gelu's and the conv's inputs); the conv's output over
        T + k - 1 positions; the gates' input as the baddbmm folds tokens into rows (a copy, but for one
        sequence, one token, or one channel of one tap, where it is a view of the conv's output); the two
        gates, -8·r and softplus(Λ), a and a², the gated input, sqrt's input and the multiplier, the decays
        the scan reads (from the second token on), the scan's output, y and their product (linear_out's
        input).
        The scan's states in fp32, each token's but the last (and, under a 16-bit dtype, each decay cast
        to fp32 from the second token on, instead of the decays); two boolean masks of where a sequence
        starts."""
        b, T, w, k, N = ctx.batch, ctx.seq_len, self.width, self.kernel, ctx.tokens
        # tokens fold into rows as a view where the conv's output lays them out so: one sequence, one token, or
        # one channel convolved by one tap
        copy = sympy.Piecewise((0, sympy.Eq(b, 1) | sympy.Eq(T, 1) | (sympy.Eq(w, 1) & sympy.Eq(k, 1))), (N * w, True))
        act = 13 * N * w + copy + b * w * (T + k - 1) + w
        later = sympy.Min(T - 1, 1)  # 1 from two tokens on: the loop runs
        decays = sympy.Piecewise((N * w * ACT * later, sympy.Eq(ACT, 4)), (4 * (T - 1) * b * w, True))
        return Cost(saved=ctx.input_saved(self.dim) + act * ACT + decays + 4 * T * b * w * later + 2 * b * T)

    def build(self, b):
        import torch
        from torch import nn
        from torch.nn import functional as F

        from .build import layer_state

        d, w, h, k = (b.int(x) for x in (self.dim, self.width, self.heads, self.kernel))
        bw, residual = w // h, self.residual
        mods = {"linear_y": nn.Linear(d, w), "linear_x": nn.Linear(d, w), "linear_out": nn.Linear(w, d),
                "conv": nn.Conv1d(w, w, k, groups=w, padding=k - 1)}

        class Sqrt(torch.autograd.Function):  # sqrt with a clipped gradient, as transformers' (it saves its input)
            @staticmethod
            def forward(ctx, t):
                ctx.save_for_backward(t)
                return torch.sqrt(t)

            @staticmethod
            def backward(ctx, grad):
                (t,) = ctx.saved_tensors
                return grad / torch.sqrt(torch.clip(4.0 * t, min=1 / 1000.0 ** 2))

        def forward(m, x, state):
            B, T, _ = x.shape
            cache = layer_state(state, m)
            y = F.gelu(m.linear_y(x), approximate="tanh")
            u = m.linear_x(x).transpose(1, 2)
            if cache is not None and T == 1:  # the k - 1 kept inputs and this one, a sum of products
                window = torch.cat((cache.get("conv", u.new_zeros(B, w, k - 1)), u), dim=-1)
                cache["conv"] = window[:, :, 1:]
                u = (torch.sum(window * m.conv.weight[:, 0, :], dim=-1) + m.conv.bias).unsqueeze(-1)
            else:
                if cache is not None:
                    cache["conv"] = F.pad(u, (k - T - 1, 0))
                u = m.conv(u)[..., :T]
            u = u.transpose(1, 2)  # (B, T, w)
            grouped = u.reshape(B * T, h, bw).permute(1, 0, 2)
            gate = lambda weight, bias: torch.sigmoid(torch.baddbmm(bias[:, None, :], grouped, weight)
                                                      .transpose(0, 1).reshape(B, T, w))
            i, r = gate(m.input_weight, m.input_bias), gate(m.recurrent_weight, m.recurrent_bias)
            log_a = -8.0 * r * F.softplus(m.recurrent_param)
            a, a_square = torch.exp(log_a), torch.exp(2 * log_a)
            s = cache.get("state") if cache is not None else None
            first = torch.zeros(B, T, 1, dtype=torch.bool, device=x.device)  # where a sequence starts: no decay
            if s is None:
                first[:, 0] = True
            normalized = u * i * (first + ~first * Sqrt.apply(1 - a_square)).type(u.dtype)
            a = a * ~first
            if T == 1 and s is not None:
                s = a[:, 0].type(torch.float32) * s + normalized[:, 0].type(torch.float32)
                hs = s[:, None].type(normalized.dtype)
            elif T == 1:  # one token from a zero state: itself, no loop (transformers' shortcut)
                hs, s = normalized, normalized[:, 0].type(torch.float32)
            else:
                s = torch.zeros(B, w, dtype=torch.float32, device=x.device) if s is None else s
                hs = torch.zeros_like(normalized)
                for t in range(T):
                    s = a[:, t].type(torch.float32) * s + normalized[:, t].type(torch.float32)
                    hs[:, t] = s.type(normalized.dtype)
            if cache is not None:
                cache["state"] = s
            out = m.linear_out(hs * y)
            return x + out if residual else out

        part = b.part(forward, **mods)
        part.recurrent_param = nn.Parameter(torch.zeros(w))
        for name in ("input", "recurrent"):
            setattr(part, f"{name}_weight", nn.Parameter(torch.randn(h, bw, bw) / bw))
            setattr(part, f"{name}_bias", nn.Parameter(torch.zeros(h, bw)))
        return part
