"""Efficiencies: the shares of a part's datasheet figures an engine achieves, fitted on published runs
(efficiency.yaml beside hardware.yaml, keyed the same way, or a user's file of the same shape). Each entry names
the runs it was fitted on and its error on published runs it was not fitted on. Its predictions are estimates.

The rule (no overlap): a phase (a prefill, a decode step, a pipeline stage's training step) takes

    FLOPs / (matmul x dense peak) + bytes moved / (memory x HBM bandwidth) + bytes sent / (link x link bandwidth),

its arithmetic, its memory traffic and its communication one after the other, each at its achieved share. Serving
entries (efficiency.yaml) keep `link` at 1, the link's figure (serve's tensor- and expert-parallel collectives, so
that two published throughputs fix an entry); training entries (training.yaml) fit it too, and plan stretches the
first two by the pipeline's bubble (plan/time.py). The roofline bound takes the larger of the first two at the
datasheet's figures, so a prediction is never below its bound. The rule is linear in the shares' inverses, so fit()
solves it by least squares on the runs' relative errors: no search, one answer for a given set of runs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import SpecError
from ..precision import BYTES
from ..results import Result
from .system import TFLOPS_DTYPES, entries

FILES = {"serve": Path(__file__).with_name("efficiency.yaml"), "train": Path(__file__).with_name("training.yaml")}
Share = Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)]


class Efficiency(BaseModel):
    """What an engine achieves on one accelerator, and the runs that say so."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    matmul: Share = Field(description="achieved share of the dense peak of the matmuls' dtype")
    memory: Share = Field(description="achieved share of the HBM bandwidth")
    link: Share = Field(1.0, description="achieved share of the links' bandwidth (1: the link's figure)")
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
        return compute / self.matmul + memory / self.memory + comm / self.link

    def label(self, key: str) -> str:
        held = (f"; off by at most {self.held_out_error:.1%} on {len(self.held_out)} runs it was not fitted on"
                if self.held_out else "; checked on no run it was not fitted on")
        return (f"predicted times: efficiency entry {key!r} (an estimate): matmuls at {self.matmul:g} of the dense "
                f"peak, memory traffic at {self.memory:g} of the HBM bandwidth, communication at "
                + (f"{self.link:g} of the link's" if self.link != 1 else "the link's") + ", one after the other; "
                f"fitted on {len(self.fitted_on)} runs ({', '.join(self.dtypes)} matmuls: "
                f"{self.fitted_on[0]}{', …' if len(self.fitted_on) > 1 else ''}){held}")


# every share 1: a prediction at the datasheet's figures, whose parts a fit reads (plan/calibrate.py)
NEUTRAL = Efficiency(matmul=1.0, memory=1.0, dtypes=list(TFLOPS_DTYPES), fitted_on=["the datasheet's figures"],
                     source="the hardware catalog", date="")


def _dtypes(entry: dict) -> None:
    if unknown := set(entry.get("dtypes") or ()) - set(TFLOPS_DTYPES):
        raise SpecError(f"unknown dtype {sorted(unknown)[0]!r}; expected {', '.join(TFLOPS_DTYPES)}", param="dtypes")


@functools.cache
def shipped(phase: str = "serve") -> dict[str, Efficiency]:
    return entries(FILES[phase], Efficiency, _dtypes)


def efficiency(key: str, extra_file: str | None = None, phase: str = "serve") -> Efficiency | None:
    """The entry for hardware `key` for serving or training (`phase`), from the shipped file or `extra_file`
    (which may add or replace entries); None where neither has one."""
    found = dict(shipped(phase))
    if extra_file is not None:
        found |= entries(extra_file, Efficiency, _dtypes)
    return found.get(key)


def fit(runs: Sequence[tuple[float, float, float, float]], link: bool = False) -> tuple[float, ...]:
    """(matmul, memory), or (matmul, memory, link) with `link`, from runs of (seconds at the peak, seconds at the
    bandwidth, seconds of communication at the link's figure, measured seconds): the shares whose predictions'
    relative errors have the least sum of squares; without `link` the communication is taken as given."""
    import numpy as np

    need = 3 if link else 2
    if len(runs) < need:
        raise SpecError(f"{len(runs)} run{'s' if len(runs) != 1 else ''}: a fit of {need} shares needs at least "
                        f"{need} runs", param="runs")
    if not link and any(t <= comm for *_, comm, t in runs):
        raise SpecError("a run measured no longer than its communication alone: nothing is left to fit", param="runs")
    rows = np.array([(c / t, m / t, comm / t)[:need] for c, m, comm, t in runs], dtype=float)
    rest = np.array([1 - (0 if link else comm / t) for *_, comm, t in runs], dtype=float)
    inverse, *_ = np.linalg.lstsq(rows, rest, rcond=None)
    names = ("matmul", "memory", "link")[:need]
    if not all(x >= 1 - 1e-9 for x in inverse):  # a share above 1 (or negative): the runs do not tell them apart
        raise SpecError(f"the runs give shares {', '.join(f'{n} {1 / x:.3g}' for n, x in zip(names, inverse))}: "
                        "not all in (0, 1]; give runs that differ in what bounds them (serving: long prompts and "
                        "big batches, and decode; training: sizes, recomputation and parallel layouts)", param="runs")
    return tuple(min(1.0, float(1 / x)) for x in inverse)  # a share of 1 fitted to rounding


