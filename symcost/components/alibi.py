"""ALiBi (Press et al. 2022, "Train Short, Test Long"): no position table and no rotation; each
head adds -slope·distance to its attention scores, with fixed slopes 2^(-8i/heads). No
parameters, and 0 FLOPs under pytorch: the bias is built elementwise, and BLOOM adds it inside
the score matmul (baddbmm, which FlopCounterMode counts as the matmul alone).
NB: under `full` the adds into the scores are not counted (one per score per layer), as for
T5's relative position bias."""

from __future__ import annotations

from ..cost import Cost
from .parallel import REPLICATED
from .base import Component, Ctx, Size


class ALiBi(Component):
    kind = "alibi"
    parallel = REPLICATED  # token-wise: whole on every tp rank
    heads: Size

    def parts(self, ctx: Ctx):
        ctx.need_tokens()
        return {}

    def in_width(self):
        return None

    def saved(self, ctx: Ctx):
        return Cost()  # built from constants: nothing to differentiate

    def build(self, b):
        import torch

        heads = b.int(self.heads)

        def forward(m, x, state):  # (heads, T, T): -slope_h * (i - j), for the attention layers after it
            T = x.shape[1]
            slopes = 2.0 ** (-8.0 * torch.arange(1, heads + 1, device=x.device) / heads)
            distance = torch.arange(T, device=x.device).unsqueeze(1) - torch.arange(T, device=x.device).unsqueeze(0)
            state["position_bias"] = -slopes.view(heads, 1, 1) * distance
            return x

        return b.part(forward)
