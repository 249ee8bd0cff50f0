"""LayerNorm (Ba et al. 2016): a weight and, optionally, a bias of `dim` each; `affine: false`
holds neither (OLMo's non-parametric LayerNorm).

Elementwise only: 0 FLOPs under pytorch; under `full`, normalisation plus the affine
multiply (and add) per element.
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from ..checks import Check
from ..cost import Cost
from ..symbols import ACT
from .parallel import REPLICATED
from .base import Component, Ctx, Size


class LayerNorm(Component):
    kind = "layernorm"
    recompute_part = "norm"
    parallel = REPLICATED  # token-wise: whole on every tp rank
    dim: Size
    affine: StrictBool = True  # a weight (and a bias) of `dim`
    bias: StrictBool | None = None  # default: as affine

    @property
    def has_bias(self) -> bool:
        return self.affine if self.bias is None else self.bias

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        if self.has_bias and not self.affine:
            yield Check("bias", sympy.false, "a bias needs affine: true (a LayerNorm without its weight has no bias)")

    def parts(self, ctx: Ctx):
        affine = int(self.affine) + int(self.has_bias)
        return {
            "norm": Cost.weights(self.dim * affine)
            + ctx.elementwise(ctx.tokens * self.dim, "layernorm")
            + ctx.elementwise(ctx.tokens * self.dim * affine, "affine")
        }

    def saved(self, ctx: Ctx):
        return Cost(saved=ctx.input_saved(self.dim) + 2 * ctx.tokens * ACT)  # input; mean and 1/std per token

    def build(self, b):
        from torch import nn

        norm = nn.LayerNorm(b.int(self.dim), elementwise_affine=self.affine, bias=self.has_bias)
        return b.part(lambda m, x, state: m.norm(x), norm=norm)
