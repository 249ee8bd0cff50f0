"""T5's relative position bias (Raffel et al. 2020, Sec. 2.1): a table of `buckets` x
`heads` scalars, looked up by the bucketed distance between query and key and added to
every layer's attention scores in a stack. Parameters, no matmul: 0 FLOPs under pytorch.
NB: under `full` the adds into the scores are not counted (a lookup and an add per score
per layer; small next to the scores' own softmax)."""

from __future__ import annotations

from .. import ops
from ..cost import Cost
from .base import Component, Ctx, Size


class RelativePositionBias(Component):
    kind = "relative_position_bias"
    buckets: Size
    heads: Size

    def parts(self, ctx: Ctx):
        ctx.need_tokens()
        return {"table": ops.lookup(self.buckets, self.heads)}

    def in_width(self):
        return None

    def after(self, flow):
        return flow  # the stream passes by; the table's gradient arrives through the scores

    def saved(self, ctx: Ctx):
        return Cost(saved=8 * ctx.seq_len**2)  # the int64 bucket of each (query, key) pair

    def build(self, b):
        import torch
        from torch import nn

        def forward(m, x, state):  # bucket ids for (T, T) pairs -> (T, T, heads); bucketing is elementwise
            T = x.shape[1]
            state["position_bias"] = m.table(torch.zeros(T, T, dtype=torch.long, device=x.device))
            return x

        return b.part(forward, table=nn.Embedding(b.int(self.buckets), b.int(self.heads)))
