"""Efficiencies: the shares of a part's datasheet figures an engine achieves, fitted on published runs
(efficiency.yaml beside hardware.yaml, keyed the same way, or a user's file of the same shape). Each entry names
the runs it was fitted on and its error on published runs it was not fitted on. Its predictions are estimates.

The rule (no overlap): a phase (a prefill, a decode step) takes

    FLOPs / (matmul x dense peak) + bytes moved / (memory x HBM bandwidth) + bytes sent / link bandwidth,

its arithmetic, its memory traffic and its communication one after the other, the first two at their achieved
shares, the last at the link's figure (the caller's: serve's tensor- and expert-parallel collectives, with no
share of their own, so that two published throughputs fix an entry). The roofline bound takes
the larger of the two at the datasheet's figures, so a prediction is never below its bound. The rule is linear
in 1/matmul and 1/memory, so fit() solves it by least squares on the runs' relative errors: no search, one
answer for a given set of runs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..errors import SpecError
from .system import TFLOPS_DTYPES, entries

FILE = Path(__file__).with_name("efficiency.yaml")
Share = Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)]


class Efficiency(BaseModel):
    """What an engine achieves on one accelerator, and the runs that say so."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    matmul: Share = Field(description="achieved share of the dense peak of the matmuls' dtype")
    memory: Share = Field(description="achieved share of the HBM bandwidth")
    dtypes: list[str] = Field(min_length=1, description="the matmul dtypes of the runs it was fitted on")
    fitted_on: list[str] = Field(min_length=1, description="the runs, named with their source")
    held_out: list[str] = Field(default_factory=list, description="published runs it was checked on, not fitted")
    held_out_error: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)] | None = Field(
        None, description="the largest |predicted / measured - 1| of the held-out runs' throughput")
    source: str
    date: str

    def seconds(self, compute: float, memory: float, comm: float = 0.0) -> float:
        """A phase's predicted seconds from its seconds at the datasheet's peak and at its bandwidth, and the
        seconds its communication takes at the link's (after them)."""
        return compute / self.matmul + memory / self.memory + comm

    def label(self, key: str) -> str:
        held = (f"; off by at most {self.held_out_error:.1%} on {len(self.held_out)} runs it was not fitted on"
                if self.held_out else "; checked on no run it was not fitted on")
        return (f"predicted times: efficiency entry {key!r} (an estimate): matmuls at {self.matmul:g} of the dense "
                f"peak, memory traffic at {self.memory:g} of the HBM bandwidth, communication at the link's, one "
                "after the other (no overlap); "
                f"fitted on {len(self.fitted_on)} runs ({', '.join(self.dtypes)} matmuls: "
                f"{self.fitted_on[0]}{', …' if len(self.fitted_on) > 1 else ''}){held}")


def _dtypes(entry: dict) -> None:
    if unknown := set(entry.get("dtypes") or ()) - set(TFLOPS_DTYPES):
        raise SpecError(f"unknown dtype {sorted(unknown)[0]!r}; expected {', '.join(TFLOPS_DTYPES)}", param="dtypes")


@functools.cache
def shipped() -> dict[str, Efficiency]:
    return entries(FILE, Efficiency, _dtypes)


def efficiency(key: str, extra_file: str | None = None) -> Efficiency | None:
    """The entry for hardware `key`, from the shipped file or `extra_file` (which may add or replace
    entries); None where neither has one."""
    found = dict(shipped())
    if extra_file is not None:
        found |= entries(extra_file, Efficiency, _dtypes)
    return found.get(key)


def fit(runs: Sequence[tuple[float, float, float, float]]) -> tuple[float, float]:
    """(matmul, memory) from runs of (seconds at the peak, seconds at the bandwidth, seconds of communication,
    measured seconds): the shares whose predictions' relative errors have the least sum of squares, the
    communication taken as given."""
    import numpy as np

    if len(runs) < 2:
        raise SpecError(f"{len(runs)} run: a fit needs at least two (some compute-bound, some memory-bound)",
                        param="runs")
    if any(t <= comm for *_, comm, t in runs):
        raise SpecError("a run measured no longer than its communication alone: nothing is left to fit", param="runs")
    rows = np.array([(c / t, m / t) for c, m, _, t in runs], dtype=float)
    rest = np.array([1 - comm / t for *_, comm, t in runs], dtype=float)
    inverse, *_ = np.linalg.lstsq(rows, rest, rcond=None)
    if not all(x >= 1 - 1e-9 for x in inverse):  # a share above 1 (or negative): the runs do not tell them apart
        raise SpecError(f"the runs give shares {', '.join(f'{1 / x:.3g}' for x in inverse)}: not both in (0, 1]; "
                        "give runs both compute-bound (long prompts, big batches) and memory-bound (decode)",
                        param="runs")
    return min(1.0, float(1 / inverse[0])), min(1.0, float(1 / inverse[1]))  # a share of 1 fitted to rounding
