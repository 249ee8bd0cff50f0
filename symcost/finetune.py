"""Fine-tuning: which weights train, low-rank adapters on named linears, a quantized frozen base.

A spec's `finetune:` block (or `--finetune` on the command line) says how a model is
trained after pretraining:

- `full`: every weight trains (what symcost assumes without the block).
- `freeze`: only the component kinds listed in `trainable` train (say `[lm_head]`).
- `lora` (Hu et al. 2021): every base weight is frozen; each targeted linear d_in -> d_out
  gains A (r x d_in) and B (d_out x r), r·(d_in + d_out) trainable parameters, its output
  W x + (alpha/r)·B A x. `dora` (Liu et al. 2024) adds a magnitude vector of d_out per target.
  `qlora` (Dettmers et al. 2023) is LoRA over a base whose targeted linears are stored in 4
  bits (NF4 by default, in blocks of 64 with an absmax constant each).

What freezing changes, exactly as PyTorch's autograd does it: a frozen linear computes no
weight gradient (its backward is one matmul, for its input, or none when nothing before it
needs a gradient) and keeps nothing for backward (the weight gradient is what needed its
input); a stream needs a gradient only from the first layer that holds a trainable weight.
An adapter's A keeps its input, B keeps A's output (r values a token); dropout on the
adapter path (`dropout: p`) keeps its dropped copy and one-byte mask instead of the input.

Targets are part names (`q_proj`, `k_proj`, `v_proj`, `o_proj`, `up_proj`, `gate_proj`,
`down_proj`), a component kind whose one linear is meant (`lm_head`, `linear`), or
`all-linear`: every linear but the LM head, as peft's `target_modules="all-linear"` picks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sympy
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from . import ops
from .components import dropout
from .components.base import Rate, Size
from .cost import ZERO, Cost
from .symbols import ACT

METHODS = ("full", "freeze", "lora", "dora", "qlora")
ADAPTED = ("lora", "dora", "qlora")
ALL_LINEAR = "all-linear"
QUANT = ("nf4", "fp4")


class Finetune(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True)
    method: Literal["full", "freeze", "lora", "dora", "qlora"] = "lora"
    rank: Size | None = None  # the adapters' r (lora, dora, qlora); a dim name lets `solve` find it
    alpha: float | int | None = None  # scales the update (alpha / r): values, not counts
    dropout: Rate | None = None  # on each adapter's input
    targets: Literal["all-linear"] | list[str] = ALL_LINEAR
    trainable: list[str] = Field(default_factory=list)  # component kinds whose own weights train as well
    quant: Literal["nf4", "fp4"] | None = None  # qlora's storage of the frozen targeted linears (default nf4)
    double_quant: StrictBool = True  # qlora: the absmax constants themselves in 8 bits (QLoRA's default)
    block: int = Field(64, gt=0)  # values per absmax constant (bitsandbytes' default blocksize)

    @field_validator("targets", "trainable")
    @classmethod
    def _named(cls, value):
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("list each name once, at least one")
        return value

    def model_post_init(self, _context) -> None:
        adapted = self.method in ADAPTED
        if adapted and self.rank is None:
            raise ValueError(f"{self.method} needs `rank` (the adapters' r: 8, 16, 64 …)")
        if not adapted:
            for name in ("rank", "dropout", "quant"):
                if getattr(self, name) is not None:
                    raise ValueError(f"`{name}` belongs to lora, dora and qlora, not to method {self.method}")
        if self.quant is not None and self.method != "qlora":
            raise ValueError("`quant` stores a frozen base in 4 bits: it needs method qlora")

    @property
    def adapted(self) -> bool:
        return self.method in ADAPTED

    @property
    def storage(self) -> str | None:
        """How the frozen targeted linears are stored: nf4 or fp4 under qlora, else None (the weights' dtype)."""
        return (self.quant or "nf4") if self.method == "qlora" else None

    def tuning(self, kind: str) -> Tuning | None:
        """What this fine-tune does to a component of `kind`; None under full training."""
        if self.method == "full":
            return None
        return Tuning(self, frozen=kind not in self.trainable, kind=kind)


@dataclass(frozen=True)
class Tuning:
    """One component's share of a fine-tune: whether its own weights are frozen, and which of
    its linears (by part name, or the component's kind for its one linear) carry an adapter."""

    finetune: Finetune
    frozen: bool
    kind: str

    def adapts(self, name: str | None) -> bool:
        if name is None or not self.finetune.adapted:
            return False
        targets = self.finetune.targets
        if targets == ALL_LINEAR:
            return name != "lm_head"
        return name in targets

    def adapter(self, ctx, d_in, d_out, tokens, input_grad: bool) -> Cost:
        """LoRA's A and B on one linear over `tokens` rows (DoRA adds its magnitude vector).

        Forward: A then B (two matmuls), scaled and added (elementwise). Backward: both weight
        gradients; B's input gradient always (A trains), A's only when its input needs one."""
        r, conv = self.finetune.rank, ctx.convention
        a = ops.matmul(conv, 1, tokens, d_in, r, grad_a=input_grad, grad_b=True)
        b = ops.matmul(conv, 1, tokens, r, d_out, grad_a=True, grad_b=True)
        params = r * (d_in + d_out) + (d_out if self.finetune.method == "dora" else 0)
        return Cost(params=params, active_params=params) + a + b + ctx.elementwise(2 * tokens * d_out, "residual")

    def adapter_saved(self, rows, d_in) -> sympy.Expr:
        """What one adapter keeps besides an undropped input (kept once, by whoever reads it
        first): with dropout, its dropped copy and one-byte mask; and A's output, which B reads."""
        p = self.finetune.dropout
        return (ZERO if p is None else rows * d_in * (ACT + 1) * dropout.on(p)) + rows * self.finetune.rank * ACT

    def reads_undropped(self) -> sympy.Expr:
        """1 when adapters read their input itself (no dropout, or p = 0: peft's identity), else 0."""
        p = self.finetune.dropout
        return sympy.Integer(1) if p is None else 1 - dropout.on(p)
