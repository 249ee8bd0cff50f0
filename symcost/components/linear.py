"""A plain linear layer from `dim` to `out` features per token (no residual)."""

from __future__ import annotations

from pydantic import StrictBool

from .base import Component, Ctx, Size


class Linear(Component):
    kind = "linear"
    dim: Size  # input features
    out: Size  # output features
    bias: StrictBool = False

    def parts(self, ctx: Ctx):
        return {"proj": ctx.linear(self.dim, self.out, self.bias)}

    def out_width(self, flow):
        return self.out

    def build(self, b):
        from torch import nn

        proj = nn.Linear(b.int(self.dim), b.int(self.out), bias=self.bias)
        return b.part(lambda m, x, state: m.proj(x), proj=proj)
