"""RWKV's time mixing and channel mixing (Peng et al. 2023, "RWKV: Reinventing RNNs for the Transformer
Era", Sec. 3), as RWKV-4's layers run them in transformers (RwkvSelfAttention and RwkvFeedForward, the
CPU path):

    time mixing:    x' = token shift of x (the previous token's x; zeros before the first)
                    k, v, r = key(mix_k(x, x')), value(mix_v(x, x')), sigmoid(receptance(mix_r(x, x')))
                    wkv_t = the decayed, exp(k)-weighted average of v up to t (time_decay, time_first per
                            channel; a numerator, denominator and running max carried in fp32)
                    out = output(r * wkv)
    channel mixing: k, r = key(mix_k(x, x')), sigmoid(receptance(mix_r(x, x')))
                    out = r * value(relu(k)²)

mix_c(x, x') = x·μ_c + x'·(1 - μ_c), a learned μ per channel. FLOPs under pytorch: the linears (2 a
multiply-add); the token shift, mixes and the wkv recurrence are elementwise. A decode step runs the
linears on the token; the state is the previous token's x (one a mixing layer) and the wkv's numerator,
denominator and max: batch x (dim + 3 x width) for time mixing, batch x dim for channel mixing.
"""

from __future__ import annotations

from pydantic import StrictBool

from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size


def _shift(x, kept: dict | None, key: str):
    """The previous token's x at each position (zeros before the first, or the kept last token of the
    sequence so far); keeps this sequence's last token."""
    from torch import nn

    T = x.shape[1]
    if kept is not None and T == 1 and key in kept:
        shifted = kept[key][:, None]
    else:
        shifted = nn.functional.pad(x, (0, 0, 1, -1))
        if kept is not None and key in kept:
            shifted[:, 0] = kept[key]
    if kept is not None:
        kept[key] = x[:, -1]
    return shifted


def _mix(x, shifted, mu):
    return x * mu + shifted * (1 - mu)


class RWKVTimeMix(Component):
    kind = "rwkv_time_mix"
    sequential = True
    dim: Size
    width: Size | None = None  # attention_hidden_size (default: dim)
    residual: StrictBool = True

    @property
    def w(self):
        return self.width if self.width is not None else self.dim

    def parts(self, ctx: Ctx):
        tokens, d, w = ctx.tokens, self.dim, self.w
        parts = {
            "mix": Cost.weights(3 * d) + ctx.elementwise(tokens * d * 3 * 3, "scale"),
            "kvr": ctx.linear(d, w, False) + ctx.linear(d, w, False) + ctx.linear(d, w, False)
            + ctx.elementwise(tokens * w, "sigmoid"),
            "wkv": Cost.weights(2 * w) + ctx.elementwise(tokens * w, "ssm_step") + ctx.elementwise(tokens * w, "gate"),
            "output": ctx.linear(w, d, False, input_grad=True),
            "state": Cost(cache=ctx.batch * (d + 3 * w)),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * d, "residual")
        return parts

    def saved(self, ctx: Ctx):
        """As the build below keeps them (transformers' layer keeps the same). In the activation dtype: the
        input; the shifted input, the three mixes' 1 - μ and outputs (the linears' inputs); v (the recurrence
        reads it); exp(time_decay); r, the recurrence's output and their product (output's input). In fp32,
        per token and channel: k as the recurrence reads it (a view of k under fp32, a cast under a 16-bit
        dtype), the state entering each step (numerator, denominator, max) and eight temporaries of its two
        updates (k + time_first, the maxima's other inputs and exponentials, the numerator and denominator
        divided)."""
        N, d, w = ctx.tokens, self.dim, self.w
        return Cost(saved=ctx.input_saved(d) + ACT * (4 * N * d + 3 * d + 4 * N * w + w) + 4 * 12 * N * w)

    def build(self, b):
        import torch
        from torch import nn

        from .build import layer_state

        d, w, residual = b.int(self.dim), b.int(self.w), self.residual
        mods = {name: nn.Linear(d, w, bias=False) for name in ("key", "value", "receptance")}
        mods["output"] = nn.Linear(w, d, bias=False)

        def wkv(decay, first, k, v, s):
            """The recurrence over the sequence: k and v (B, T, w); s the (numerator, denominator, max) kept."""
            out = torch.zeros_like(k)
            if s is None:
                num, den = (torch.zeros_like(k[:, 0], dtype=torch.float32) for _ in range(2))
                top = torch.zeros_like(k[:, 0], dtype=torch.float32) - 1e38
            else:
                num, den, top = s
            decay = -torch.exp(decay)
            for t in range(k.shape[1]):
                kt, vt = k[:, t].float(), v[:, t]
                peak = torch.maximum(top, kt + first)
                e1, e2 = torch.exp(top - peak), torch.exp(kt + first - peak)
                out[:, t] = ((e1 * num + e2 * vt) / (e1 * den + e2)).to(out.dtype)
                peak = torch.maximum(top + decay, kt)
                e1, e2 = torch.exp(top + decay - peak), torch.exp(kt - peak)
                num, den, top = e1 * num + e2 * vt, e1 * den + e2, peak
            return out, (num, den, top)

        def forward(m, x, state):
            cache = layer_state(state, m)
            shifted = _shift(x, cache, "shift")
            k = m.key(_mix(x, shifted, m.mix_k))
            v = m.value(_mix(x, shifted, m.mix_v))
            r = torch.sigmoid(m.receptance(_mix(x, shifted, m.mix_r)))
            out, s = wkv(m.time_decay, m.time_first, k, v, cache.get("wkv") if cache is not None else None)
            if cache is not None:
                cache["wkv"] = s
            out = m.output(r * out)
            return x + out if residual else out

        part = b.part(forward, **mods)
        for name in ("mix_k", "mix_v", "mix_r"):
            setattr(part, name, nn.Parameter(torch.full((1, 1, d), 0.5)))
        part.time_decay = nn.Parameter(torch.zeros(w))
        part.time_first = nn.Parameter(torch.zeros(w))
        return part


