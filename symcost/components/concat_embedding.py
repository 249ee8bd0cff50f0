"""The token embedding's output appended to the stream: (B, T, dim) -> (B, T, dim + the embedding's width).

Zamba2's shared transformer blocks read [h, e], the stream beside the embedding the model started from
(Glorioso et al. 2024, the Zamba2 report, Fig. 2; transformers keeps a clone of it for every hybrid layer).
A concatenation: no parameters, no FLOPs, nothing kept for backward (its backward slices the gradient); the
layers after it read a new tensor, which the next one to need it keeps.
"""

from __future__ import annotations

from ..cost import Cost
from .base import Component, Ctx, FieldError, Flow, Size, fresh


class ConcatEmbedding(Component):
    kind = "concat_embedding"
    dim: Size  # the stream's width before: the result is dim + the embedding's

    def parts(self, ctx: Ctx):
        self.appended(ctx.flow)
        return {}

    def saved(self, ctx: Ctx):
        return Cost()

    @staticmethod
    def appended(flow: Flow):
        """The width the embedding adds."""
        if flow.embedding is None:
            raise FieldError(None, "concat_embedding appends the token embedding's output: put an `embedding` "
                                   "earlier in the spec")
        return flow.embedding[1]

    def after(self, flow: Flow) -> Flow:
        return fresh(flow, grad=True, width=self.dim + self.appended(flow))

    def build(self, b):
        import torch

        return b.part(lambda m, x, state: torch.cat([x, state["embedded"]], dim=-1))
