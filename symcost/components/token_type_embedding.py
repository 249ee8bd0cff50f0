"""Token-type (segment) embedding, as in BERT: a `types` x dim table whose row for each
token's segment is added to the stream. Parameters without arithmetic; the reference
adds the row of segment 0 to every token (the counts do not depend on which row)."""

from __future__ import annotations

from .. import ops
from ..cost import Cost
from .parallel import REPLICATED
from .base import Component, Ctx, Size


class TokenTypeEmbedding(Component):
    kind = "token_type_embedding"
    parallel = REPLICATED  # token-wise: whole on every tp rank
    types: Size  # rows: segment ids (2 in BERT)
    dim: Size

    def parts(self, ctx: Ctx):
        return {"table": ops.lookup(self.types, self.dim) + ctx.elementwise(ctx.tokens * self.dim, "position_add")}

    def saved(self, ctx: Ctx):
        return Cost(saved=8 * ctx.tokens)  # the int64 type ids

    def build(self, b):
        import torch
        from torch import nn

        def forward(m, x, state):  # x: (B, T, dim) + table[0]
            return x + m.table(torch.zeros(x.shape[:2], dtype=torch.long, device=x.device))

        return b.part(forward, table=nn.Embedding(b.int(self.types), b.int(self.dim)))
