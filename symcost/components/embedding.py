"""Token embedding: a vocab x dim table read by index — parameters, but no arithmetic.

`shared: true` reads the table of the embedding before it (T5 and the original
Transformer share one table between encoder and decoder): no parameters of its own.
"""

from __future__ import annotations


import sympy
from pydantic import StrictBool

from .. import ops
from ..cost import Cost
from .parallel import TP, Rule
from .base import Component, Ctx, FieldError, Flow, Size, fresh


class Embedding(Component):
    kind = "embedding"
    parallel = Rule("vocab_in", lambda c: {"vocab": c.vocab / TP}, lambda c: (("vocab", c.vocab),),
                    torch=(("table", "vocab"),))
    tunable = True
    vocab: Size  # rows: one per token id
    dim: Size  # features per token
    shared: StrictBool = False

    def parts(self, ctx: Ctx):
        if self.shared:
            check_same_table(ctx, self.vocab, self.dim, "shared")
            return {"table": Cost()}
        return {"table": ctx.held(ops.lookup(self.vocab, self.dim))}

    def in_width(self):
        return None  # reads token ids, not features

    def saved(self, ctx: Ctx):
        # the int64 ids, to scatter the gradient into the table (none to scatter when it is frozen)
        return Cost(saved=0 if ctx.frozen else 8 * ctx.tokens)

    def build(self, b):
        from torch import nn

        table = nn.Embedding(b.int(self.vocab), b.int(self.dim))
        if self.shared:
            table.weight = b.embedding.weight  # one Parameter, held twice: PyTorch counts it once
        else:
            b.embedding = table
        if not b.carries:
            return b.part(lambda m, ids, state: m.table(ids), table=table)  # (B, T) -> (B, T, dim)

        def forward(m, ids, state):  # a later concat_embedding reads a copy, as transformers' Zamba2 clones it
            out = m.table(ids)
            state["embedded"] = out.clone()
            return out

        return b.part(forward, table=table)

    def after(self, flow: Flow) -> Flow:
        table = flow.embedding if self.shared else (self.vocab, self.dim)
        return fresh(flow, grad=True, width=self.dim, embedding=table)


def check_same_table(ctx: Ctx, vocab, dim, field: str) -> None:
    """A shared or tied table must exist before and have these sizes."""
    if ctx.flow.embedding is None:
        raise FieldError(field, f"{field}: true needs a token `embedding` earlier in the spec")
    have_vocab, have_dim = ctx.flow.embedding
    if sympy.simplify(have_vocab - vocab) != 0 or sympy.simplify(have_dim - dim) != 0:
        raise FieldError(field, f"the embedding before is {have_vocab} x {have_dim}, but this is {vocab} x {dim}")
