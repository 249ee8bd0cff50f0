"""A learned class token (BERT's [CLS], ViT): `dim` parameters, prepended to every
sequence, so the stream grows by one token. No FLOPs (a concatenation)."""

from __future__ import annotations


from ..cost import Cost
from .base import Component, Ctx, Size, fresh


class ClassToken(Component):
    kind = "class_token"
    mixes_tokens = True
    decodes = False
    dim: Size

    def parts(self, ctx: Ctx):
        ctx.need_tokens()
        return {"token": Cost.weights(self.dim)}

    def after(self, flow):
        return fresh(flow, grad=True, length=flow.length + 1)

    def saved(self, ctx: Ctx):
        return Cost()  # concatenation keeps nothing

    def build(self, b):
        import torch
        from torch import nn

        def forward(m, x, state):  # (B, T, dim) -> (B, 1 + T, dim)
            return torch.cat((m.token.expand(x.shape[0], 1, -1), x), dim=1)

        part = b.part(forward)
        part.token = nn.Parameter(torch.zeros(1, 1, b.int(self.dim)))
        return part
