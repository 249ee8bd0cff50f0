"""Recurrent layers: `rnn` (Elman, tanh), `lstm` (Hochreiter & Schmidhuber 1997) and `gru`
(Cho et al. 2014), stacked and optionally bidirectional, with PyTorch's parameter layout:
per layer and direction W_ih (G·h x input), W_hh (G·h x h) and, with bias, b_ih and b_hh
(G·h each), where G = 1, 4, 3 gates. The same weights run at every time step, so FLOPs
grow with seq_len while parameters do not.

Per layer and direction, forward: the input projection 2·b·T·input·G·h (one matmul over
all steps) and the recurrent one 2·b·T·h·G·h (one matmul per step). Backward: weight
gradients for both; the input gradient when the input needs one; and the hidden-state
gradient at every step but the first, whose h0 = 0 needs none: (2T - 1) recurrent matmuls.

NB: FlopCounterMode counts 0 for nn.LSTM and nn.GRU on CPU (their fused kernels have no
formula), so the reference builder writes the cells out with explicit matmuls, which it
counts — the same parameters, the same arithmetic.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import StrictBool

from .. import ops
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size


class _Recurrent(Component):
    sequential = True
    gates: ClassVar[int]
    cell: ClassVar[str]  # the conventions.ELEMENTWISE entry for one step of one hidden unit
    dim: Size  # input features
    hidden: Size
    num_layers: Size = 1
    bidirectional: StrictBool = False
    bias: StrictBool = True

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def one_layer(self, ctx: Ctx, d_in, input_grad: bool) -> Cost:
        """One layer, one direction, over every time step."""
        conv, b, T, h, G = ctx.convention, ctx.batch, ctx.seq_len, self.hidden, self.gates
        params = G * h * (d_in + h) + (2 * G * h if self.bias else 0)
        step = conv.flops_per_mac * b * h * G * h  # h_{t-1} (b, h) @ W_hh^T (h, G·h)
        recurrent = Cost(forward=T * step, backward=T * step + (T - 1) * step)
        projection = ops.matmul(conv, 1, b * T, d_in, G * h, grad_a=input_grad, grad_b=True)
        cells = ctx.elementwise(b * T * h, self.cell)
        return Cost.weights(params) + projection + recurrent + cells

    def parts(self, ctx: Ctx):
        first = self.one_layer(ctx, self.dim, ctx.flow.grad) * self.directions
        later = self.one_layer(ctx, self.directions * self.hidden, True) * self.directions
        # What a decoder keeps between steps: h (and an LSTM's c) per layer and direction.
        state = ctx.batch * self.num_layers * self.directions * self.hidden * (2 if self.kind == "lstm" else 1)
        return {"layer_0": first, "layers_after": later * (self.num_layers - 1), "state": Cost(cache=state)}

    def saved(self, ctx: Ctx):
        b, T, h, L, dirs = ctx.batch, ctx.seq_len, self.hidden, self.num_layers, self.directions
        # per step, in units of b x h: lstm its h and c from before, three sigmoids, two tanhs;
        # gru r, z, 1 - z, n, h from before and h's projection (3 gates); rnn its tanh, which
        # is the next step's h (and h0 once)
        steps = {"lstm": 7 * T, "gru": 8 * T, "rnn": T + 1}[self.kind]
        inputs = ctx.input_saved(self.dim) + (L - 1) * b * T * dirs * h * ACT  # each layer's input, once per layer
        return Cost(saved=inputs + L * dirs * steps * b * h * ACT)

    def out_width(self, flow):
        return self.directions * self.hidden

    def build(self, b):
        import torch
        from torch import nn
        from torch.nn import functional as F

        d, h, G, L, dirs = b.int(self.dim), b.int(self.hidden), self.gates, b.int(self.num_layers), self.directions
        kind, use_bias = self.kind, self.bias
        def cell(x_t, h_t, c_t, projected_h):
            if kind == "rnn":
                return torch.tanh(x_t + projected_h), None
            if kind == "gru":
                xr, xz, xn = x_t.chunk(3, dim=-1)
                hr, hz, hn = projected_h.chunk(3, dim=-1)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                n = torch.tanh(xn + r * hn)
                return (1 - z) * n + z * h_t, None
            i, f, g, o = (x_t + projected_h).chunk(4, dim=-1)
            c_t = torch.sigmoid(f) * c_t + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c_t), c_t

        def direction(m, x, layer, suffix, cache):
            get = lambda name: getattr(m, f"{name}_l{layer}{suffix}", None)
            B, T, _ = x.shape
            projected = F.linear(x, get("weight_ih"), get("bias_ih"))  # (B, T, G·h): one matmul for all steps
            # h0 = 0 (no gradient), or the state a decode cache kept from the last step
            h_t, c_t = cache.get((layer, suffix), (x.new_zeros(B, h), x.new_zeros(B, h)))
            c_t = x.new_zeros(B, h) if c_t is None else c_t
            outputs = [None] * T
            for t in reversed(range(T)) if suffix else range(T):
                h_t, c_t = cell(projected[:, t], h_t, c_t, F.linear(h_t, get("weight_hh"), get("bias_hh")))
                outputs[t] = h_t
            cache[(layer, suffix)] = (h_t, c_t) if kind == "lstm" else (h_t, None)
            return torch.stack(outputs, dim=1)  # (B, T, h)

        def forward(m, x, state):
            kept = state.get("kv")
            cache = kept.setdefault(m, {}) if kept is not None else {}
            for layer in range(L):
                x = torch.cat([direction(m, x, layer, s, cache) for s in ("", "_reverse")[:dirs]], dim=-1)
            return x  # (B, T, dirs·h)

        part = b.part(forward)
        for layer in range(L):
            d_in = d if layer == 0 else dirs * h
            for suffix in ("", "_reverse")[:dirs]:
                # PyTorch's names and shapes (nn.LSTM's weight_ih_l0, …), initialised as it does
                for name, shape in ((f"weight_ih_l{layer}", (G * h, d_in)), (f"weight_hh_l{layer}", (G * h, h))):
                    setattr(part, name + suffix, nn.Parameter(torch.empty(shape).uniform_(-(h**-0.5), h**-0.5)))
                if use_bias:
                    for name in (f"bias_ih_l{layer}", f"bias_hh_l{layer}"):
                        setattr(part, name + suffix, nn.Parameter(torch.zeros(G * h)))

        return part


class RNN(_Recurrent):
    kind, gates, cell = "rnn", 1, "rnn_cell"


class LSTM(_Recurrent):
    kind, gates, cell = "lstm", 4, "lstm_cell"


class GRU(_Recurrent):
    kind, gates, cell = "gru", 3, "gru_cell"
