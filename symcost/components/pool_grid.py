"""Average a token stream laid out as a square grid over k x k windows (Gemma 3's projector
turns 64 x 64 SigLIP patches into 16 x 16 image tokens so). The tokens must be a square
number, s x s; the output is floor(s / k)^2 tokens. No parameters; FlopCounterMode has no
formula for pooling, so 0 FLOPs under pytorch; under `full`, one operation per window element.

Run as Hugging Face runs it: (b, s², d) transposed and copied to (b, d, s, s), AvgPool2d, then
flattened and transposed back (a view).
"""

from __future__ import annotations

import sympy

from ..checks import Check
from ..cost import Cost
from ..symbols import ACT
from .attention import above_one
from .base import Component, Ctx, Size, fresh


class PoolGrid(Component):
    kind = "pool_grid"
    mixes_tokens = True
    decodes = False
    kernel: Size

    @staticmethod
    def side(length):
        return sympy.sqrt(length)

    def out_length(self, length):
        return sympy.floor(self.side(length) / self.kernel) ** 2

    def parts(self, ctx: Ctx):
        n = ctx.need_tokens()
        read = ctx.elements(ctx.flow.width) / n * self.out_length(n) * self.kernel**2  # raises unless the width is known
        return {"pool": ctx.elementwise(read, "pool")}

    def in_width(self):
        return None

    def saved(self, ctx: Ctx):
        if not ctx.flow.grad:
            return Cost()
        n, d = ctx.need_tokens(), ctx.flow.width
        ctx.elements(d)  # raises unless the width is known
        copied = above_one(n, d)  # the transposed grid is a copy, unless one of its sides is 1
        return Cost(saved=copied * ctx.batch * n * d * ACT + (1 - copied) * ctx.input_saved())

    def after(self, flow):
        return fresh(flow, length=self.out_length(flow.length))

    def checks(self, ctx):
        yield from super().checks(ctx)
        n = ctx.need_tokens()
        side = self.side(n)
        yield Check("kernel", sympy.Eq(side, sympy.floor(side)), "{} tokens are not a square grid", (n,))
        yield Check("kernel", self.kernel <= side, "a window of {} does not fit a grid of {} tokens", (self.kernel, n))

    def build(self, b):
        from torch.nn import functional as F

        k = b.int(self.kernel)

        def forward(m, x, state):  # (B, s², d) -> (B, d, s, s) -> (B, d, s/k, s/k) -> (B, (s/k)², d)
            B, n, d = x.shape
            s = int(round(n**0.5))
            grid = x.transpose(1, 2).reshape(B, d, s, s).contiguous()
            return F.avg_pool2d(grid, k, stride=k).flatten(2).transpose(1, 2)

        return b.part(forward)
