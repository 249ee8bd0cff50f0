"""An efficiency entry (plan/efficiency.py) fitted on a user's own timed serving runs: a YAML file of runs, each a
spec served as `serve` serves it (a batch of `concurrency` requests of `prompt` + `output` tokens, prefilled and
decoded to their ends: `serve`'s `throughput`) with the output tokens/s per GPU an engine measured for it. The
entry is the least-squares fit of the runs not held out; its error, the largest of the held-out runs'. The file:

    hardware: h100-sxm            # the entry's key; hardware_file: for an entry of your own catalog
    source: vLLM 0.11, my runs    # said in the entry, with date
    date: "2026-12-07"
    runs:
      - spec: llama.yaml          # relative to this file
        set: {seq_len: 2048}      # the spec's dims, where not its defaults
        tp: 2                     # and dp, ep, dtype, kv_dtype, quantization: {format: fp8}
        concurrency: 64
        prompt: 1024
        output: 256
        measured: 2450.0          # output tokens/s per GPU
        held_out: true            # checked, not fitted
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from ..errors import SpecError
from ..plan.efficiency import MAX_RUNS, Calibration, TimedRun, TimedRuns, Whole
from ..precision import BYTES


class Run(TimedRun):
    tp: Whole = 1
    dp: Whole = 1
    ep: bool = False
    kv_dtype: Literal[tuple(BYTES)] | None = None
    quantization: dict | None = None
    concurrency: Whole
    prompt: Whole
    output: Whole


class Runs(TimedRuns):
    phase: Literal["serve"] = "serve"
    runs: list[Run] = Field(min_length=2, max_length=MAX_RUNS)


class Served(Calibration):
    what = "efficiency"
    figures = (("measured_tokens_per_second_per_gpu", "{:,.0f}"), ("tokens_per_second_per_gpu_bound", "{:,.0f}"),
               ("tokens_per_second_per_gpu_predicted", "{:,.0f}"))
    unit = "output tokens/s per GPU"
    option = "--efficiency-file"


def _runs(path: str | Path):
    from .. import source
    from ..plan.system import located

    doc = source.read(path)
    try:
        return doc, Runs.model_validate(doc.data)
    except ValidationError as e:
        raise located(doc, (), e) from None


def calibrate(path: str | Path, served) -> Served:
    """The runs file's entry (the module docstring), and each run's figures under it; `served(spec path, run, runs)`
    serves one run as `serve` does (the API's, which this layer does not import): its `throughput`, the dtype of
    the peak its matmuls run at, and the spec's name."""
    from ..plan.efficiency import Efficiency, fit, held_out

    doc, given = _runs(path)
    base = Path(path).parent
    done, dtypes = [], []
    for i, run in enumerate(given.runs):
        try:
            t, dtype, name = served(base / run.spec, run, given)
        except SpecError as e:  # the run's place in this file, then why
            raise doc.error(("runs", i), f"{run.spec}: {e.reason if e.file is None else e}") from None
        dtypes.append(dtype)
        gpus = run.tp * run.dp
        name = run.name or f"{name}, tp {run.tp}, batch {run.concurrency}, {run.prompt} + {run.output} tokens"
        done.append((run, name, t, float(t["output_tokens"]) / (run.measured * gpus)))
    fitted = [(t["compute_seconds"], t["memory_seconds"], t["comm_seconds"], seconds)
              for run, _, t, seconds in done if not run.held_out]
    try:
        matmul, memory = (round(x, 3) for x in fit(fitted))
    except SpecError as e:
        raise doc.error(("runs",), f"{len(fitted)} runs fitted: {e.message}") from None
    fitted_on = [(run, name, dtype) for (run, name, *_), dtype in zip(done, dtypes) if not run.held_out]
    entry = Efficiency(matmul=matmul, memory=memory, dtypes=sorted({d for *_, d in fitted_on}),
                       fitted_on=[name for _, name, _ in fitted_on], source=given.source, date=given.date)
    rows = []
    for run, name, t, _ in done:
        predicted = float(t["output_tokens"]) / entry.seconds(t["compute_seconds"], t["memory_seconds"],
                                                              t["comm_seconds"]) / (run.tp * run.dp)
        rows.append({"name": name, "measured_tokens_per_second_per_gpu": run.measured,
                     "tokens_per_second_per_gpu_bound": t["tokens_per_second_per_gpu_bound"],
                     "tokens_per_second_per_gpu_predicted": predicted, "prediction_error": predicted / run.measured - 1,
                     "held_out": run.held_out})
    return Served(given.hardware, held_out(entry, rows), rows)
