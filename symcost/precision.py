"""Bytes per value, optimizer states, recompute modes and pipeline schedules: the one table of each (light:
the CLI's choices come from here without importing sympy)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .errors import SpecError

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": Fraction(1, 2)}
OPTIMIZER_STATES = {"adam": 2, "adamw": 2, "momentum": 1, "sgd": 0, "none": 0}  # fp32 values per parameter
RECOMPUTE = ("none", "selective", "full")
# what a list of recomputed parts may name instead of a mode (`--recompute norm,mlp`): attention's core (what
# selective recomputes), the activation of every MLP and expert (act(gate) x up), and whole layers of the kinds
# that declare a `recompute_part` (components/base.py)
PARTS = ("attention", "activation", "norm", "mlp", "moe")
OFFLOADS = ("none", "optimizer", "all")  # what a training run keeps in host memory (plan/execution.py)
# how attention's core runs: eager keeps the n x n probabilities; sdpa (PyTorch's fused kernel)
# and flash (FlashAttention, the same saved tensors) keep the output and log-sum-exp instead
ATTENTION = ("eager", "sdpa", "flash")
# pipeline schedules (plan/schedule.py states each)
SCHEDULES = ("1f1b", "zb-h1", "dualpipe", "dualpipev")
ACTIVATION_DTYPES = ("fp32", "bf16", "fp16")  # what training keeps activations in
# the dense peak a dtype's matmuls run at (hardware.yaml's keys): 8- and 4-bit integer weights are dequantized
PEAK_DTYPE = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "int8": "bf16", "int4": "bf16"}
MATMUL_DTYPES = ("fp32", "bf16", "fp16", "fp8")
TORCH_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "fp8": "float8_e4m3fn"}  # torch.<name>


def recompute_setting(value: str, param: str = "recompute") -> str:
    """A recomputation setting as given: a mode (RECOMPUTE), or a comma list of PARTS, each once (its order kept);
    anything else one SpecError naming `param`."""
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else []
    if isinstance(value, str) and (value in RECOMPUTE or (names and set(names) <= set(PARTS)
                                                           and len(set(names)) == len(names))):
        return value if value in RECOMPUTE else ",".join(names)
    raise SpecError(f"{param} {value!r}: expected one of {', '.join(RECOMPUTE)}, or parts to recompute, a comma "
                    f"list of {', '.join(PARTS)} (attention: its core, as selective; activation: each MLP's and "
                    "expert's act(gate) x up; norm, mlp, moe: each such layer whole)", param=param)


def recomputed_cores(recompute: str) -> bool:
    """Whether attention cores are recomputed: selective, or a list naming attention."""
    return recompute == "selective" or (recompute not in RECOMPUTE and "attention" in recompute.split(","))


def recomputed_layers(recompute: str) -> frozenset[str]:
    """The layer parts (norm, mlp, moe) a list names, each such layer checkpointed whole; none for a mode."""
    return frozenset() if recompute in RECOMPUTE else frozenset(recompute.split(",")) - {"attention", "activation"}


def recomputed_activations(recompute: str) -> bool:
    """Whether a list names the MLPs' and experts' activations (each checkpointed on its own)."""
    return recompute not in RECOMPUTE and "activation" in recompute.split(",")


@dataclass(frozen=True)
class Precision:
    """Bytes per value of each part; unset parts follow the weights."""

    weights: str = "bf16"
    kv: str | None = None
    grads: str | None = None
    optimizer: str = "fp32"
    master: bool | None = None  # fp32 master weights; default: when the weights are not fp32
    activations: str | None = None  # default: the weights' dtype, or bf16 under 8- and 4-bit weights
    # the dtype the matmuls run in, whose dense peak time and MFU are read against (bf16 weights with FP8 matmuls:
    # DeepSeek-V3's and Llama 4's recipe); default: the weights' (bf16 under 8- and 4-bit integer weights)
    matmul: str | None = None

    def __post_init__(self) -> None:
        for part in ("weights", "kv", "grads", "optimizer"):
            value = getattr(self, part)
            if value is not None and value not in BYTES:
                raise SpecError(f"{part} dtype {value!r}: expected one of {', '.join(BYTES)}")
        if self.activations is not None and self.activations not in ACTIVATION_DTYPES:
            raise SpecError(f"activation dtype {self.activations!r}: expected one of {', '.join(ACTIVATION_DTYPES)}")
        if self.matmul is not None and self.matmul not in MATMUL_DTYPES:
            raise SpecError(f"matmul dtype {self.matmul!r}: expected one of {', '.join(MATMUL_DTYPES)}")

    def bytes(self, part: str):
        """Bytes per value of `part` as a sympy number."""
        import sympy

        return sympy.sympify(BYTES[self.dtype(part)])

    def dtype(self, part: str) -> str:
        if part == "activations" and self.activations is None:
            return self.weights if self.weights in ACTIVATION_DTYPES else "bf16"
        return getattr(self, part) or self.weights

    def peak_dtype(self) -> str:
        """The dtype whose dense peak the matmuls run at."""
        return self.matmul or PEAK_DTYPE[self.weights]

    def state_bytes(self, optimizer: str):
        """Bytes per parameter the optimizer holds: its states, and fp32 master weights when kept."""
        return OPTIMIZER_STATES[optimizer] * self.bytes("optimizer") + (4 if self.master_weights else 0)

    @property
    def master_weights(self) -> bool:
        return self.weights != "fp32" if self.master is None else self.master


def precision_of(precision) -> Precision:
    """A Precision, from None (the defaults: bf16 weights), a dtype name ("fp32") or a Precision."""
    if precision is None:
        return Precision()
    if isinstance(precision, str):
        return Precision(precision)
    if isinstance(precision, Precision):
        return precision
    raise SpecError(f"precision={precision!r}: expected a dtype name ({', '.join(BYTES)}) or a symcost.precision.Precision")
