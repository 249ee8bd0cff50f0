"""Patch embedding (ViT, Dosovitskiy et al. 2021): a conv with kernel = stride = patch that
turns an image into (image/patch)^2 tokens of `dim` features.

Its input is raw pixels, which need no gradient: its backward is the weight gradient only
(1x its forward), as FlopCounterMode counts it.
"""

from __future__ import annotations


from pydantic import StrictBool

from ..checks import Check, every
from ..cost import Cost
from .base import IMAGE_NEEDED, Component, Ctx, FieldError, Flow, Size, fresh
from .conv import conv_cost, output_size


class PatchEmbedding(Component):
    kind = "patch_embedding"
    mixes_tokens = True
    decodes = False
    channels: Size  # input channels (3 for RGB)
    dim: Size  # features per token
    patch: Size  # patch side, in pixels
    bias: StrictBool = True

    def grid(self, flow: Flow) -> tuple:
        if flow.spatial is None:
            raise FieldError(None, IMAGE_NEEDED)
        return tuple(output_size(n, self.patch, self.patch) for n in flow.spatial)  # floor(L / patch)

    def parts(self, ctx: Ctx):
        rows, cols = self.grid(ctx.flow)
        return {"proj": conv_cost(ctx, self.channels, self.dim, self.patch**2, rows * cols, 1, self.bias)}

    def in_width(self):
        return self.channels

    def saved(self, ctx: Ctx):
        return Cost(saved=ctx.input_saved(self.channels))  # the conv's input: the image

    def after(self, flow: Flow) -> Flow:
        rows, cols = self.grid(flow)
        return fresh(flow, grad=True, width=self.dim, length=rows * cols, spatial=None)

    def checks(self, ctx):
        yield from super().checks(ctx)
        yield Check("patch", every(n >= self.patch for n in ctx.flow.spatial), "patch {} is larger than the image",
                    (self.patch,))

    def build(self, b):
        from torch import nn

        p = b.int(self.patch)
        proj = nn.Conv2d(b.int(self.channels), b.int(self.dim), p, stride=p, bias=self.bias)
        # (B, C, H, W) -> (B, dim, H/p, W/p) -> (B, (H/p)(W/p), dim)
        return b.part(lambda m, x, state: m.proj(x).flatten(2).transpose(1, 2).contiguous(), proj=proj)
