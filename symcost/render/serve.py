"""serve's document and text: memory and capacity (exact), then the time bounds (estimates)."""

from __future__ import annotations

import textwrap

from ..metrics import label
from .text import bytes_human, fit, table, width


def serve_data(s) -> dict:
    v, hw = s.serving, s.hardware
    return {
        "name": s.name,
        "hardware": {"key": s.hardware_key, "name": hw.name, "memory_bytes": hw.memory_bytes, "source": hw.source},
        "serving": {"tp": v.tp, "pp": v.pp, "dp": v.dp, "ep": v.ep, "gpus": v.replica * v.replicas,
                    "replicas": v.replicas,
                    "memory_utilization": v.memory_utilization, "block_size": v.block_size, "prompt": v.prompt,
                    "output": v.output, "lengths": [list(x) for x in v.lengths], "prefix": v.prefix,
                    "offload_experts": v.offload_experts,
                    "concurrency": s.numbers["decode"]["batch"], "max_num_batched_tokens": v.max_num_batched_tokens,
                    "dtypes": {k: v.precision.dtype(k) for k in ("weights", "kv")}},
        "quantization": None if s.quantization is None else s.quantization.model_dump(),
        "convention": "kernel",  # the FLOPs the bounds divide by the peak (conventions.py)
        "dims": s.dims,
        **s.numbers,
        "estimate": True,  # the times: roofline bounds, and predictions where an efficiency entry is given
        "notes": list(s.notes),
    }


def _seconds(t: float) -> str:
    return f"{t * 1e3:.4g} ms" if t < 1 else f"{t:.4g} s"


def serve_text(s, limit: int | None = None) -> str:
    limit = limit or width()
    n, v = s.numbers, s.serving
    g, kv, d = n["per_gpu"], n["kv"], n["decode"]
    rows = [
        (label("weights_bytes") + " per GPU", bytes_human(g["weights_bytes"])),
        (label("kv_bytes_per_token") + " per GPU", f"{g['kv_bytes_per_token']:,} B"),
        (label("kv_bytes_per_sequence") + (f" ({v.prompt:,} + {v.output:,} tokens)" if not v.lengths
                                             else f" (mean of {v.requests:,} requests)"),
         bytes_human(g["kv_bytes_per_sequence"])),
        (label("activation_reserve_bytes") + " (estimate)", bytes_human(g["activation_reserve_bytes"])),
        (label("kv_pool_bytes"), bytes_human(g["kv_pool_bytes"])),
        (label("capacity_tokens"), "-" if kv["capacity_tokens"] is None else
         f"{kv['capacity_tokens']:,} ({kv['blocks']:,} blocks of {v.block_size})"),
        (label("max_concurrency"), f"{n['max_concurrency']:,}" if n["max_concurrency"] is not None else "-"),
        (label("memory_utilization_needed") + f" ({d['batch']:,})", f"{n['memory_utilization_needed']:.4f}"),
    ]
    if v.prefix:
        rows.insert(3, (label("shared_prefix_bytes") + f" ({v.prefix:,} tokens)",
                        bytes_human(g["shared_prefix_bytes"])))
    bounds = [
        ("TTFT (prefill of one prompt)" if not v.lengths else "TTFT (the requests' prefills, mean)",
         _seconds(n["ttft_seconds"])),
        (f"TPOT (batch {d['batch']:,}, context {d['context']:,})", _seconds(n["tpot_seconds"])),
        (label("tokens_per_second_per_gpu"), f"{n['tokens_per_second_per_gpu']:,.0f}"),
        (f"output tokens/s per GPU, prefill included (batch {n['throughput']['batch']:,})",
         f"{n['throughput']['tokens_per_second_per_gpu_bound']:,.0f}"),
        (label("compute_bound_batch"), "-" if not d["flops_in_bound"] else
         "never" if d["compute_bound_batch"] is None else f"{d['compute_bound_batch']:,}"),
    ]
    guess = n["throughput"]["seconds_predicted"] is not None
    if guess:
        bounds += [("predicted: TTFT", _seconds(n["ttft_seconds_predicted"])),
                   ("predicted: TPOT", _seconds(n["tpot_seconds_predicted"])),
                   ("predicted: output tokens/s per GPU, prefill included",
                    f"{n['throughput']['tokens_per_second_per_gpu_predicted']:,.0f}")]
    dis = n["disaggregated"]
    bounds += [
        ("disaggregated: " + label("kv_bytes_per_request"), bytes_human(dis["kv_bytes_per_request"])),
        ("disaggregated: " + label("transfer_seconds"), _seconds(dis["transfer_seconds"])),
        ("disaggregated: " + label("prefill_replicas_per_decode_replica"),
         f"{dis['prefill_replicas_per_decode_replica']:.3g}"),
    ]
    if "offload" in n:
        o = n["offload"]
        bounds += [
            ("offload: " + label("routed_expert_bytes"), bytes_human(o["routed_expert_bytes"])),
            ("offload: " + label("expert_cache_bytes"), bytes_human(o["expert_cache_bytes"])),
            ("offload: " + label("hit_rate") + (" (assumed)" if o["hit_rate_assumed"] else ""), f"{o['hit_rate']:.3f}"),
            ("offload: " + label("link_bytes_per_token"), bytes_human(o["link_bytes_per_token"])),
            ("offload: " + label("tokens_per_second_ceiling"), f"{o['tokens_per_second_ceiling']:,.1f}"),
        ]
    if "speculative" in n:
        sp = n["speculative"]
        bounds += [
            (f"speculative: tokens a verify step (γ {sp['gamma']})", f"{sp['tokens_per_step']:.4g}"),
            ("speculative: draft weights, KV a sequence, per GPU",
             f"{bytes_human(sp['draft_weights_bytes'])}, {bytes_human(sp['draft_kv_bytes_per_sequence'])}"),
            ("speculative: TPOT", _seconds(sp["tpot_seconds"])),
            (label("speedup_bound"), f"{sp['speedup_bound']:.3g}x"),
        ]
    name = s.name + (f" ({', '.join(f'{k}={x}' for k, x in s.given.items())})" if s.given else "")
    layout = f"tp {v.tp}, pp {v.pp}" + (f", dp {v.dp}" if v.dp > 1 else "") + (", ep" if v.ep else "")
    title = f"{name} served on {v.replica} x {s.hardware.name} ({layout})" + (
        f", {v.replicas} replicas" if v.replicas > 1 else "")
    out = [fit(title, limit), "", *table(("memory and capacity (exact)", "per GPU"), rows, limit), "",
           *table(("time (estimates: roofline bounds" + ("; predicted by the efficiency file)" if guess else ")"), ""),
                  bounds, limit), "",
           *table(("batch", "TPOT bound", *(("TPOT predicted",) if guess else ()), "tokens/s per GPU (bound)",
                   "memory utilization"),
                  [(f"{r['batch']:,}", _seconds(r["tpot_seconds"]),
                    *((_seconds(r["tpot_seconds_predicted"]),) if guess else ()),
                    f"{r['tokens_per_second_per_gpu']:,.0f}", f"{r['memory_utilization_needed']:.4f}")
                   for r in n["curve"]], limit), "", "notes:"]

    # prose: broken at spaces (text.wrap breaks formulas at their terms and commas)
    out += [piece for note in s.notes for piece in textwrap.wrap(note, limit, initial_indent="* ",
                                                                 subsequent_indent="  ")]
    return "\n".join(out)
