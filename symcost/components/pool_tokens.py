"""Reduce a token stream to one vector per sample for a classifier: the first token (a class
token), the last (CLIP's end-of-text token, the last of a full context) or the mean of all.
No parameters; FlopCounterMode counts 0 for each; under `full`, the mean costs one add per
element."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import sympy

from ..cost import Cost
from .base import Component, Ctx, fresh


class PoolTokens(Component):
    kind = "pool_tokens"
    mixes_tokens = True
    decodes = False
    mode: Literal["first", "last", "mean"] = "first"

    def parts(self, ctx: Ctx):
        if self.mode != "mean":
            ctx.need_tokens()
            return {}
        return {"pool": ctx.elementwise(ctx.elements(ctx.flow.width), "mean")}

    def in_width(self):
        return None

    def after(self, flow):
        if self.mode != "mean":  # a view: the storage it keeps alive is the whole stream
            whole = flow.length * flow.width if flow.width is not None else None  # unknown: a later rule says so
            return replace(flow, length=sympy.Integer(1), stored=flow.stored or whole)
        return fresh(flow, length=sympy.Integer(1))

    def saved(self, ctx: Ctx):
        return Cost()  # a slice, or a mean: neither keeps anything

    def build(self, b):
        if self.mode != "mean":
            at = slice(0, 1) if self.mode == "first" else slice(-1, None)
            return b.part(lambda m, x, state: x[:, at])  # (B, T, d) -> (B, 1, d)
        return b.part(lambda m, x, state: x.mean(dim=1, keepdim=True))
