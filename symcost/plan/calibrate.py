"""A training efficiency entry (plan/efficiency.py) fitted on timed training runs: a YAML file of runs, each a spec
planned as `plan` plans it with the step time a framework measured for it. The entry's three shares (matmul, memory,
link) are the least-squares fit of the runs not held out; its error, the largest of the held-out runs'. The file:

    phase: train                  # a training runs file (serving's leave it out: serve/calibrate.py)
    hardware: a100-80gb           # the entry's key; hardware_file: for an entry of your own catalog
    source: my Megatron-LM runs   # said in the entry, with date
    date: "2026-12-07"
    runs:
      - spec: gpt.yaml            # relative to this file
        name: 22B, full recompute # optional: how the tables call it
        set: {d_model: 6144}      # the spec's dims, where not its defaults
        plan: {gpus: 8, tp: 8, micro_batch: 4, global_batch: 4, recompute: full, attention: eager}
        dtype: fp16               # weights and matmuls (bf16 by default)
        measured: 1.42            # seconds per step
        held_out: true            # checked, not fitted

`plan` takes plan's settings by their library names (gpus, tp, pp, dp, ep, cp, sequence_parallel, zero, micro_batch,
global_batch, virtual_stages, schedule, stage_layers, recompute, offload, attention, optimizer, overlap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from ..errors import SpecError
from .efficiency import MAX_RUNS, Calibration, TimedRun, TimedRuns
from .execution import Execution

# plan's settings a run may give: the GPUs, the execution's (tp, pp, …), the share of communication overlapped
SETTINGS = ("gpus", *(f for f in Execution.model_fields if f != "precision"), "overlap")


class Run(TimedRun):
    plan: dict = Field(default_factory=dict)


class Runs(TimedRuns):
    phase: Literal["train"]
    runs: list[Run] = Field(min_length=3, max_length=MAX_RUNS)


class Trained(Calibration):
    what = "training efficiency"
    figures = (("measured_step_seconds", "{:.4g}"), ("step_seconds_bound", "{:.4g}"), ("step_seconds_predicted",
                                                                                        "{:.4g}"))
    unit = "seconds per step"
    option = "plan --efficiency-file"


def calibrate(doc, path: str | Path, planned) -> Trained:
    """The runs file's entry (the module docstring), and each run's figures under it; `planned(spec path, run,
    runs)` plans one run as `plan` does (the API's, which this layer does not import) with the neutral entry
    (efficiency.NEUTRAL): its numbers, its execution and the spec's name."""
    from .efficiency import Efficiency, fit, held_out

    try:
        given = Runs.model_validate(doc.data)
    except ValidationError as e:
        from .system import located

        raise located(doc, (), e) from None
    base = Path(path).parent
    done = []
    for i, run in enumerate(given.runs):
        for key in run.plan:
            if key not in SETTINGS:
                raise doc.error(("runs", i, "plan", key), f"unknown setting {key!r}; expected {', '.join(SETTINGS)}")
        try:
            n, ex, name = planned(base / run.spec, run, given)
        except SpecError as e:  # the run's place in this file, then why
            raise doc.error(("runs", i), f"{run.spec}: {e.reason if e.file is None else e}") from None
        stretch = 1 + n["bubble_fraction"]
        columns = (n["stage_compute_seconds"] * stretch, n["stage_memory_seconds"] * stretch,
                   n["comm_seconds"] * (1 - float(run.plan.get("overlap", 0))), run.measured)
        label = run.name or (f"{name}, {ex.gpus} GPUs, tp {ex.tp}, pp {ex.pp}, recompute {ex.recompute}")
        done.append((run, label, n, columns, ex.precision.peak_dtype()))
    fitted = [columns for run, _, _, columns, _ in done if not run.held_out]
    try:
        matmul, memory, link = (round(x, 3) for x in fit(fitted, link=True))
    except SpecError as e:
        raise doc.error(("runs",), f"{len(fitted)} runs fitted: {e.message}") from None
    entry = Efficiency(matmul=matmul, memory=memory, link=link,
                       dtypes=sorted({d for run, *_, d in done if not run.held_out}),
                       fitted_on=[label for run, label, *_ in done if not run.held_out], source=given.source,
                       date=given.date)
    rows = []
    for run, label, n, (compute, memory_s, comm, measured), _ in done:
        predicted = entry.seconds(compute, memory_s, comm)
        rows.append({"name": label, "measured_step_seconds": measured, "step_seconds_bound": n["step_seconds_bound"],
                     "step_seconds_predicted": predicted, "prediction_error": predicted / measured - 1,
                     "held_out": run.held_out})
    return Trained(given.hardware, held_out(entry, rows), rows)
