"""Learned absolute positions (GPT-2's wpe): a max_len x dim table added to the stream.

Its parameters depend on `max_len`, not on the sequence actually run; `seq_len` must not
exceed `max_len`.
"""

from __future__ import annotations

from .. import ops
from ..checks import Check
from ..cost import Cost
from .parallel import REPLICATED
from .base import Component, Ctx, Size


class PositionEmbedding(Component):
    kind = "position_embedding"
    parallel = REPLICATED  # token-wise: whole on every tp rank
    max_len: Size  # rows: positions the table can address
    dim: Size

    def parts(self, ctx: Ctx):
        return {"table": ops.lookup(self.max_len, self.dim) + ctx.elementwise(ctx.tokens * self.dim, "position_add")}

    def checks(self, ctx: Ctx):
        yield from super().checks(ctx)
        positions = ctx.context + ctx.seq_len
        yield Check("max_len", positions <= self.max_len, "seq_len {} exceeds max_len {}", (positions, self.max_len))

    def saved(self, ctx: Ctx):
        return Cost(saved=8 * ctx.seq_len)  # the int64 positions (one row of them, broadcast over the batch)

    def build(self, b):
        import torch
        from torch import nn

        def forward(m, x, state):  # x: (B, T, dim) + table[offset : offset + T]: (T, dim)
            offset = state.get("offset", 0)
            return x + m.table(torch.arange(offset, offset + x.shape[1], device=x.device))

        return b.part(forward, table=nn.Embedding(b.int(self.max_len), b.int(self.dim)))
