"""Pooling over images: `pool` (max or average over a kernel window) and `adaptive_pool`
(to a fixed output size, as ResNet's global average pool). No parameters; FlopCounterMode
has no formula for pooling, so 0 FLOPs under pytorch; under `full`, one operation per
window element read.

Output size (ceil_mode off): floor((L + 2·padding - kernel) / stride) + 1.
"""

from __future__ import annotations

from typing import Literal

import sympy

from ..checks import Check, every
from ..cost import Cost
from .base import IMAGE_NEEDED, Component, Count, Ctx, FieldError, Flow, Size, fresh
from .conv import output_size


def pool_saved(ctx: Ctx, function: str, out_positions) -> Cost:
    """A pool keeps its input (when it needs a gradient); max pooling also the int64 argmax
    of each output."""
    if not ctx.flow.grad:
        return Cost()
    argmax = 8 * ctx.batch * ctx.flow.width * out_positions if function == "max" else 0
    return Cost(saved=ctx.input_saved() + argmax)


def _spatial(flow: Flow) -> tuple:
    if flow.spatial is None:
        raise FieldError(None, IMAGE_NEEDED)
    return flow.spatial


class Pool(Component):
    kind = "pool"
    mixes_tokens = True
    decodes = False
    function: Literal["max", "avg"] = "max"
    kernel: Size
    stride: Size | None = None  # default: kernel
    padding: Count = 0

    def out_lengths(self, flow: Flow) -> tuple:
        stride = self.stride if self.stride is not None else self.kernel
        return tuple(output_size(n, self.kernel, stride, self.padding) for n in _spatial(flow))

    def parts(self, ctx: Ctx):
        out = sympy.Mul(*self.out_lengths(ctx.flow))  # raises unless the stream is an image
        outputs = ctx.elements(ctx.flow.width) / sympy.Mul(*ctx.flow.spatial) * out
        return {"pool": ctx.elementwise(outputs * self.kernel**2, "pool")}

    def in_width(self):
        return None

    def saved(self, ctx: Ctx):
        return pool_saved(ctx, self.function, sympy.Mul(*self.out_lengths(ctx.flow)))

    def after(self, flow):
        return fresh(flow, spatial=self.out_lengths(flow))

    def checks(self, ctx):
        yield from super().checks(ctx)
        yield Check("padding", 2 * self.padding <= self.kernel, "padding {} exceeds half the kernel {}",
                    (self.padding, self.kernel))
        yield Check("kernel", every(n >= 1 for n in self.out_lengths(ctx.flow)), "a {} window does not fit the input",
                    (self.kernel,))

    def build(self, b):
        from torch import nn

        cls = nn.MaxPool2d if self.function == "max" else nn.AvgPool2d
        stride = b.int(self.stride) if self.stride is not None else b.int(self.kernel)
        pool = cls(b.int(self.kernel), stride=stride, padding=b.int(self.padding))
        return b.part(lambda m, x, state: m.pool(x), pool=pool)


class AdaptivePool(Component):
    kind = "adaptive_pool"
    mixes_tokens = True
    decodes = False
    function: Literal["max", "avg"] = "avg"
    size: Size = 1  # output height and width

    def parts(self, ctx: Ctx):
        return {"pool": ctx.elementwise(ctx.elements(ctx.flow.width), "pool")}  # every input read once

    def in_width(self):
        return None

    def saved(self, ctx: Ctx):
        if self.function == "avg" and self.size == 1:  # PyTorch computes it as a mean, which keeps nothing
            return Cost()
        return pool_saved(ctx, self.function, self.size**2)

    def after(self, flow):
        _spatial(flow)
        return fresh(flow, spatial=(self.size, self.size))

    def build(self, b):
        from torch import nn

        cls = nn.AdaptiveMaxPool2d if self.function == "max" else nn.AdaptiveAvgPool2d
        return b.part(lambda m, x, state: m.pool(x), pool=cls(b.int(self.size)))
