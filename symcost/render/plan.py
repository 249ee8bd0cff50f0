"""plan as data and text."""

from __future__ import annotations

from collections import defaultdict

from ..metrics import label
from .explore import jsonable
from .text import bytes_human, formula, number, pretty, width, wrap

MEMORY = ("weights_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes", "total_bytes", "transient_bytes",
          "peak_bytes")
TIME = ("step_seconds", "step_seconds_bound", "compute_bound_seconds", "comm_seconds", "bubble_fraction",
        "tokens_per_step", "tokens_per_second", "mfu_at_bound", "peak_flops", "step_seconds_predicted",
        "stage_seconds_predicted", "stage_compute_seconds", "stage_memory_seconds", "mfu_predicted")
TRAINING = ("tokens", "steps", "goodput", "train_seconds", "train_days", "gpu_hours")


def _comm_totals(p, key: str) -> dict:
    out = defaultdict(int)
    for record, _, sent in p.comm:
        out[getattr(record, key)] += sent
    return {k: jsonable(v) for k, v in out.items()}


def plan_data(p) -> dict:
    n, ex = p.numbers, p.execution
    out = {
        "name": p.name,
        **p.held,
        "hardware": {"key": p.hardware_key, "name": p.hardware.name, "memory_bytes": p.hardware.memory_bytes,
                     "source": p.hardware.source},
        "execution": {"gpus": ex.gpus, **ex.model_dump(exclude={"precision"}), "global_batch": ex.sequences,
                      "microbatches": ex.microbatches,
                      "dtypes": {**{k: ex.precision.dtype(k) for k in ("weights", "grads", "optimizer", "activations")},
                                 "matmuls": ex.precision.peak_dtype()},
                      "master_weights": ex.precision.master_weights},
        "stage": p.stage,
        "fits": p.fits,
        "headroom": p.run.headroom,
        "usable_bytes": p.run.usable(p.hardware),
        "per_gpu": {k: jsonable(n[k]) for k in (*MEMORY, "host_bytes") if k in n},
        "formulas": {k: formula(p.exprs[k]) for k in (*MEMORY, "host_bytes") if k in n},
        "per_stage": {s: {k: jsonable(v) for k, v in d.items()} for s, d in p.per_stage.items()},
        "comm": {
            "sent_bytes_by_collective": _comm_totals(p, "collective"),
            "sent_bytes_by_dim": _comm_totals(p, "dim"),
            "records": [{"dim": r.dim, "collective": r.collective, "pass": r.passes, "path": r.path,
                         "payload_bytes": jsonable(payload), "calls": formula(r.calls), "group": formula(r.group),
                         "sent_bytes": jsonable(sent)} for r, payload, sent in p.comm],
        },
        "flops": {"model_per_step": jsonable(n["model_flops_per_step"]),
                  "hardware_per_step": jsonable(n["hardware_flops_per_step"]),
                  "rank_per_step": jsonable(n["rank_flops_per_step"]),
                  "model_formula": formula(p.exprs["model_flops_per_step"]), "convention": p.convention,
                  "mfu_per_step": jsonable(n["mfu_flops_per_step"]), "mfu_convention": p.run.flop_convention},
        "time": {"estimate": True, "mfu_assumed": n["mfu_assumed"], **{k: n[k] for k in TIME if k in n}},
        "roofline_by_component": p.roofline,
        "published_estimates": [{**e, "estimate": jsonable(e["estimate"]), "exact": jsonable(e["exact"])}
                                for e in p.estimates],
        "notes": list(p.notes),
    }
    if "mfu_measured" in n:
        out["time"] |= {k: n[k] for k in ("measured_tokens_per_second", "mfu_measured", "hfu_measured")}
    if "steps" in n:
        out["training"] = {k: n[k] for k in TRAINING}
        out["cost"] = ({"price_per_gpu_hour": n["price_per_gpu_hour"], "total": n["cost"]} if "cost" in n else None)
    return out


def _seconds(s: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:,.3g} {unit}"
    return f"{s:.3g} s"


