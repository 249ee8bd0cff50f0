"""The encoder's output vectors put in place of as many of this stream's tokens, the
placeholders a prompt holds for an image (Gemma 3, LLaVA): `masked_scatter` into the token
embeddings. No parameters and no arithmetic; the stream then carries the encoder's gradient
too, and backward keeps the boolean placeholder mask (one byte per token).

The placeholders are the first tokens of each sequence here; where they sit changes no count.
A decode step inserts nothing: the image was part of the prompt, run at prefill.
"""

from __future__ import annotations

import sympy

from ..checks import Check
from ..cost import Cost
from .base import Component, Ctx, Size, fresh


class InsertEncoder(Component):
    kind = "insert_encoder"
    mixes_tokens = True
    reads_memory = True
    dim: Size

    def parts(self, ctx: Ctx):
        self.encoder_output(ctx)
        ctx.need_tokens()
        return {}

    def saved(self, ctx: Ctx):
        memory = self.encoder_output(ctx)
        return Cost(saved=ctx.tokens if ctx.flow.grad or memory.grad else sympy.Integer(0))  # the bool mask

    def after(self, flow):
        return fresh(flow, grad=flow.grad or (flow.memory is not None and flow.memory.grad))

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        memory = self.encoder_output(ctx)
        if ctx.decoding:
            return
        yield Check("dim", memory.length <= ctx.need_tokens(), "the encoder gives {} vectors per sample, more than the "
                    "{} tokens here", (memory.length, ctx.need_tokens()))
        if memory.width is not None:
            yield Check("dim", sympy.Eq(memory.width, self.dim), "the encoder gives {} features, dim is {}",
                        (memory.width, self.dim))

    def build(self, b):
        import torch

        def forward(m, x, state):  # (B, T, d) with the memory (B, M, d) in its first M tokens
            cache = state.get("kv")
            if cache is not None and m in cache:  # a decode step: the prompt held the image
                return x
            if cache is not None:
                cache[m] = True
            memory = state["memory"]
            mask = torch.zeros(x.shape[0], x.shape[1], 1, dtype=torch.bool, device=x.device)
            mask[:, : memory.shape[1]] = True
            return x.masked_scatter(mask.expand_as(x), memory)

        return b.part(forward)
