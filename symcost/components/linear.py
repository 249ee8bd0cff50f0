"""A plain linear layer from `dim` to `out` features per token (no residual).

`rank: r` factorises it (low-rank, as in ALBERT's embedding factorisation or LoRA's
update): dim -> r -> out, so dim·r + r·out parameters instead of dim·out, and the same
ratio of FLOPs — the simplest trade of parameters and computation by decomposition.

The same factorised pair, added to another layer's projection, is Zamba2's per-use adapter (`adapter_rank` on
attention and mlp): `adapter` here is its cost, `adapter_module` its build.
"""

from __future__ import annotations

import sympy
from pydantic import StrictBool

from ..checks import Check
from ..cost import Cost
from ..symbols import ACT
from .base import Component, Ctx, Size


class Linear(Component):
    kind = "linear"
    tunable = True
    dim: Size  # input features
    out: Size  # output features
    bias: StrictBool = False  # on the output projection
    rank: Size | None = None  # factorise through this many features

    def parts(self, ctx: Ctx):
        if self.rank is None:
            return {"proj": ctx.linear(self.dim, self.out, self.bias, name=self.kind)}
        return {
            "down": ctx.linear(self.dim, self.rank, False, name=self.kind),  # (T, dim) -> (T, r)
            "up": ctx.linear(self.rank, self.out, self.bias, input_grad=ctx.grad_after(self.kind), name=self.kind),
        }

    @classmethod
    def target(cls, module: str) -> str:
        return cls.kind  # its linear (or both halves of a factorised one), named by the layer

    def saved(self, ctx: Ctx):
        if self.rank is None:
            return Cost(saved=ctx.linear_saved(self.dim, (self.kind,)))
        up_input = ctx.elements(self.rank) * ACT  # what `up` keeps
        return Cost(saved=ctx.linear_saved(self.dim, (self.kind,)) + ctx.linear_saved(self.rank, (self.kind,), stored=up_input,
                                                                                 input_grad=ctx.grad_after(self.kind)))

    def out_width(self, flow):
        return self.out

    def build(self, b):
        from torch import nn

        d, out = b.int(self.dim), b.int(self.out)
        if self.rank is None:
            return b.part(lambda m, x, state: m.proj(x), proj=nn.Linear(d, out, bias=self.bias))
        r = b.int(self.rank)
        return b.part(
            lambda m, x, state: m.up(m.down(x)),
            down=nn.Linear(d, r, bias=False),
            up=nn.Linear(r, out, bias=self.bias),
        )


ADAPTER_TP = "a per-use adapter (adapter_rank) has no tensor-parallel rule here"


def adapter(ctx: Ctx, dim, rank, width) -> Cost:
    """A low-rank adapter added to a projection (Zamba2's): dim -> rank -> width, no biases; the second
    linear's input needs a gradient (the first's weights train)."""
    return ctx.linear(dim, rank, False) + ctx.linear(rank, width, False, input_grad=True)


def adapter_checks(c, ctx: Ctx):
    """A layer with adapters: not under a fine-tune (whose own adapters are another rule)."""
    if c.adapter_rank is not None and ctx.tune is not None:
        yield Check("adapter_rank", sympy.false, "a fine-tune of a layer with its own per-use adapters is not "
                    "modelled")


def adapter_module(d: int, r: int, width: int):
    from torch import nn

    return nn.Sequential(nn.Linear(d, r, bias=False), nn.Linear(r, width, bias=False))
