"""Feed-forward block: up-projection, activation, down-projection, added back to the stream.

`activation: gelu_new` is GELU's tanh approximation written out as GPT-2 and Hugging Face
do: the same values and FLOPs as gelu_tanh (PyTorch's fused kernel), but it keeps more
for backward.

`activation: quick_gelu` is CLIP's x·sigmoid(1.702x), written out as OpenAI and Hugging Face
write it (it keeps x, the sigmoid and the product).

`activation: relu2` is the squared ReLU (So et al. 2021, Primer; Nemotron-H's MLPs): relu(x)², kept
as the ReLU's output (which the square reads) and the square (which down_proj reads).

`gated: true` is the GLU family (Shazeer 2020): SwiGLU with silu, GeGLU with gelu — three
matrices, act(x W_gate) * (x W_up) then W_down. Every weight is used once per token,
so forward FLOPs = 2 x weights x tokens under pytorch (biases aside).

`limit: L` (gated only) is gpt-oss's clamped SwiGLU: act(min(gate, L)) * (clamp(up, -L, L) + 1),
with act = quick_gelu (gpt-oss's gate·sigmoid(1.702·gate)). No FLOPs under pytorch; under
`full` two clamps and an add per hidden value; for backward each clamp keeps its input and the
product its shifted factor: two hidden-wide tensors more per token than the unclamped gate.
`shifted: false` drops the + 1, as DeepSeek-V4's `swiglu_limit` clamps: act(min(gate, L)) * clamp(up, -L, L),
the add gone from `full`, the same two tensors more (the product keeps the clamped up).

`hidden_dropout: p` drops the output before it is added back (components/dropout.py).

`adapter_rank: r` adds a per-use low-rank adapter to the up projection (Zamba2's shared MLP: dim -> r -> hidden,
or 2 x hidden gated, its halves added to gate and up): its weights, its FLOPs, and r values a token kept for its
second linear. In a `tied` block each use holds its own.
"""

from __future__ import annotations

from typing import Literal

import sympy
from pydantic import StrictBool

from ..checks import Check
from ..cost import ZERO, Cost
from ..precision import recomputed_activations
from ..symbols import ACT
from . import dropout
from .linear import ADAPTER_TP, adapter, adapter_checks, adapter_module
from .parallel import TP, Rule
from .base import Component, Ctx, FieldError, Rate, Ratio, Size

Activation = Literal["relu", "relu2", "gelu", "gelu_tanh", "gelu_new", "quick_gelu", "silu"]


