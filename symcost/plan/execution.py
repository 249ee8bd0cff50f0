"""The execution: how a model is run on the cluster (parallel sizes, optimizer sharding, the
pipeline schedule, recomputation, dtypes) — kept apart from the model (a spec) and the system
(hardware), as Calculon does.

Every parallel size is a symbol in the plan's formulas (`tp`, `pp`, `dp`, `ep`, `cp`, `v` for
virtual stages, `micro_batch`, `microbatches`), so a formula reads as the rule it states.

Conventions, written down once:
- tp: Megatron-LM tensor parallelism (Shoeybi et al. 2019): attention split by heads, the MLP
  by its hidden size (column- then row-parallel), embedding and LM head by vocabulary rows.
- sequence_parallel: Korthikanti et al. 2022: the layers between the tensor-parallel regions
  (norms, residual adds) split by sequence over the tp ranks; each all-reduce becomes an
  all-gather and a reduce-scatter.
- cp: context parallelism (ring attention, Liu et al. 2023, as Megatron-Core runs it): the
  sequence split over cp ranks; attention passes keys and values round the ring.
- ep: expert parallelism (GShard, Lepikhin et al. 2020): the routed experts split over ep ranks
  drawn from the data-parallel ranks (ep divides dp x cp); each expert's matrices are split by
  tp as the dense MLP's are (Megatron-Core's default expert tensor parallel size).
- zero: ZeRO stages (Rajbhandari et al. 2020): 1 shards optimizer states and master weights
  over the data-parallel ranks (Megatron's distributed optimizer is this), 2 the gradients too,
  3 the weights too (PyTorch FSDP's full shard).
- pipeline: 1F1B (Narayanan et al. 2021), interleaved with v virtual stages per rank when v > 1;
  or ZB-H1, DualPipe, DualPipeV (`schedule`; schedule.py states each).
- offload: DeepSpeed's ZeRO-Offload and ZeRO-Infinity (Ren et al. 2021; Rajbhandari et al. 2021): `optimizer`
  keeps the rank's optimizer states, master weights and gradients in host memory, the gradients in fp32 (its CPU
  Adam steps on them; DeepSpeed's estimators count 16 bytes a parameter), each step the rank's gradient shard
  copied out and its updated weights copied back; `all` (ZeRO-3 only) the rank's weight shard too, copied in for
  each micro-batch's forward and backward.
- vocab_multiple: Megatron-LM pads the vocabulary to ceil(V / (m x tp)) x m x tp rows (its
  `--make-vocab-size-divisible-by m`, default 128): each tp rank holds an equal shard of the padded
  table and head, and computes the padded logits too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

import sympy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .. import symbols
from ..errors import SpecError
from ..limits import MAX_LITERAL, finite, whole
from ..precision import ATTENTION, OFFLOADS, SCHEDULES, Precision, recompute_setting

SIZES = ("tp", "pp", "dp", "ep", "cp")
TP, PP, DP, EP, CP = (symbols.dim(n) for n in SIZES)
V = symbols.dim("v")  # virtual pipeline stages per rank
MB = symbols.dim("micro_batch")  # sequences per micro-batch
M = symbols.dim("microbatches")  # micro-batches per step on each data-parallel rank
RESERVED = (*SIZES, "v", "micro_batch", "microbatches")
ONE = sympy.Integer(1)


MAX_GPUS = 10**7  # a parallel size, or GPUs in all: far past any cluster, and every product stays exact
# A count of ranks or sequences: an integer (not True), positive, bounded.
Count = Annotated[int, Field(strict=True, ge=1, le=MAX_GPUS)]


class Execution(BaseModel):
    """How the model runs. `global_batch` is sequences per optimizer step (default: one
    micro-batch per data-parallel rank); gradient accumulation follows from it."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, strict=True)
    tp: Count = 1
    pp: Count = 1
    dp: Count = 1
    ep: Count = 1
    cp: Count = 1
    sequence_parallel: bool = False
    zero: Literal[0, 1, 2, 3] = 0
    micro_batch: Count = 1
    global_batch: Count | None = None
    virtual_stages: Count = 1
    schedule: Literal[SCHEDULES] = "1f1b"
    # layers of the main repeat on the first and last pipeline stages, when not an even share (Megatron-Core's
    # decoder_first/last_pipeline_num_layers; Llama 3 405B ran 7 + 14 x 8 + 7): the middle stages split the rest
    first_stage_layers: Count | None = None
    last_stage_layers: Count | None = None
    # or every stage's layers of the main repeat, first to last (Megatron-Core's pipeline layout; BLOOM ran 70
    # layers over 12 stages): pp is its length
    stage_layers: tuple[Count, ...] | None = None
    # Megatron-LM's --make-vocab-size-divisible-by (its default 128): the token table and LM head padded to a
    # multiple of this x tp rows; unset, tp must divide the vocabulary
    vocab_multiple: Count | None = None
    # none, selective (attention's core), full (each pass of the main repeat), or a comma list of parts to
    # recompute (precision.PARTS: attention's core, the activations, and norm, mlp and moe layers each checkpointed
    # whole)
    recompute: str = "none"
    offload: Literal[OFFLOADS] = "none"
    attention: Literal[ATTENTION] = "flash"
    optimizer: str = "adam"
    precision: Precision = Precision()

    @field_validator("recompute")
    @classmethod
    def _recompute(cls, value: str) -> str:
        try:
            return recompute_setting(value)
        except SpecError as e:
            raise ValueError(str(e).split(": ", 1)[1]) from None

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    @property
    def sequences(self) -> int:
        return self.global_batch if self.global_batch is not None else self.micro_batch * self.dp

    @property
    def microbatches(self) -> int:
        """Micro-batches each data-parallel rank runs per step (gradient accumulation steps)."""
        return self.sequences // (self.micro_batch * self.dp)

    @property
    def uneven(self) -> bool:
        return self.first_stage_layers is not None or self.last_stage_layers is not None or self.listed

    @property
    def listed(self) -> bool:
        return self.stage_layers is not None

    def values(self) -> dict:
        """The execution's symbols at this execution's sizes."""
        import sympy

        return {s: sympy.Integer(n) for s, n in ((TP, self.tp), (PP, self.pp), (DP, self.dp), (EP, self.ep),
                                                 (CP, self.cp), (V, self.virtual_stages), (MB, self.micro_batch),
                                                 (M, self.microbatches))}

    def problems(self):
        """What is wrong with the execution on its own (the model's constraints are checked by the plan)."""
        if self.sequences % (self.micro_batch * self.dp):
            yield "global_batch", (f"{self.sequences} sequences do not split into micro-batches of {self.micro_batch} "
                                   f"on {self.dp} data-parallel ranks")
        if self.virtual_stages > 1 and self.pp == 1:
            yield "virtual_stages", "virtual stages interleave a pipeline: give pp > 1"
        if self.virtual_stages > 1 and self.microbatches % self.pp:
            yield "virtual_stages", (f"the interleaved schedule needs micro-batches per step ({self.microbatches}) "
                                     f"to be a multiple of pp ({self.pp})")
        if (self.dp * self.cp) % self.ep:
            yield "ep", f"ep {self.ep} must divide dp x cp = {self.dp * self.cp} (experts are spread over data-parallel ranks)"
        if self.listed and (self.first_stage_layers is not None or self.last_stage_layers is not None):
            yield "stage_layers", "give every stage's layers or the first and last stages', not both"
        elif self.listed and len(self.stage_layers) != self.pp:
            yield "stage_layers", f"{len(self.stage_layers)} stages listed for pp {self.pp}: list one count a stage"
        elif self.uneven and self.pp == 1:
            yield "stage_layers" if self.listed else "first_stage_layers", ("stage layer counts split a pipeline: "
                                                                            "give pp > 1")
        if self.uneven and self.virtual_stages > 1:
            yield "first_stage_layers", "uneven stages are planned for the 1F1B schedule only (virtual stages 1)"
        yield from self._schedule_problems()
        if self.sequence_parallel and self.tp == 1:
            yield "sequence_parallel", "sequence parallelism splits over the tp ranks: give tp > 1"
        if self.offload != "none" and self.zero == 0:
            yield "offload", "offloading moves each rank's ZeRO shard to the host: give zero 1, 2 or 3"
        elif self.offload == "all" and self.zero != 3:
            yield "offload", "offloading the weights (all) moves ZeRO-3's weight shards: give zero 3"

    def _schedule_problems(self):
        """What the schedule needs: a pipeline, 1F1B's even chunks, and the micro-batches its warm-up fills."""
        if self.schedule == "1f1b":
            return
        name, m = self.schedule, self.microbatches
        if self.pp == 1:
            yield "schedule", f"{name} orders a pipeline's stages: give pp > 1"
        elif self.virtual_stages > 1:
            yield "schedule", f"{name} is not interleaved: give virtual stages 1"
        elif self.uneven and not (name == "zb-h1" or name == "dualpipe" and self.listed):
            yield "schedule", (f"{name} is planned with an even split of the layers"
                               + (" or every stage's (stage_layers)" if name == "dualpipe" else ""))
        elif name == "zb-h1" and m < self.pp:
            yield "schedule", f"zb-h1 needs at least pp = {self.pp} micro-batches per step; {m} given"
        elif name == "dualpipe" and self.pp % 2:
            yield "schedule", f"dualpipe pairs the pipeline's ranks from both ends: pp {self.pp} must be even"
        elif name != "zb-h1" and (m < 2 * self.pp or (name == "dualpipe" and m % 2)):
            yield "schedule", (f"{name} needs at least 2 x pp = {2 * self.pp} micro-batches per step"
                               + (", an even number" if name == "dualpipe" else "") + f"; {m} given")