def plan_text(p, limit: int | None = None, formulas: bool = False) -> str:
    """The plan as text: numbers first; with `formulas`, each per-GPU figure's closed form beside it."""
    n, ex, limit = p.numbers, p.execution, limit or width()
    sizes = p.values
    name = p.name + (f" ({', '.join(f'{k}={v}' for k, v in sizes.items())})" if sizes else "")
    head = (f"{name} on {ex.gpus} x {p.hardware.name}: tp {ex.tp}, pp {ex.pp}"
            + (f" (v {ex.virtual_stages})" if ex.virtual_stages > 1 else "")
            + (f" ({ex.schedule})" if ex.schedule != "1f1b" else "")
            + (f" (layers {','.join(map(str, ex.stage_layers))})" if ex.listed else "")
            + f", dp {ex.dp}, cp {ex.cp}, ep {ex.ep}" + (", sequence parallel" if ex.sequence_parallel else "")
            + f", ZeRO {ex.zero}" + (f" (offload {ex.offload})" if ex.offload != "none" else "")
            + f", micro-batch {ex.micro_batch} x {ex.microbatches} per step, recompute {ex.recompute}")
    where = f"pipeline {p.stage}" if p.stage.startswith("rank") else f"{p.stage} stage"
    lines = wrap(head, limit) + ["", f"memory per GPU ({where}), bytes"]
    for k in MEMORY:
        row = f"  {label(k, short=True):<17} {number(n[k]):>22}  ({bytes_human(n[k])})"
        lines += wrap(f"{row}   = {pretty(p.exprs[k])}", limit) if formulas and len(row) + 20 < limit else [row]
    if "host_bytes" in n:
        lines.append(f"  {'on the host':<17} {number(n['host_bytes']):>22}  ({bytes_human(n['host_bytes'])}; "
                     "offloaded, not in the GPU's peak)")
    cap = p.hardware.memory_bytes
    kept = f", {p.run.headroom:.0%} kept free: {bytes_human(p.run.usable(p.hardware))} usable" if p.run.headroom else ""
    lines.append(f"  {'fits':<17} {'yes' if p.fits else 'NO'}: {bytes_human(n['peak_bytes'])} of "
                 f"{bytes_human(cap)} ({p.hardware.memory_GB:g} GB{kept})")
    lines += ["", "communication per GPU per step (bytes sent)"]
    for key in ("dim", "collective"):
        totals = _comm_totals(p, key)
        lines += wrap(f"  by {key}: " + (", ".join(f"{k} {bytes_human(v)}" for k, v in totals.items()) or "none"),
                      limit, indent=4)
    timing = [f"  step, assumed MFU {n['mfu_assumed']:g}:  {_seconds(n['step_seconds'])}"
              f"  ({n['tokens_per_second']:,.0f} tokens/s)",
              f"  step, roofline bound:   {_seconds(n['step_seconds_bound'])}  (compute {_seconds(n['compute_bound_seconds'])},"
              f" bubble {n['bubble_fraction']:.3g}, communication {_seconds(n['comm_seconds'])})"]
    if "step_seconds_predicted" in n:
        timing.append(f"  step, predicted:        {_seconds(n['step_seconds_predicted'])}  (MFU "
                      f"{n['mfu_predicted']:.3f}; the efficiency entry in the notes)")
    if "mfu_measured" in n:
        timing.append(f"  measured {n['measured_tokens_per_second']:,.0f} tokens/s: MFU {n['mfu_measured']:.3f}, "
                      f"HFU {n['hfu_measured']:.3f}")
    if "steps" in n:
        timing.append(f"  {n['tokens']:,} tokens: {n['steps']:,} steps, {_seconds(n['train_seconds'])}, "
                      f"{n['gpu_hours']:,.0f} GPU-hours" + (f" (goodput {n['goodput']:g})" if n["goodput"] != 1 else "")
                      + (f", cost {n['cost']:,.0f} at {n['price_per_gpu_hour']:g} per GPU-hour" if "cost" in n else ""))
    lines += ["", "time (estimates, not measurements)", *(piece for line in timing for piece in wrap(line, limit))]
    if p.estimates:
        lines += ["", "published estimates against the exact bytes"]
        for e in p.estimates:
            lines += wrap(f"  {e['name']} ({e['source']}): {bytes_human(e['estimate'])} vs {bytes_human(e['exact'])}"
                          f" {e['metric']}, {100 * e['relative_error']:+.1f}%", limit)
    lines.append("")
    return "\n".join(lines + [piece for note in p.notes for piece in wrap(f"* {note}", limit)])


SEARCH_KEYS = ("tp", "pp", "dp", "ep", "cp", "micro_batch", "sequence_parallel", "zero", "recompute")


def search_data(found) -> dict:
    top = found.top
    return {
        "name": found.name, "gpus": found.gpus, "hardware": found.hardware, "evaluated": found.evaluated,
        "fitting": len(found.rows), "smallest_bytes": found.smallest_bytes, **found.pipeline.given,
        "ranked_by": "roofline step time bound (an estimate)",
        "best": found.rows[:top], "pareto_front": found.front,
        "plans": [plan_data(p) for p in found.best],
    }


def search_text(found, limit: int | None = None) -> str:
    limit, top = limit or width(), found.top
    held = f", {found.pipeline.said}" if found.pipeline.given else ""
    lines = wrap(f"{found.name} on {found.gpus} x {found.hardware}: {found.evaluated:,} layouts evaluated{held}, "
                 f"{len(found.rows):,} fit", limit)
    if not found.rows:
        return "\n".join(lines + [f"none fits: the smallest needs {bytes_human(found.smallest_bytes)} per GPU", ""])
    head = ("tp", "pp", "dp", "ep", "cp", "mb", "sp", "zero", "recompute", "memory/GPU", "step (bound)")

    def cells(r):
        return (*(str(r[k]) for k in ("tp", "pp", "dp", "ep", "cp", "micro_batch")),
                "yes" if r["sequence_parallel"] else "no", str(r["zero"]), r["recompute"],
                bytes_human(r["memory_bytes"]), f"{r['step_seconds_bound']:.3g} s")

    from .text import table

    lines += ["", f"fastest {min(top, len(found.rows))} (roofline bound, an estimate):",
              *table(head, [cells(r) for r in found.rows[:top]], limit), "",
              f"Pareto front, memory against time ({len(found.front)} layouts):",
              *table(head, [cells(r) for r in found.front], limit), ""]
    if found.best:
        lines += ["the fastest, planned exactly:", "", plan_text(found.best[0])]
    return "\n".join(lines)
