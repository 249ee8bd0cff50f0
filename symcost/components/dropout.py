"""Dropout (Srivastava et al. 2014): in training, each value is zeroed with probability p and
the rest scaled by 1/(1 - p). No parameters; at inference it does nothing.

Counted as PyTorch runs it on a GPU. With p > 0, F.dropout calls the fused native_dropout,
which keeps a one-byte mask per value for backward (and not its input); with p = 0 it returns
its input, keeping and computing nothing. So a byte count with a rate in it reads
"mask if p > 0". On the CPU F.dropout instead keeps a mask in the activations' dtype: the
reference builds call native_dropout on every device, as CUDA runs it.

FlopCounterMode counts none of it; under `full`, 2 FLOPs a value (the mask and the scale), in
a full pass as in training (a decode step has none).

`attention` and `mlp` take `hidden_dropout` (on their output, before the residual add, as
Megatron-LM and GPT-2 place it) and attention `attention_dropout` (on the probabilities);
this layer is dropout anywhere else (after the embeddings).
"""

from __future__ import annotations

import sympy

from ..cost import ZERO, Cost
from .parallel import REPLICATED
from .base import Component, Ctx, Rate, fresh


def on(p: sympy.Expr) -> sympy.Expr:
    """1 when dropout with probability p runs (p > 0), else 0."""
    return sympy.Piecewise((1, p > 0), (0, True))


def flops(ctx: Ctx, p: sympy.Expr, elements: sympy.Expr) -> Cost:
    """FLOPs of dropping `elements` values: none but under `full`, and none in a decode step
    (inference runs no dropout; a full pass is counted as in training)."""
    if ctx.context != 0:
        return Cost()
    return ctx.elementwise(elements, "dropout") * on(p)


def mask(p: sympy.Expr, elements: sympy.Expr) -> sympy.Expr:
    """Bytes a training forward keeps to drop `elements` values that need a gradient: a
    one-byte mask."""
    return elements * on(p)


def output_mask(ctx: Ctx, p: sympy.Expr | None, width: sympy.Expr) -> sympy.Expr:
    """The mask of a layer's `hidden_dropout` on its output of `width` per token (0 without one)."""
    return ZERO if p is None else mask(p, ctx.tokens * width)


def output(ctx: Ctx, p: sympy.Expr | None, width: sympy.Expr, residual: bool) -> dict[str, Cost]:
    """The work a layer does on its output of `width` per token after its last projection: its
    `hidden_dropout`, then the residual add (attention's and the MLP's alike)."""
    parts = {}
    if p is not None:
        parts["dropout"] = flops(ctx, p, ctx.tokens * width)
    if residual:
        parts["residual"] = ctx.elementwise(ctx.tokens * width, "residual")
    return parts


def apply(x, p: float, training: bool):
    """x through dropout as a CUDA device runs it (see the module docstring)."""
    import torch

    return torch.native_dropout(x, p, True)[0] if training and p > 0 else x


class Dropout(Component):
    kind = "dropout"
    parallel = REPLICATED  # token-wise: whole on every tp rank
    p: Rate

    def parts(self, ctx: Ctx):
        return {"dropout": flops(ctx, self.p, ctx.elements(ctx.flow.width))}

    def saved(self, ctx: Ctx):
        if not ctx.flow.grad:  # autograd records nothing for an input that needs no gradient
            return Cost()
        return Cost(saved=mask(self.p, ctx.elements(ctx.flow.width)))

    def after(self, flow):
        return fresh(flow)

    def build(self, b):
        p = b.rate(self.p)
        return b.part(lambda m, x, state: apply(x, p, m.training))
