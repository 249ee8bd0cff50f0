"""A standalone activation (between convolutions or linears): no parameters, elementwise
only — 0 FLOPs under pytorch, a per-element constant under `full`."""

from __future__ import annotations

from typing import Literal

from ..cost import Cost
from ..symbols import ACT
from .parallel import REPLICATED
from .base import Component, Ctx, fresh
from .mlp import KEPT_PER_VALUE, function

Function = Literal["relu", "gelu", "gelu_tanh", "gelu_new", "quick_gelu", "silu", "tanh", "sigmoid"]


class Activation(Component):
    kind = "activation"
    parallel = REPLICATED  # token-wise: whole on every tp rank
    function: Function = "relu"

    def parts(self, ctx: Ctx):
        kind = "gelu" if self.function.startswith("gelu") else self.function
        return {"activation": ctx.elementwise(ctx.elements(ctx.flow.width), kind)}

    def saved(self, ctx: Ctx):
        if not ctx.flow.grad:  # autograd records nothing for an input that needs no gradient
            return Cost()
        if self.function in ("relu", "tanh", "sigmoid"):
            return Cost(saved=ctx.elements(ctx.flow.width) * ACT)  # its output
        # its input, and what it computes on the way (not its output: the next layer keeps that)
        return Cost(saved=ctx.input_saved() + (KEPT_PER_VALUE[self.function] - 2) * ctx.elements(ctx.flow.width) * ACT)

    def after(self, flow):
        # relu, tanh and sigmoid keep their output for backward (gelu and silu their input)
        return fresh(flow, kept=flow.grad and self.function in ("relu", "tanh", "sigmoid"))

    def build(self, b):
        fn = function(self.function)
        return b.part(lambda m, x, state: fn(x))
