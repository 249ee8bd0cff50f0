"""Contrastive head (CLIP, Radford et al. 2021): the cosine similarity of every sample's
vector in this stream with every sample's vector that the `encoder` left, times a learned
temperature: logits of batch x batch.

Both sides must be one vector per sample of `dim` features (pool and project them first).
One parameter (the log of the temperature); the b x b x dim matmul is the only work
FlopCounterMode counts. Run as Hugging Face's CLIPModel runs it: each side divided by its
norm (x.pow(2).sum(-1).pow(0.5)), then t @ i^T times exp(logit_scale).
"""

from __future__ import annotations

import sympy

from .. import ops
from ..checks import Check
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, FieldError, Size, fresh

ONE = sympy.Integer(1)


class Contrastive(Component):
    kind = "contrastive"
    scores_batch = True
    reads_memory = True
    decodes = False
    dim: Size

    def parts(self, ctx: Ctx):
        memory, b = self.encoder_output(ctx), ctx.batch
        return {
            "normalize": ctx.elementwise(2 * b * self.dim, "l2_normalize") + ctx.elementwise(2 * b, "sqrt"),
            "logits": ops.matmul(ctx.convention, 1, b, self.dim, b, grad_a=ctx.flow.grad, grad_b=memory.grad)
            + ctx.elementwise(b * b, "scale"),
            "logit_scale": Cost.weights(ONE),
        }

    def saved(self, ctx: Ctx):
        memory, b = self.encoder_output(ctx), ctx.batch
        # each side's input (pow and the division read it), its sum of squares and norm (b each),
        # the two normalised sides (the matmul), the logits and exp(logit_scale) (the product)
        sides = ctx.input_saved(self.dim) + memory.saved(b, self.dim)
        return Cost(saved=sides + (2 * b + 2 * b + 2 * b * self.dim + b * b + 1) * ACT)

    def after(self, flow):
        return fresh(flow, grad=True, length=ONE, width=None, memory=None)  # (b, 1, b): logits, the last layer

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        memory = self.encoder_output(ctx)
        for side, flow_length, width in (("this stream", ctx.flow.length, ctx.flow.width),
                                         ("the encoder's output", memory.length, memory.width)):
            if flow_length is None:
                raise FieldError(None, f"contrastive needs one vector per sample from {side}: pool it first")
            yield Check("dim", sympy.Eq(flow_length, 1), f"{side} has {{}} tokens per sample; contrastive needs one "
                        "(pool_tokens first)", (flow_length,))
            if width is not None:
                yield Check("dim", sympy.Eq(width, self.dim), f"{side} has {{}} features, dim is {{}}", (width, self.dim))

    def build(self, b):
        import torch
        from torch import nn

        def normalized(e):  # (B, d) / (B, 1)
            return e / e.pow(2).sum(dim=-1, keepdim=True).pow(0.5)

        def forward(m, x, state):  # (B, 1, d) and the memory (B, 1, d) -> (B, 1, B)
            text, image = normalized(x[:, 0]), normalized(state["memory"][:, 0])
            return (torch.matmul(text, image.t()) * m.logit_scale.exp()).unsqueeze(1)

        part = b.part(forward)
        part.logit_scale = nn.Parameter(torch.tensor(2.6592))  # log(1/0.07), CLIP's initial temperature
        return part
