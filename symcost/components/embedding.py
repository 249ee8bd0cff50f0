"""Token embedding: a vocab x dim table read by index — parameters, but no arithmetic."""

from __future__ import annotations

from dataclasses import replace

from .. import ops
from .base import Component, Ctx, Flow, Size


class Embedding(Component):
    kind = "embedding"
    vocab: Size  # rows: one per token id
    dim: Size  # features per token

    def parts(self, ctx: Ctx):
        return {"table": ops.lookup(self.vocab, self.dim)}

    def in_width(self):
        return None  # reads token ids, not features

    def after(self, flow: Flow) -> Flow:
        return replace(flow, grad=True, width=self.dim, embedding=(self.vocab, self.dim))

    def build(self, b):
        from torch import nn

        b.embedding = nn.Embedding(b.int(self.vocab), b.int(self.dim))
        return b.part(lambda m, ids, state: m.table(ids), table=b.embedding)  # (B, T) -> (B, T, dim)
