"""Language-model head: features -> vocabulary logits for every token.

`tied: true` reuses the token embedding's table as the weight (GPT-2): the FLOPs are
the same, the parameters are counted once, in the embedding.
"""

from __future__ import annotations

from pydantic import StrictBool

from ..cost import Cost
from .parallel import TP, Rule
from .base import Component, Ctx, FieldError, Size
from .embedding import check_same_table


class LMHead(Component):
    kind = "lm_head"
    holds_logits = True
    tunable = True
    parallel = Rule("vocab_out", lambda c: {"vocab": c.vocab / TP}, lambda c: (("vocab", c.vocab),),
                    torch=(("proj", "colwise"),))
    dim: Size
    vocab: Size
    tied: StrictBool = False
    bias: StrictBool = False

    def parts(self, ctx: Ctx):
        proj = ctx.linear(self.dim, self.vocab, self.bias, name=self.kind)
        if self.tied:
            check_same_table(ctx, self.vocab, self.dim, "tied")
            if ctx.tune is not None and ctx.tune.frozen != ctx.tune.finetune.tuning("embedding").frozen:
                raise FieldError("tied", "the head's weight is the embedding's table: list both or neither in "
                                 "finetune.trainable")
            shared = self.dim * self.vocab
            proj = proj + Cost(params=-shared, active_params=-shared, frozen=-shared if ctx.frozen else 0)
        return {"proj": proj}

    @classmethod
    def target(cls, module: str) -> str:
        return cls.kind  # one linear, named by the layer (peft's `lm_head`)

    def saved(self, ctx: Ctx):
        # its input, and the loss's: cross-entropy over fp32 logits (as Hugging Face computes it)
        # keeps the fp32 log-probabilities, the int64 labels and an fp32 count of them
        return Cost(saved=ctx.linear_saved(self.dim, (self.kind,)) + ctx.tokens * (4 * self.vocab + 8) + 4)

    def out_width(self, flow):
        return self.vocab

    def build(self, b):
        from torch import nn

        proj = nn.Linear(b.int(self.dim), b.int(self.vocab), bias=self.bias)
        if self.tied:
            proj.weight = b.embedding.weight  # one Parameter, held twice: PyTorch counts it once
        return b.part(lambda m, x, state: m.proj(x), proj=proj)  # (B, T, dim) -> (B, T, vocab)
