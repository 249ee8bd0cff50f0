"""Batch normalisation (Ioffe & Szegedy 2015): a weight and a bias per channel.

The running mean and variance are buffers, not parameters. Elementwise only: 0 FLOPs
under pytorch; under `full`, normalisation and the affine multiply and add per element.
Works on images (BatchNorm2d) and token streams (BatchNorm1d over the feature channels).
"""

from __future__ import annotations

from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size


class BatchNorm(Component):
    kind = "batchnorm"
    dim: Size  # channels

    def parts(self, ctx: Ctx):
        elements = ctx.elements(self.dim)
        return {
            "norm": Cost.weights(2 * self.dim)
            + ctx.elementwise(elements, "batchnorm")
            + ctx.elementwise(2 * elements, "affine")
        }

    def saved(self, ctx: Ctx):
        return Cost(saved=ctx.input_saved(self.dim) + 2 * self.dim * ACT)  # input; batch mean and 1/std per channel

    def build(self, b):
        from torch import nn

        if b.flow.spatial is not None:
            return b.part(lambda m, x, state: m.norm(x), norm=nn.BatchNorm2d(b.int(self.dim)))
        # (B, T, C) -> (B, C, T) for BatchNorm1d, and back
        # contiguous: layers hand on a contiguous stream, so what the next one keeps does not depend on this layout
        return b.part(lambda m, x, state: m.norm(x.transpose(1, 2)).transpose(1, 2).contiguous(),
                      norm=nn.BatchNorm1d(b.int(self.dim)))
