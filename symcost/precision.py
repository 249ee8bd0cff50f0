"""Bytes per value, optimizer states and recompute modes: the one table of each (light:
the CLI's choices come from here without importing sympy)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .errors import SpecError

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": Fraction(1, 2)}
OPTIMIZER_STATES = {"adam": 2, "adamw": 2, "momentum": 1, "sgd": 0, "none": 0}  # fp32 values per parameter
RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class Precision:
    """Bytes per value of each part; unset parts follow the weights."""

    weights: str = "bf16"
    kv: str | None = None
    grads: str | None = None
    optimizer: str = "fp32"
    master: bool | None = None  # fp32 master weights; default: when the weights are not fp32

    def __post_init__(self) -> None:
        for part in ("weights", "kv", "grads", "optimizer"):
            value = getattr(self, part)
            if value is not None and value not in BYTES:
                raise SpecError(f"{part} dtype {value!r}: expected one of {', '.join(BYTES)}")

    def bytes(self, part: str):
        """Bytes per value of `part` as a sympy number."""
        import sympy

        return sympy.sympify(BYTES[getattr(self, part) or self.weights])

    def dtype(self, part: str) -> str:
        return getattr(self, part) or self.weights

    @property
    def master_weights(self) -> bool:
        return self.weights != "fp32" if self.master is None else self.master
