"""RMSNorm (Zhang & Sennrich 2019): a weight of `dim`, no bias, no mean subtraction.

Elementwise only: 0 FLOPs under pytorch; under `full`, normalisation plus the weight
multiply per element.
"""

from __future__ import annotations

from ..cost import Cost
from .base import Component, Ctx, Size


class RMSNorm(Component):
    kind = "rmsnorm"
    dim: Size

    def parts(self, ctx: Ctx):
        return {
            "norm": Cost.weights(self.dim)
            + ctx.elementwise(ctx.tokens * self.dim, "rmsnorm")
            + ctx.elementwise(ctx.tokens * self.dim, "affine")
        }

    def build(self, b):
        from torch import nn

        return b.part(lambda m, x, state: m.norm(x), norm=nn.RMSNorm(b.int(self.dim)))
