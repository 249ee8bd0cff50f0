"""Flatten each sample into one feature vector (before a classifier): (B, C, H, W) ->
(B, 1, C·H·W), or (B, T, C) -> (B, 1, T·C). A reshape: no parameters, no FLOPs."""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..cost import Cost
from .base import WIDTH_UNKNOWN, Component, Ctx, FieldError


class Flatten(Component):
    kind = "flatten"
    mixes_tokens = True
    decodes = False

    def parts(self, ctx: Ctx):
        return {}

    def in_width(self):
        return None

    def after(self, flow):
        if flow.width is None:
            raise FieldError(None, WIDTH_UNKNOWN)
        positions = sympy.Mul(*flow.spatial) if flow.spatial is not None else flow.length
        return replace(flow, width=flow.width * positions, length=sympy.Integer(1), spatial=None)

    def saved(self, ctx: Ctx):
        return Cost()  # a view

    def build(self, b):
        return b.part(lambda m, x, state: x.reshape(x.shape[0], 1, -1))
