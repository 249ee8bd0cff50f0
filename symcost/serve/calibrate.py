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

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import SpecError
from ..precision import BYTES
from ..results import Result

MAX_RUNS = 24  # each is a serve, about 0.3 s: the command stays within the 10 s every command keeps to
Whole = Annotated[int, Field(strict=True, ge=1, le=10**9)]


class Run(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    spec: str
    name: str | None = None
    set: dict[str, Whole] = Field(default_factory=dict)
    tp: Whole = 1
    dp: Whole = 1
    ep: bool = False
    dtype: Literal[tuple(BYTES)] = "bf16"
    kv_dtype: Literal[tuple(BYTES)] | None = None
    quantization: dict | None = None
    concurrency: Whole
    prompt: Whole
    output: Whole
    measured: Annotated[float, Field(strict=False, gt=0, le=1e9, allow_inf_nan=False)]
    held_out: bool = False


class Runs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    phase: Literal["serve"] = "serve"
    hardware: str
    hardware_file: str | None = None
    source: str
    date: str
    runs: list[Run] = Field(min_length=2, max_length=MAX_RUNS)


@dataclass(frozen=True, repr=False)
class Calibration(Result):
    key: str
    entry: object  # the Efficiency fitted
    rows: list[dict]  # each run: its name, measured, bound and predicted output tokens/s per GPU, error, held out

    def yaml(self) -> str:
        """The entry as an efficiency file holds it (`serve --efficiency-file`)."""
        import yaml

        return yaml.safe_dump({self.key: self.entry.model_dump(exclude_defaults=True)}, sort_keys=False, width=120)

    def to_dict(self) -> dict:
        return {"hardware": self.key, "efficiency": self.entry.model_dump(), "runs": self.rows}

    def text(self, width: int | None = None) -> str:
        from ..render.text import fit, table, width as terminal

        e = self.entry
        held = f"; held-out error {e.held_out_error:.1%}" if e.held_out else "; no run held out"
        rows = [(r["name"], f"{r['measured_tokens_per_second_per_gpu']:,.0f}",
                 f"{r['tokens_per_second_per_gpu_bound']:,.0f}", f"{r['tokens_per_second_per_gpu_predicted']:,.0f}",
                 f"{r['prediction_error']:+.1%}", "held out" if r["held_out"] else "fit") for r in self.rows]
        width = width or terminal()
        title = (f"efficiency for {self.key}: matmul {e.matmul:g} of the dense peak, memory {e.memory:g} of the HBM "
                 f"bandwidth (fitted on {len(e.fitted_on)} runs{held})")
        return "\n".join([fit(title, width), "",
                          *table(("run", "measured", "bound", "predicted", "error", ""), rows, width), "",
                          "output tokens/s per GPU; the entry, for --efficiency-file:", "", self.yaml().rstrip()])

    def summary(self):
        e = self.entry
        return f"efficiency for {self.key}", [("matmul", f"{e.matmul:g}"), ("memory", f"{e.memory:g}"),
                                              ("runs fitted", f"{len(e.fitted_on)}")]


def _runs(path: str | Path):
    from .. import source
    from ..plan.system import located

    doc = source.read(path)
    try:
        return doc, Runs.model_validate(doc.data)
    except ValidationError as e:
        raise located(doc, (), e) from None


def calibrate(path: str | Path, served) -> Calibration:
    """The runs file's entry (the module docstring), and each run's figures under it; `served(spec path, run, runs)`
    serves one run as `serve` does (the API's, which this layer does not import): its `throughput`, the dtype of
    the peak its matmuls run at, and the spec's name."""
    from ..plan.efficiency import Efficiency, fit

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
    held = [r for r in rows if r["held_out"]]
    if held:
        entry = entry.model_copy(update={"held_out": [r["name"] for r in held],
                                         "held_out_error": round(max(abs(r["prediction_error"]) for r in held), 3)})
    return Calibration(given.hardware, entry, rows)
