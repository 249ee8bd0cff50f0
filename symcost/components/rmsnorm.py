"""RMSNorm (Zhang & Sennrich 2019): a weight of `dim`, no bias, no mean subtraction.

Elementwise only: 0 FLOPs under pytorch; under `full`, normalisation plus the weight
multiply per element.
"""

from __future__ import annotations

import sympy

from ..cost import Cost
from ..symbols import ACT
from .parallel import REPLICATED
from .base import Component, Ctx, Size


class RMSNorm(Component):
    kind = "rmsnorm"
    recompute_part = "norm"
    parallel = REPLICATED  # token-wise: whole on every tp rank
    tunable = True
    dim: Size

    def parts(self, ctx: Ctx):
        return {
            "norm": ctx.weights(self.dim)
            + ctx.elementwise(ctx.tokens * self.dim, "rmsnorm")
            + ctx.elementwise(ctx.tokens * self.dim, "affine")
        }

    def saved(self, ctx: Ctx):
        return Cost(saved=rms_saved(ctx.tokens, self.dim, ctx.input_saved(self.dim), *norm_grads(ctx, ctx.flow.grad)))

    def build(self, b):
        from torch import nn

        return b.part(lambda m, x, state: m.norm(x), norm=nn.RMSNorm(b.int(self.dim)))


def rms_saved(rows, dim, stored, input_grad: bool = True, weight_grad: bool = True):
    """What nn.RMSNorm keeps over `rows` rows of `dim`: it computes in fp32, keeping, for its
    input's gradient, the input in fp32 (the input's storage itself, `stored` bytes, when
    activations are fp32; else an fp32 copy of the rows) and 1/rms per row, and for its
    weight's, the normalised values."""
    kept = sympy.Piecewise((stored, sympy.Eq(ACT, 4)), (4 * rows * dim, True)) + 4 * rows if input_grad else 0
    return kept + (4 * rows * dim if weight_grad else 0)


def norm_grads(ctx: Ctx, input_grad: bool) -> tuple[bool, bool]:
    """(input, weight) gradients of a norm reading an input that needs one or not: both in full
    training (as every rule here assumes there), else as the fine-tune leaves them."""
    return (True, True) if ctx.tune is None else (input_grad, not ctx.frozen)
