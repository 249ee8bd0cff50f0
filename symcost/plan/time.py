"""Time and cost: estimates, never measurements, each saying what it assumes.

- Assumed MFU: step time = model FLOPs per step / (GPUs x dense peak x MFU). Model FLOPs are the
  exact training FLOPs of the step under the derivation's convention (pytorch: what
  FlopCounterMode counts, causal attention in full), recomputation not included; or, as a paper
  reports its MFU (Run.flop_convention), with causal attention's kept scores only, or 6ND.
- Roofline bound, per pipeline stage: each layer piece takes at least max(FLOPs / peak, bytes
  moved / HBM bandwidth) per micro-batch, recomputation included; the pipeline bubble adds
  (pp - 1) / (v m) of that under 1F1B (Narayanan et al. 2021, Sec. 2.2), schedule.bubble's share
  under the others; the communication not overlapped
  (1 - overlap) adds bytes sent / link bandwidth. Bytes moved per piece are a floor on its HBM
  traffic: each weight read once in forward and twice in backward, each gradient written once,
  what is kept for backward written once and read once.
- Predicted (an efficiency entry for the hardware, training.yaml or --efficiency-file): per pipeline stage, each
  piece's FLOPs at the entry's matmul share of the peak plus its HBM traffic at its memory share of the bandwidth,
  one after the other (plan/efficiency.py), the slowest stage stretched by the bubble, then the communication
  not overlapped at the entry's share of the links. The traffic (piece_traffic) is the activations' alone: what a
  forward writes (what it would keep for backward without recomputation: the norms', softmax's, dropout's and
  activation functions' outputs, memory-bound ops) written once per forward run and read once in backward;
  recomputation runs a forward again, so it writes again what it had dropped. Weights and gradients move inside the
  matmuls that use them, in their time. (Counting them too fits the published runs with a matmul share above 1;
  scaling all traffic by the FLOPs re-run fits them worse, 4.5 % at worst held out: benchmarks/bench.py train_time.)
- Links: a collective's group is inside one node when its ranks are (Megatron's rank order,
  tp innermost, then cp, dp, pp), and then runs at half the vendor's bidirectional scale-up
  bandwidth; otherwise at the scale-out bandwidth per GPU. An offloaded run's copies cross the host
  link (hardware.yaml's one-way figure).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import SpecError
from .execution import MFU_DEFAULT, MFU_SOURCE
from .schedule import bubble as schedule_bubble, runs

MFU_WORDS = {"pytorch": "under the derivation's FLOP convention (causal attention in full)",
             "causal": "with causal attention's kept scores only (flop convention causal: the kernel convention's)",
             "6nd": "as 6 x active parameters x tokens (flop convention 6nd)"}
BUBBLE_WORDS = {s: f", {s}'s published form with a forward, an input gradient and a weight gradient a third of the "
                   "stage time each" + (" and the overlapped forward and backward their sum" if "dual" in s else "")
                for s in ("zb-h1", "dualpipe", "dualpipev")}


def link_bandwidth(dim: str, hw, tp, cp, dp, ep):
    """Bytes per second one rank sends at in `dim`'s collectives (numbers or numpy arrays of layouts); an
    offloaded run's copies (`host`) at the host link's one-way figure."""
    if dim == "host":
        return hw.host_link_GBps * 1e9
    inner = {"tp": 1, "sp": 1, "cp": tp, "ep": tp, "dp": tp * cp, "pp": tp * cp * dp}[dim]
    size = {"tp": tp, "sp": tp, "cp": cp, "ep": ep, "dp": dp, "pp": 2}[dim]
    return np.where(inner * size <= hw.gpus_per_node, hw.intra_node_GBps / 2 * 1e9, hw.inter_node_GBps * 1e9)


def piece_work(p, precision):
    """(FLOPs, bytes moved) of one layer piece per micro-batch on its stage, recomputation included."""
    w, g = precision.bytes("weights"), precision.bytes("grads")
    moved = 3 * w * (p.params + p.expert_params) + g * (p.trainable + p.expert_trainable) + 2 * p.saved
    return (p.train + p.recomputed) * p.count, moved * p.count


def busiest(flops, p, ex, run):
    """A piece's FLOPs (piece_work's) on the busiest expert-parallel rank: its routed experts' stretched by the run's
    imbalance."""
    return flops + (run.ep_imbalance - 1) * p.routed * p.count if ex.ep > 1 else flops


def comm_seconds(comm, hw, ex, run) -> float:
    """Seconds of the rank's communication at the links' figures, the expert all-to-all stretched by the imbalance."""
    return sum(float(sent) / float(link_bandwidth(r.dim, hw, ex.tp, ex.cp, ex.dp, ex.ep))
               * (run.ep_imbalance if r.dim == "ep" else 1) for r, _, sent in comm)


def piece_traffic(p, ex):
    """Bytes of memory-bound HBM traffic of one layer piece per micro-batch on its stage, as the predicted time
    counts them (the module docstring)."""
    again = ex.recompute == "full" and p.place == "block"  # its whole forward runs twice
    rewritten = p.written if again else p.written - p.saved  # what recomputation dropped, written again
    return (2 * p.written + rewritten) * p.count


def predicted(ex, hw, stages, stage_flops, comm_time, at, closed, run, efficiency) -> dict:
    """The step's predicted seconds (the module docstring), and the slowest stage's micro-batches: predicted, and
    their FLOPs at the dense peak and traffic at the HBM bandwidth (what a fit reads). `stage_flops`: each stage's
    FLOPs a step, as the bound counted them."""
    peak, bandwidth = hw.peak_flops(ex.precision.peak_dtype()), hw.memory_GBps * 1e9
    stage = []
    for s in stages:
        flops = stage_flops[s.name]
        moved = float(at(closed(sum(piece_traffic(p, ex) for p in s.pieces) * runs(ex))))
        stage = max(stage, [efficiency.seconds(flops / peak, moved / bandwidth), flops / peak, moved / bandwidth])
    slowest, compute, memory = stage
    step = slowest * (1 + float(schedule_bubble(ex))) + efficiency.seconds(0, 0, (1 - run.overlap) * comm_time)
    return {"step_seconds_predicted": step, "stage_seconds_predicted": slowest, "stage_compute_seconds": compute,
            "stage_memory_seconds": memory}


def efficiency_notes(efficiency, key: str, ex) -> list[str]:
    """What a predicted step time rests on (nothing where no entry gave one)."""
    if efficiency is None:
        return []
    notes = [efficiency.label(key) + "; the slowest stage stretched by the bubble, then the communication not "
             "overlapped (--overlap) at the link share whatever its dimension: an entry fitted on tensor-parallel "
             "and pipeline traffic overstates what a framework hides (FSDP's prefetch, ring attention's overlap)"]
    if (dtype := ex.precision.peak_dtype()) not in efficiency.dtypes:
        notes.append(f"the efficiency entry was fitted on {', '.join(efficiency.dtypes)} matmuls; these run in "
                     f"{dtype}: its shares are read against {dtype}'s peak")
    return notes


def timing(ex, hw, stages, numbers, comm, at, closed, run, *, tokens_per_step, hardware_flops, efficiency=None):
    mfu, overlap, tokens, price, tokens_per_second = run.mfu, run.overlap, run.tokens, run.price, run.tokens_per_second
    peak = hw.peak_flops(ex.precision.peak_dtype())
    gpus = ex.gpus
    model = float(numbers["mfu_flops_per_step"])  # as the MFU convention counts them
    step = model / (gpus * peak * mfu)
    compute, rows, stage_flops = 0.0, [], {}
    for stage in stages:
        mine = []
        for p in stage.pieces:
            work, moved = piece_work(p, ex.precision)
            flops, moved = (float(at(closed(e) * runs(ex))) for e in (busiest(work, p, ex, run), moved))
            seconds = max(flops / peak, moved / (hw.memory_GBps * 1e9))
            mine.append({"path": p.path, "kind": p.site.component.kind, "flops": flops, "bytes_moved": moved,
                         "seconds": seconds, "bound": "compute" if flops / peak >= moved / (hw.memory_GBps * 1e9)
                         else "memory"})
        stage_flops[stage.name] = sum(r["flops"] for r in mine)
        if sum(r["seconds"] for r in mine) >= compute:
            compute, rows = sum(r["seconds"] for r in mine), [{"stage": stage.name, **r} for r in mine]
    bubble = float(schedule_bubble(ex))
    comm_time = comm_seconds(comm, hw, ex, run)
    bound = compute * (1 + bubble) + (1 - overlap) * comm_time
    out = {
        "peak_flops": peak,
        "mfu_assumed": mfu,
        "step_seconds": step,
        "compute_bound_seconds": compute,
        "bubble_fraction": bubble,
        "comm_seconds": comm_time,
        "step_seconds_bound": bound,
        "tokens_per_step": tokens_per_step,
        "tokens_per_second": tokens_per_step / step,
        "mfu_at_bound": model / (gpus * peak * bound) if bound else None,
    }
    if efficiency is not None:
        out |= predicted(ex, hw, stages, stage_flops, comm_time, at, closed, run, efficiency)
        out["mfu_predicted"] = model / (gpus * peak * out["step_seconds_predicted"])
    if tokens is not None:
        steps = math.ceil(tokens / tokens_per_step)
        wall = steps * step / run.goodput  # restarts and checkpoints take the rest of the run's time
        out |= {"tokens": tokens, "steps": steps, "goodput": run.goodput, "train_seconds": wall,
                "train_days": wall / 86400, "gpu_hours": wall * gpus / 3600}
        if price is not None:
            out["cost"] = out["gpu_hours"] * price
            out["price_per_gpu_hour"] = price
    if tokens_per_second is not None:
        per_token = model / tokens_per_step
        out["measured_tokens_per_second"] = tokens_per_second
        out["mfu_measured"] = per_token * tokens_per_second / (gpus * peak)
        out["hfu_measured"] = float(hardware_flops) / tokens_per_step * tokens_per_second / (gpus * peak)
        if out["hfu_measured"] > 1:  # the hardware cannot run faster than its peak: the throughput is wrong
            raise SpecError(f"tokens_per_second {tokens_per_second:g}: would mean {out['hfu_measured']:.3g} of the "
                            f"{gpus} GPUs' dense peak (HFU above 1); give the whole run's measured tokens per second",
                            param="tokens_per_second")
    notes = [] if run.goodput == 1 or tokens is None else [
        f"training time and GPU-hours: the steps' time over a goodput of {run.goodput:g} (given: the share of the run "
        "spent on steps that count; restarts and checkpoints take the rest)"]
    notes += [
        f"time is an estimate, not a measurement: step = model FLOPs / ({gpus} GPUs x {peak / 1e12:g} TFLOP/s dense "
        f"{ex.precision.peak_dtype()} peak" + (f" (matmuls in {ex.precision.matmul}, weights stored in "
                                                f"{ex.precision.dtype('weights')})" if ex.precision.matmul else "")
        + f", {hw.source}) / MFU {mfu:g} "
        f"({MFU_SOURCE if mfu == MFU_DEFAULT else 'given'})",
        "roofline bound: per layer piece max(FLOPs / peak, bytes moved / HBM bandwidth), recomputation included, "
        f"stretched by the pipeline bubble ({bubble:.3g} of it{BUBBLE_WORDS.get(ex.schedule, '')}), and "
        f"{1 - overlap:g} of the communication time on top (links: {hw.inter_node_source})",
        "MFU counts model FLOPs (no recomputation) " + MFU_WORDS[run.flop_convention] + "; HFU counts what the "
        "hardware runs (recomputation included) under the derivation's FLOP convention",
    ]
    return out, notes, rows