def check_gpus(gpus) -> None:
    if not (whole(gpus) and 1 <= gpus <= MAX_GPUS):
        raise SpecError(f"gpus {gpus!r}: expected a positive integer up to {MAX_GPUS:,}", param="gpus")


def execution_of(chosen: Mapping, gpus: int | None, precision: Precision) -> Execution:
    """An Execution from keyword settings; dp follows from `gpus` when not given, and a `gpus`
    that is not tp x pp x dp x cp is refused."""
    chosen = dict(chosen)
    if isinstance(listed := chosen.get("stage_layers"), list):
        chosen["stage_layers"] = listed = tuple(listed)
    if isinstance(listed, tuple) and chosen.get("pp") is None:
        chosen["pp"] = len(listed)
    if chosen.get("pp") is None:
        chosen.pop("pp", None)
    if gpus is not None:
        check_gpus(gpus)
        model = 1
        for k in ("tp", "pp", "cp"):
            model *= chosen.get(k, 1) if isinstance(chosen.get(k, 1), int) else 1
        if "dp" not in chosen:
            if gpus % model:
                raise SpecError(f"gpus {gpus} is not a multiple of tp x pp x cp = {model}")
            chosen["dp"] = gpus // model
    try:
        ex = Execution(precision=precision, **chosen)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"]))
        raise SpecError(f"{where} {err.get('input')!r}: {err['msg']}", param=where) from None
    if gpus is not None and ex.gpus != gpus:
        raise SpecError(f"gpus {gpus} != tp x pp x dp x cp = {ex.tp} x {ex.pp} x {ex.dp} x {ex.cp} = {ex.gpus}")
    return ex