class MLP(Component):
    kind = "mlp"
    recompute_part = "mlp"
    tunable = True
    parallel = Rule("parallel", lambda c: {"hidden": c.hidden / TP}, lambda c: (("hidden", c.hidden),),
                    torch=(("up_proj", "colwise"), ("gate_proj", "colwise"), ("down_proj", "rowwise")),
                    refuses=lambda c: ADAPTER_TP if c.adapter_rank is not None else None)
    dim: Size
    hidden: Size
    activation: Activation = "gelu"
    gated: StrictBool = False
    bias: StrictBool = False
    limit: Ratio | None = None  # gpt-oss's clamp of the gate and up branches (gated only)
    shifted: StrictBool = True  # the clamped up plus one (gpt-oss's); false: DeepSeek-V4's plain clamp
    residual: StrictBool = True  # output is added to the input stream
    hidden_dropout: Rate | None = None  # on the output, before the residual add
    adapter_rank: Size | None = None  # a per-use low-rank adapter on the up (and gate) projection (Zamba2's)

    def parts(self, ctx: Ctx):
        acts = ctx.tokens * self.hidden
        parts = {"up_proj": ctx.linear(self.dim, self.hidden, self.bias, name="up_proj")}
        if self.gated:
            parts["gate_proj"] = ctx.linear(self.dim, self.hidden, self.bias, name="gate_proj")
        if self.adapter_rank is not None:
            parts["adapter"] = adapter(ctx, self.dim, self.adapter_rank, self.hidden * (2 if self.gated else 1))
        kind = "gelu" if self.activation.startswith("gelu") else self.activation
        parts["activation"] = ctx.elementwise(acts, kind) + (ctx.elementwise(acts, "gate") if self.gated else Cost())
        if self.limit is not None:  # the two clamps and up's shift by one
            parts["activation"] += ctx.elementwise(2 * acts, "clamp") + (
                ctx.elementwise(acts, "bias") if self.shifted else Cost())
        parts["down_proj"] = ctx.linear(self.hidden, self.dim, self.bias, input_grad=ctx.grad_after(*self.linears[:-1]),
                                        name="down_proj")
        return parts | dropout.output(ctx, self.hidden_dropout, self.dim, self.residual)

    @property
    def linears(self) -> tuple[str, ...]:
        return ("up_proj", "gate_proj", "down_proj") if self.gated else ("up_proj", "down_proj")

    def saved(self, ctx: Ctx):
        if ctx.tune is not None:
            if self.limit is not None:
                raise FieldError("limit", "fine-tuning a clamped gate (gpt-oss's) is not modelled")
            return Cost(saved=tuned_saved(ctx, self.dim, self.hidden, self.activation, self.gated) + self.output_mask(ctx))
        adapted = 0 if self.adapter_rank is None else ctx.tokens * self.adapter_rank * ACT  # its second linear's input
        clamped = self.limit is not None
        kept = mlp_saved(ctx.tokens, self.hidden, self.activation, self.gated, clamped)
        return Cost(saved=ctx.input_saved(self.dim) + kept + adapted + self.output_mask(ctx),
                    activation_checkpoint=activation_checkpoint(ctx.tokens, self.hidden, self.activation, self.gated,
                                                                clamped))

    def output_mask(self, ctx: Ctx):
        return dropout.output_mask(ctx, self.hidden_dropout, self.dim)

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        yield from clamp_checks(self)
        yield from adapter_checks(self, ctx)

    def build(self, b):
        from torch import nn

        from .build import checkpointed

        d, h = b.int(self.dim), b.int(self.hidden)
        act = gate(self.activation, None if self.limit is None else b.rate(self.limit), self.shifted)
        p = b.rate(self.hidden_dropout)
        mods = {"up_proj": nn.Linear(d, h, bias=self.bias), "down_proj": nn.Linear(h, d, bias=self.bias)}
        if self.gated:
            mods["gate_proj"] = nn.Linear(d, h, bias=self.bias)
        if self.adapter_rank is not None:
            mods["adapter"] = adapter_module(d, b.int(self.adapter_rank), h * (2 if self.gated else 1))

        run = checkpointed(act) if recomputed_activations(b.recompute) else act

        def forward(m, x, state):  # (B, T, d) -> (B, T, h) -> (B, T, d)
            if self.adapter_rank is not None:  # Zamba2's: added to the fused gate and up's output, half to each
                extra = m.adapter(x)
                up = m.up_proj(x) + extra[..., -h:]
                hidden = run(m.gate_proj(x) + extra[..., :h], up) if self.gated else run(up)
            else:
                hidden = run(m.gate_proj(x), m.up_proj(x)) if self.gated else run(m.up_proj(x))
            out = dropout.apply(m.down_proj(hidden), p, m.training)
            return x + out if self.residual else out

        return b.part(forward, **mods)


def mlp_saved(rows, hidden, activation: str, gated: bool, clamped: bool = False):
    """What an MLP keeps for backward besides its input, over `rows` tokens: relu keeps its
    output (which down_proj reads too); gelu and silu their input as well; gelu_new, written
    out, five tensors; a gate adds the other branch and the product down_proj reads; gpt-oss's
    clamps their inputs (the gate's, and up's, which the product then no longer reads) and up + 1."""
    return rows * (KEPT_PER_VALUE[activation] + (2 if gated else 0) + (2 if clamped else 0)) * hidden * ACT