class RWKVChannelMix(Component):
    kind = "rwkv_channel_mix"
    sequential = True
    dim: Size
    hidden: Size  # intermediate_size (default 4 x dim in transformers)
    residual: StrictBool = True

    def parts(self, ctx: Ctx):
        tokens, d, h = ctx.tokens, self.dim, self.hidden
        parts = {
            "mix": Cost.weights(2 * d) + ctx.elementwise(tokens * d * 3 * 2, "scale"),
            "key": ctx.linear(d, h, False) + ctx.elementwise(tokens * h * 2, "relu"),
            "value": ctx.linear(h, d, False, input_grad=True),
            "receptance": ctx.linear(d, d, False) + ctx.elementwise(tokens * d, "sigmoid")
            + ctx.elementwise(tokens * d, "gate"),
            "state": Cost(cache=ctx.batch * d),
        }
        if self.residual:
            parts["residual"] = ctx.elementwise(tokens * d, "residual")
        return parts

    def saved(self, ctx: Ctx):
        """As the build below keeps them (transformers' layer keeps the same): the input; the shifted input,
        the two mixes' 1 - μ and outputs; relu's output and its square (value's input); the receptance's
        sigmoid and value's output, which it scales."""
        N, d = ctx.tokens, self.dim
        return Cost(saved=ctx.input_saved(d) + ACT * (5 * N * d + 2 * d + 2 * N * self.hidden))

    def build(self, b):
        import torch
        from torch import nn

        from .build import layer_state

        d, h, residual = b.int(self.dim), b.int(self.hidden), self.residual
        mods = {"key": nn.Linear(d, h, bias=False), "value": nn.Linear(h, d, bias=False),
                "receptance": nn.Linear(d, d, bias=False)}

        def forward(m, x, state):
            cache = layer_state(state, m)
            shifted = _shift(x, cache, "shift")
            k = torch.square(torch.relu(m.key(_mix(x, shifted, m.mix_k))))
            r = torch.sigmoid(m.receptance(_mix(x, shifted, m.mix_r)))
            out = r * m.value(k)
            return x + out if residual else out

        part = b.part(forward, **mods)
        part.mix_k = nn.Parameter(torch.full((1, 1, d), 0.5))
        part.mix_r = nn.Parameter(torch.full((1, 1, d), 0.5))
        return part
