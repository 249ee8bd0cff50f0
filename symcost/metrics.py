"""The one table of metric names: what each is called in the API, in JSON and on the
command line, its label in text output, and its unit. Light on purpose: the CLI's
option choices come from here without importing sympy."""

from __future__ import annotations

from collections import namedtuple

# name: the key in results, JSON and --metric; label: in text output; unit: params, flops or bytes
Metric = namedtuple("Metric", "name label unit")


_TABLE = (
    Metric("params", "params", "params"),
    Metric("active_params", "active params", "params"),
    Metric("forward", "forward FLOPs", "flops"),
    Metric("backward", "backward FLOPs", "flops"),
    Metric("train", "train FLOPs", "flops"),
    Metric("weights_bytes", "weights", "bytes"),
    Metric("active_weights_bytes", "active weights", "bytes"),
    Metric("kv_cache_bytes", "KV cache (seq_len x batch)", "bytes"),
    Metric("kv_bytes_per_token", "KV cache per token", "bytes"),
    Metric("inference_bytes", "weights + KV cache", "bytes"),
    Metric("gradient_bytes", "gradients", "bytes"),
    Metric("optimizer_bytes", "optimizer states, master weights", "bytes"),
    Metric("train_state_bytes", "training state", "bytes"),
    Metric("activation_bytes", "activations", "bytes"),
    Metric("backward_transient_bytes", "logits and their gradients", "bytes"),
    Metric("peak_training_bytes", "peak, training step", "bytes"),
    Metric("prefill_transient_bytes", "prefill working set", "bytes"),
    Metric("peak_inference_bytes", "peak, inference", "bytes"),
)
BY_NAME = {m.name: m for m in _TABLE}
METRICS = tuple(m.name for m in _TABLE if m.unit != "bytes")  # from the cost tree
MEMORY_METRICS = tuple(m.name for m in _TABLE if m.unit == "bytes")  # from memory.py
ALL_METRICS = METRICS + MEMORY_METRICS


def label(name: str) -> str:
    return BY_NAME[name].label