MFU_DEFAULT = 0.4
MFU_SOURCE = ("assumed; Llama 3 405B reports 38-43% BF16 MFU on 8k-16k H100s (Llama Team, "
              "'The Llama 3 Herd of Models', 2024, Table 4)")


MAX_PRICE = 1e6  # dollars per GPU-hour
MAX_TOKENS_PER_SECOND = 1e15  # a measured throughput of the whole run


MFU_CONVENTIONS = ("pytorch", "causal", "6nd")
MAX_IMBALANCE = 1000  # the busiest rank's routed tokens over the mean: at most ep, and ep is far below this


@dataclass(frozen=True)
class Run:
    """What a plan assumes of the run beside its layout (the Execution): the MFU its step time
    follows from, the share of communication hidden behind compute, tokens to train on, a price
    per GPU-hour, a measured throughput to report MFU from, and the share of memory kept free.
    Time and cost are estimates that rest on these; the plan's notes say so."""

    mfu: float = MFU_DEFAULT
    overlap: float = 0.0
    tokens: int | None = None
    price: float | None = None  # dollars per GPU-hour
    tokens_per_second: float | None = None  # measured
    # the share of each GPU's memory a plan keeps free for what its total leaves out (the logits'
    # transient, communication buffers, fragmentation): it fits in the rest
    headroom: float = 0.0
    # the FLOPs MFU divides by the peak, as a paper counts them: the derivation's (pytorch: causal
    # attention in full), causal attention's kept scores only (the `kernel` convention), or 6ND
    # (6 x active parameters x tokens: Kaplan et al. 2020's count, which Llama 3's MFU uses)
    flop_convention: str = "pytorch"
    # the share of the run's wall-clock spent on steps that count, an input (restarts, checkpoints and lost
    # work take the rest: Llama 3 reports over 90 % effective training time): training time and GPU-hours
    # are the steps' time over it
    goodput: float = 1.0
    # the busiest expert-parallel rank's routed tokens over the mean, an input (1: balanced routing): its routed
    # experts' FLOPs and its all-to-all time are stretched by it in the time estimates
    ep_imbalance: float = 1.0

    def __post_init__(self) -> None:
        if not (finite(self.mfu) and 0 < self.mfu <= 1):
            raise SpecError(f"mfu {self.mfu!r}: expected a number in (0, 1]", param="mfu")
        if not (finite(self.overlap) and 0 <= self.overlap <= 1):
            raise SpecError(f"overlap {self.overlap!r}: expected a number in [0, 1]", param="overlap")
        if not (finite(self.goodput) and 0 < self.goodput <= 1):
            raise SpecError(f"goodput {self.goodput!r}: expected the share of the run's time spent on steps that "
                            "count, a number in (0, 1]", param="goodput")
        if not (finite(self.ep_imbalance) and 1 <= self.ep_imbalance <= MAX_IMBALANCE):
            raise SpecError(f"ep_imbalance {self.ep_imbalance!r}: expected the busiest expert-parallel rank's routed "
                            f"tokens over the mean, a number in [1, {MAX_IMBALANCE}]", param="ep_imbalance")
        if self.flop_convention not in MFU_CONVENTIONS:
            raise SpecError(f"flop_convention {self.flop_convention!r}: expected one of {', '.join(MFU_CONVENTIONS)}",
                            param="flop_convention")
        if not (finite(self.headroom) and 0 <= self.headroom < 1):
            raise SpecError(f"headroom {self.headroom!r}: expected the share of memory kept free, a number in [0, 1)",
                            param="headroom")
        t = self.tokens
        if t is not None and not (whole(t) and 1 <= t < MAX_LITERAL):
            raise SpecError(f"tokens {t!r}: expected a whole number of tokens below 10^18, e.g. 2e12", param="tokens")
        for name, most in (("price", MAX_PRICE), ("tokens_per_second", MAX_TOKENS_PER_SECOND)):
            x = getattr(self, name)
            if x is not None and not (finite(x) and 0 < x <= most):
                raise SpecError(f"{name} {x!r}: expected a finite positive number up to {most:g}", param=name)

    def usable(self, hardware) -> int:
        """Bytes of a GPU's memory a plan may fill: all but the headroom."""
        return hardware.memory_bytes - math.ceil(hardware.memory_bytes * self.headroom)