def activation_checkpoint(rows, hidden, activation: str, gated: bool, clamped: bool = False):
    """What checkpointing the activation (act(gate) x up, or act(up)) changes in mlp_saved over `rows` rows: the
    checkpoint keeps its inputs (gate and up, or up) and down_proj the product, where the activation and the product
    kept their own (a relu alone then keeps more: its input beside its output)."""
    own = KEPT_PER_VALUE[activation] + (2 if gated else 0) + (2 if clamped else 0)
    return rows * ((3 if gated else 2) - own) * hidden * ACT


def tuned_saved(ctx: Ctx, dim, hidden, activation: str, gated: bool):
    """What an MLP keeps under a fine-tune, tensor by tensor as autograd decides: each linear
    keeps its input only when a weight of it trains or an adapter reads it; the activation keeps
    its input (or, relu, its output) when its input needs a gradient; the gate's product keeps
    each factor when the other needs a gradient."""
    if activation not in OWN:
        raise FieldError("activation", f"fine-tuning models the MLP activations {', '.join(OWN)}, not {activation}")
    one = ctx.tokens * hidden * ACT
    g_up = int(ctx.grad_after("up_proj"))
    g_act = int(ctx.grad_after("gate_proj")) if gated else g_up
    keeps_in, keeps_out = OWN[activation]
    down = ctx.reads(("down_proj",))
    out = sympy.Max(keeps_out * g_act, g_up) if gated else sympy.Max(keeps_out * g_act, down)
    kept = one * (keeps_in * g_act + out + (g_act + down if gated else 0))
    return (ctx.linear_saved(dim, ("up_proj", "gate_proj")) + kept
            + ctx.linear_saved(hidden, ("down_proj",), stored=ZERO, input_grad=bool(g_up or g_act)))


# (input, output) an activation keeps for its own backward, where fine-tuning models it
OWN = {"relu": (0, 1), "gelu": (1, 0), "gelu_tanh": (1, 0), "silu": (1, 0)}

# Tensors an activation keeps per value, counting its output (which the next matmul keeps).
KEPT_PER_VALUE = {"relu": 1, "relu2": 2, "tanh": 1, "sigmoid": 1, "gelu": 2, "gelu_tanh": 2, "silu": 2, "quick_gelu": 3,
                  "gelu_new": 5}


def function(name: str):
    """The activation `name` as the torch builds run it (the MLP's and the standalone layer's)."""
    import torch
    from torch.nn import functional as F

    return {
        "relu": F.relu,
        "relu2": lambda t: torch.square(F.relu(t)),
        "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "gelu_new": gelu_new,
        "quick_gelu": lambda t: t * torch.sigmoid(1.702 * t),
        "silu": F.silu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
    }[name]


def clamp_checks(c):
    """An MLP's, or a MoE's experts', clamp fields: a limit clamps a gate; shifted speaks of a limit's up."""
    if c.limit is not None:
        yield Check("limit", sympy.sympify(c.gated), "a clamp limit needs gated: true (it clamps gate and up)")
    if not c.shifted:
        yield Check("shifted", sympy.sympify(c.limit is not None), "shifted: false drops a clamp's + 1: give limit")


def gate(name: str, limit: float | None, shifted: bool = True):
    """The MLP's activation: act(x) ungated, act(gate) * up gated, gpt-oss's clamped form with a limit (DeepSeek-V4's
    without its + 1 when not shifted)."""
    act = function(name)
    if limit is None:
        return lambda t, up=None: act(t) if up is None else act(t) * up
    if not shifted:
        return lambda t, up: act(t.clamp(max=limit)) * up.clamp(-limit, limit)
    return lambda t, up: act(t.clamp(max=limit)) * (up.clamp(-limit, limit) + 1)


def gelu_new(t):
    """GELU's tanh approximation written out, as GPT-2 and Hugging Face's NewGELUActivation do
    (the same values as F.gelu(approximate="tanh"); it keeps x, tanh(·), 1 + tanh(·) and x/2)."""
    import math

    import torch

    return 0.5 * t * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (t + 0.044715 * torch.pow(t, 3.0))))
