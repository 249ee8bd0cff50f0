"""Reduce a token stream to one vector per sample for a classifier: the first token (a class
token) or the mean of all. No parameters; FlopCounterMode counts 0 for both; under `full`,
the mean costs one add per element."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import sympy

from ..cost import Cost
from .base import Component, Ctx, fresh


class PoolTokens(Component):
    kind = "pool_tokens"
    decodes = False
    mode: Literal["first", "mean"] = "first"

    def parts(self, ctx: Ctx):
        if self.mode == "first":
            ctx.need_tokens()
            return {}
        return {"pool": ctx.elementwise(ctx.elements(ctx.flow.width), "mean")}

    def in_width(self):
        return None

    def after(self, flow):
        if self.mode == "first":  # a view: the storage it keeps alive is the whole stream
            return replace(flow, length=sympy.Integer(1), stored=flow.stored or flow.length * flow.width)
        return fresh(flow, length=sympy.Integer(1))

    def saved(self, ctx: Ctx):
        return Cost()  # a slice, or a mean: neither keeps anything

    def build(self, b):
        if self.mode == "first":
            return b.part(lambda m, x, state: x[:, :1])  # (B, T, d) -> (B, 1, d)
        return b.part(lambda m, x, state: x.mean(dim=1, keepdim=True))
