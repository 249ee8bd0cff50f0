"""Fine-tuning: which weights train, low-rank adapters on named linears, a quantized frozen base.

A spec's `finetune:` block (or `--finetune` on the command line) says how a model is
trained after pretraining:

- `full`: every weight trains (what symcost assumes without the block).
- `freeze`: only the component kinds listed in `trainable` train (say `[lm_head]`).
- `lora` (Hu et al. 2021): every base weight is frozen; each targeted linear d_in -> d_out
  gains A (r x d_in) and B (d_out x r), r·(d_in + d_out) trainable parameters, its output
  W x + (alpha/r)·B A x. `dora` (Liu et al. 2024) adds a magnitude vector of d_out per target.
  `qlora` (Dettmers et al. 2023) is LoRA over a base whose frozen linears but the output layer's
  are stored in 4 bits (NF4 by default, in blocks of 64 with an absmax constant each), as
  bitsandbytes' 4-bit loading stores them, or with `quant: int8` in 8 bits as its LLM.int8
  loading does (Dettmers et al. 2022: one byte a weight and an fp32 scale per output row; the
  outlier columns it multiplies in 16 bits on a GPU depend on the data and are not counted).

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

from dataclasses import dataclass, field, replace
from typing import Literal

import sympy
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from . import ops
from .components import REGISTRY, dropout
from .components.base import Rate, Size
from .cost import ZERO, Cost
from .symbols import ACT

METHODS = ("full", "freeze", "lora", "dora", "qlora")
ADAPTED = ("lora", "dora", "qlora")
ALL_LINEAR = "all-linear"
QUANT = ("nf4", "fp4", "int8")  # QLoRA's 4-bit formats (bitsandbytes' quant_type) and LLM.int8
COMPUTE = ("fp32", "bf16", "fp16")  # the dtype a 4-bit weight is dequantized to for its matmul
QUANTIZED_KINDS = ("attention", "mlp", "linear")  # whose linears QLoRA's 4-bit loading stores packed


class Finetune(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True)
    method: Literal[METHODS] = "lora"
    rank: Size | None = None  # the adapters' r (lora, dora, qlora); a dim name lets `solve` find it
    alpha: float | int | None = None  # scales the update (alpha / r): values, not counts
    dropout: Rate | None = None  # on each adapter's input
    targets: Literal["all-linear"] | list[str] = ALL_LINEAR
    trainable: list[str] = Field(default_factory=list)  # component kinds whose own weights train as well
    quant: Literal[QUANT] | None = None  # qlora's storage of the frozen linears (default nf4)
    double_quant: StrictBool = True  # qlora: the absmax constants themselves in 8 bits (QLoRA's default)
    block: int = Field(64, gt=0)  # values per absmax constant (bitsandbytes' default blocksize)
    # a 4-bit weight's matmul dtype (bnb_4bit_compute_dtype); default: the activations'. It sizes the
    # dequantized weight the peak allows for; counts and saved bytes do not change (bitsandbytes casts the
    # input to it and the output back, which autograd keeps nothing for)
    compute_dtype: Literal[COMPUTE] | None = None

    @field_validator("targets", "trainable")
    @classmethod
    def _named(cls, value, info):
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("list each name once")
        if info.field_name == "targets" and value == []:
            raise ValueError("name at least one linear, or all-linear")
        return value

    def model_post_init(self, _context) -> None:
        adapted = self.method in ADAPTED
        if self.method == "freeze" and not self.trainable:
            raise ValueError("freeze trains only the kinds in `trainable`: name at least one (say [lm_head])")
        if adapted and self.rank is None:
            raise ValueError(f"{self.method} needs `rank` (the adapters' r: 8, 16, 64 …)")
        if not adapted:
            for name in ("rank", "dropout", "quant"):
                if getattr(self, name) is not None:
                    raise ValueError(f"`{name}` belongs to lora, dora and qlora, not to method {self.method}")
        if self.quant is not None and self.method != "qlora":
            raise ValueError("`quant` stores a frozen base in 4 or 8 bits: it needs method qlora")
        if self.compute_dtype is not None and (self.method != "qlora" or self.quant == "int8"):
            raise ValueError("`compute_dtype` is a 4-bit base's matmul dtype: it needs method qlora with nf4 or fp4 "
                             "(LLM.int8 computes in its input's dtype)")
        if self.method == "qlora" and (packed := [k for k in self.trainable if k in QUANTIZED_KINDS]):
            raise ValueError(f"qlora stores the linears of {', '.join(packed)} in {self.bits} bits, and a "
                             f"{self.bits}-bit weight cannot train: leave them out of `trainable`")
        if self.method == "dora" and self.dropout is not None:
            raise ValueError("dora with dropout runs each base linear a second time in peft; symcost models dora "
                             "without dropout")

    def summary(self, trainable: int) -> str:
        """One line for a report: the method, and what it leaves training and storing."""
        if not self.adapted:
            what = f"only {', '.join(self.trainable)} train" if self.trainable else "every weight frozen"
        else:
            targets = self.targets if isinstance(self.targets, str) else ", ".join(self.targets)
            what = f"rank {self.rank} adapters on {targets}" + (f"; {', '.join(self.trainable)} train too"
                                                               if self.trainable else "")
        stored = ""
        if self.storage == "int8":
            stored = ("; the frozen linears but the LM head in INT8 (LLM.int8: an fp32 scale per output row; the "
                      "outlier columns a GPU multiplies in 16 bits are not counted)")
        elif self.storage is not None:
            stored = (f"; the frozen linears but the LM head in {self.storage.upper()} (blocks of {self.block}, "
                      + ("doubly quantized constants" if self.double_quant else "fp32 constants") + ")")
        return (f"fine-tune {self.method}: {what}{stored}; gradients and optimizer states for the {trainable:,} "
                "trainable parameters only")

    @property
    def adapted(self) -> bool:
        return self.method in ADAPTED

    @property
    def trains_all(self) -> bool:
        """Method full: every weight trains, as without the block."""
        return self.method == "full"

    @property
    def storage(self) -> str | None:
        """How the frozen linears but the LM head are stored: nf4, fp4 or int8 under qlora, else None (the
        weights' dtype)."""
        return (self.quant or QUANT[0]) if self.method == "qlora" else None

    @property
    def bits(self) -> int:
        return 8 if self.storage == "int8" else 4

    def tuning(self, kind: str, seen: list | None = None) -> Tuning | None:
        """What this fine-tune does to a component of `kind`; None under full training. `seen`
        collects (name, d_in, d_out, values stored quantized) of every linear the component names."""
        if self.trains_all:
            return None
        return Tuning(self, frozen=kind not in self.trainable, kind=kind, seen=[] if seen is None else seen)


@dataclass(frozen=True)
class Tuning:
    """One component's share of a fine-tune: whether its own weights are frozen, and which of
    its linears (by part name, or the component's kind for its one linear) carry an adapter."""

    finetune: Finetune
    frozen: bool
    kind: str
    seen: list = field(default_factory=list, compare=False)
    adapters: bool = True  # False: its linears take no adapter (a MoE's routed experts, see components/moe.py)

    def unadapted(self) -> Tuning:
        return replace(self, adapters=False)

    @property
    def output(self) -> bool:
        """Whether the component is the output layer (it makes the logits): `all-linear` leaves it
        out, as peft does, and bitsandbytes' 4-bit loading leaves it in 16 bits."""
        return REGISTRY[self.kind].holds_logits

    def adapts(self, name: str | None) -> bool:
        if name is None or not self.adapters or not self.finetune.adapted:
            return False
        targets = self.finetune.targets
        if targets == ALL_LINEAR:
            return not self.output
        return name in targets

    def packed(self, d_in, d_out) -> Cost:
        """A frozen linear's weight as QLoRA stores it: every linear but the output layer's (its
        bias stays 16-bit too)."""
        finetune = self.finetune
        if finetune.storage is None or self.output:
            return Cost()
        n = d_in * d_out
        stored = int8_bytes(d_in, d_out) if finetune.storage == "int8" else four_bit_bytes(n, finetune.block,
                                                                                            finetune.double_quant)
        return Cost(packed=n, packed_bytes=stored, active_packed=n, active_packed_bytes=stored)

    def adapter(self, ctx, d_in, d_out, tokens, input_grad: bool) -> Cost:
        """LoRA's A and B on one linear over `tokens` rows (DoRA adds its magnitude vector).

        Forward: A then B (two matmuls), scaled and added (elementwise). Backward: both weight
        gradients; B's input gradient always (A trains), A's only when its input needs one."""
        r, conv = self.finetune.rank, ctx.convention
        a = ops.matmul(conv, 1, tokens, d_in, r, grad_a=input_grad, grad_b=True)
        b = ops.matmul(conv, 1, tokens, r, d_out, grad_a=True, grad_b=True)
        cost = a + b + ctx.elementwise(2 * tokens * d_out, "residual")
        params = r * (d_in + d_out)
        if self.finetune.method == "dora":
            # peft's DoRA rebuilds B·A as B(A(I)) in every forward, for the column norms of W + BA
            # (detached: no backward), and a magnitude of d_out
            params += d_out
            cost += Cost(forward=conv.flops_per_mac * d_in * r * (d_in + d_out))
        return Cost(params=params, active_params=params) + cost

    def adapter_saved(self, rows, d_in, input_grad: bool) -> sympy.Expr:
        """What one adapter keeps besides an undropped input (kept once, by whoever reads it
        first): with dropout, its dropped copy (which A reads) and, when the input needs a gradient,
        the one-byte mask; and A's output, which B reads."""
        p = self.finetune.dropout
        dropped = ZERO if p is None else rows * d_in * (ACT + int(input_grad)) * dropout.on(p)
        return dropped + rows * self.finetune.rank * ACT

    def reads_undropped(self) -> sympy.Expr:
        """1 when adapters read their input itself (no dropout, or p = 0: peft's identity), else 0."""
        p = self.finetune.dropout
        return sympy.Integer(1) if p is None else 1 - dropout.on(p)


CODE = 16  # a 4-bit format's table of values (NF4's or FP4's), fp32, one per quantized weight
SECOND_BLOCK, SECOND_CODE = 256, 256  # double quantization: 8-bit absmax in blocks of 256, its 256-value fp32 table


def four_bit_bytes(n, block: int, double: bool) -> sympy.Expr:
    """Bytes bitsandbytes' quantize_4bit keeps for n weights: two values a byte; one absmax per
    block of `block` (fp32; or, doubly quantized, uint8 with an fp32 absmax per 256 of them, a
    256-entry fp32 code and an fp32 offset); and the format's 16-entry fp32 code."""
    blocks = sympy.ceiling(n / block)
    constants = blocks + 4 * (sympy.ceiling(blocks / SECOND_BLOCK) + SECOND_CODE + 1) if double else 4 * blocks
    return sympy.ceiling(n / 2) + constants + 4 * CODE


def int8_bytes(d_in, d_out) -> sympy.Expr:
    """Bytes bitsandbytes' Int8Params keeps for a d_out x d_in weight: one byte a value, and one fp32
    scale per output row (SCB); the outlier columns LLM.int8 multiplies in 16 bits are taken from the
    16-bit input at run time, not stored."""
    return d_in * d_out + 4 * d_out


@dataclass(frozen=True)
class RankFits:
    """The check that an adapter's rank is at most the width its linear reads (peft allows more
    than the output's width — Qwen2-MoE's one-output shared-expert gate takes r = 16 under
    all-linear — though B·A's rank cannot exceed min(d_in, d_out))."""

    rank: sympy.Expr
    name: str
    width: sympy.Expr

    def in_width(self):
        return None

    def checks(self, ctx):
        from .checks import Check

        yield Check("rank", self.rank <= self.width, f"rank {{}} exceeds {self.name}'s input width {{}}",
                    (self.rank, self.width))