MAX_RUNS = 24  # each is a serve or a plan, about 0.3 s: fit-efficiency stays within the 10 s every command keeps to
Whole = Annotated[int, Field(strict=True, ge=1, le=10**9)]


class TimedRun(BaseModel):
    """A run of a runs file (serve/calibrate.py, plan/calibrate.py): a spec at its dims, its dtype, what was measured,
    and whether it is checked rather than fitted."""

    model_config = ConfigDict(extra="forbid", strict=True)
    spec: str
    name: str | None = None
    set: dict[str, Whole] = Field(default_factory=dict)
    dtype: Literal[tuple(BYTES)] = "bf16"
    measured: Annotated[float, Field(strict=False, gt=0, le=1e9, allow_inf_nan=False)]
    held_out: bool = False


class TimedRuns(BaseModel):
    """A runs file's head: the entry's hardware key (and a catalog of one's own), its source and date."""

    model_config = ConfigDict(extra="forbid", strict=True)
    hardware: str
    hardware_file: str | None = None
    source: str
    date: str


@dataclass(frozen=True, repr=False)
class Calibration(Result):
    """An entry fitted on a file of timed runs (serve/calibrate.py, plan/calibrate.py) and each run's figures under
    it: its name, measured, bound and predicted figures, error and whether it was held out."""

    key: str
    entry: Efficiency
    rows: list[dict]
    # what the runs were: the title's words, the table's figures (row key, format) and their unit, the option
    # that reads the entry
    what: ClassVar[str]
    figures: ClassVar[tuple[tuple[str, str], ...]]
    unit: ClassVar[str]
    option: ClassVar[str]

    def yaml(self) -> str:
        """The entry as an efficiency file holds it."""
        import yaml

        return yaml.safe_dump({self.key: self.entry.model_dump(exclude_defaults=True)}, sort_keys=False, width=120)

    def to_dict(self) -> dict:
        return {"hardware": self.key, "efficiency": self.entry.model_dump(), "runs": self.rows}

    def shares(self) -> list[tuple[str, str]]:
        e = self.entry
        return [("matmul", f"{e.matmul:g}"), ("memory", f"{e.memory:g}")] + (
            [("link", f"{e.link:g}")] if e.link != 1 else [])

    def text(self, width: int | None = None) -> str:
        from ..render.text import fit, table, width as terminal

        e = self.entry
        held = f"; held-out error {e.held_out_error:.1%}" if e.held_out else "; no run held out"
        rows = [(r["name"], *(form.format(r[k]) for k, form in self.figures), f"{r['prediction_error']:+.1%}",
                 "held out" if r["held_out"] else "fit") for r in self.rows]
        words = {"matmul": "of the dense peak", "memory": "of the HBM bandwidth", "link": "of the links'"}
        title = (f"{self.what} for {self.key}: " + ", ".join(f"{k} {v} {words[k]}" for k, v in self.shares())
                 + f" (fitted on {len(e.fitted_on)} runs{held})")
        width = width or terminal()
        return "\n".join([fit(title, width), "",
                          *table(("run", "measured", "bound", "predicted", "error", ""), rows, width), "",
                          f"{self.unit}; the entry, for {self.option}:", "", self.yaml().rstrip()])

    def summary(self):
        return f"{self.what} for {self.key}", self.shares() + [("runs fitted", f"{len(self.entry.fitted_on)}")]


def held_out(entry: Efficiency, rows: list[dict]) -> Efficiency:
    """The entry with the runs held out named and the largest of their errors."""
    held = [r for r in rows if r["held_out"]]
    if not held:
        return entry
    return entry.model_copy(update={"held_out": [r["name"] for r in held],
                                    "held_out_error": round(max(abs(r["prediction_error"]) for r in held), 3)})
