"""LayerNorm (Ba et al. 2016): a weight and, optionally, a bias of `dim` each.

Elementwise only: 0 FLOPs under pytorch; under `full`, normalisation plus the affine
multiply (and add) per element.
"""

from __future__ import annotations

from pydantic import StrictBool

from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size


class LayerNorm(Component):
    kind = "layernorm"
    dim: Size
    bias: StrictBool = True

    def parts(self, ctx: Ctx):
        affine = 1 + int(self.bias)
        return {
            "norm": Cost.weights(self.dim * affine)
            + ctx.elementwise(ctx.tokens * self.dim, "layernorm")
            + ctx.elementwise(ctx.tokens * self.dim * affine, "affine")
        }

    def saved(self, ctx: Ctx):
        return Cost(saved=ctx.input_saved(self.dim) + 2 * ctx.tokens * ACT)  # input; mean and 1/std per token

    def build(self, b):
        from torch import nn

        return b.part(lambda m, x, state: m.norm(x), norm=nn.LayerNorm(b.int(self.dim), bias=self.bias))
