"""Rotary position embedding (RoFormer, Su et al. 2021): no parameters.

Listed once, as Hugging Face models hold one `rotary_emb`: it computes the cos/sin tables,
and every attention layer after it rotates the first `dim` features of each query and key
head. That rotation is elementwise (0 FLOPs under pytorch); under `full` it is counted in
the attention layers, where it happens.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from ..checks import Check, divides
from ..cost import Cost
from ..symbols import ACT
from .parallel import REPLICATED
from .base import Component, Ctx, Flow, Size


class Rotary(Component):
    kind = "rotary"
    parallel = REPLICATED  # token-wise: whole on every tp rank
    # No weights. NB: under a fine-tune its tables are counted as kept, as in full training; where no
    # attention layer rotates a query or key that needs a gradient (every attention frozen and nothing
    # before it training), PyTorch keeps none: an over-count of seq_len x dim activation values (#35)
    tunable = True
    dim: Size  # rotated features per head (the head dim, or a part of it)
    base: int = Field(10000, gt=0)  # theta; changes values, not counts

    def parts(self, ctx: Ctx):
        return {}

    def in_width(self):
        return None  # `dim` is per head, not the stream width

    def after(self, flow: Flow) -> Flow:
        return replace(flow, rotary=self.dim)

    def checks(self, ctx):
        yield from super().checks(ctx)
        yield Check("dim", divides(2, self.dim), "rotary dim must be even, got {}", (self.dim,))

    def saved(self, ctx: Ctx):
        # the cos and sin tables (seq_len x dim/2 each), kept once by the rotations of every attention layer after
        return Cost(saved=ctx.seq_len * self.dim * ACT)

    def build(self, b):
        import torch

        half = b.int(self.dim) // 2
        base = self.base

        def forward(m, x, state):
            # angle[t, i] = t / base^(i/half); an outer product is elementwise (torch.outer -> mul)
            inv_freq = base ** -(torch.arange(half, device=x.device, dtype=torch.float32) / half)
            offset = state.get("offset", 0)  # a decode step continues the positions
            positions = torch.arange(offset, offset + x.shape[1], device=x.device, dtype=torch.float32)
            angle = torch.outer(positions, inv_freq)
            # (T, dim/2) each, computed in fp32 and cast once to the stream's dtype, as Hugging Face does
            dtype = x.dtype if x.is_floating_point() else torch.float32
            state["rotary"] = (angle.cos().to(dtype), angle.sin().to(dtype))
            return x

        return b.part(forward)


def apply(t, state):
    """Rotate the first features of each head of t: (B, H, T, head_dim), pairwise (i, i + half)."""
    import torch

    cos, sin = state["rotary"]
    half = cos.shape[-1]
    x1, x2, rest = t[..., :half], t[..., half : 2 * half], t[..., 2 * half :]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)
