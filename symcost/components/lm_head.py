"""Language-model head: features -> vocabulary logits for every token.

`tied: true` reuses the token embedding's table as the weight (GPT-2): the FLOPs are
the same, the parameters are counted once, in the embedding.
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from ..cost import Cost
from .base import Component, Ctx, FieldError, Size


class LMHead(Component):
    kind = "lm_head"
    dim: Size
    vocab: Size
    tied: StrictBool = False
    bias: StrictBool = False

    def parts(self, ctx: Ctx):
        proj = ctx.linear(self.dim, self.vocab, self.bias)
        if self.tied:
            self._check_tie(ctx)
            shared = self.dim * self.vocab
            proj = proj + Cost(params=-shared, active_params=-shared)
        return {"proj": proj}

    def _check_tie(self, ctx: Ctx) -> None:
        if ctx.flow.embedding is None:
            raise FieldError("tied", "tied: true needs a token `embedding` earlier in the spec")
        vocab, dim = ctx.flow.embedding
        if sympy.simplify(vocab - self.vocab) != 0 or sympy.simplify(dim - self.dim) != 0:
            raise FieldError(
                "tied", f"tied to an embedding of {vocab} x {dim}, but this head is {self.vocab} x {self.dim}"
            )

    def out_width(self, flow):
        return self.vocab

    def build(self, b):
        from torch import nn

        proj = nn.Linear(b.int(self.dim), b.int(self.vocab), bias=self.bias)
        if self.tied:
            proj.weight = b.embedding.weight  # one Parameter, held twice: PyTorch counts it once
        return b.part(lambda m, x, state: m.proj(x), proj=proj)  # (B, T, dim) -> (B, T, vocab)
