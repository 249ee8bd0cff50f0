"""The one table of metric names: what each is called in the API, in JSON and on the
command line, its label in text output, and its unit. Light on purpose: the CLI's
option choices come from here without importing sympy."""

from __future__ import annotations

from collections import namedtuple

# name: the key in results, JSON and --metric; label: in text output (a {field} in it is filled by the
# result: inference's context); unit: params, flops, bytes or ratio; group: which result computes it —
# cost (a Cost's, summed over the tree), per_input, memory (memory.py), verify, plan, inference; short:
# the label where a table's column is narrow (plan's memory per GPU), if it differs
Metric = namedtuple("Metric", "name label unit group short", defaults=(None,))


_TABLE = (
    Metric("params", "params", "params", "cost"),
    Metric("active_params", "active params", "params", "cost"),
    Metric("forward", "forward FLOPs", "flops", "cost"),
    Metric("backward", "backward FLOPs", "flops", "cost"),
    Metric("train", "train FLOPs", "flops", "cost"),
    Metric("forward_per_input", "forward FLOPs per token", "flops", "per_input"),  # per image, where inputs are
    Metric("train_per_input", "train FLOPs per token", "flops", "per_input"),
    Metric("uses_per_weight", "uses/weight/input", "ratio", "per_input"),  # multiply-adds per active weight
    Metric("weights_bytes", "weights", "bytes", "memory"),
    Metric("active_weights_bytes", "active weights", "bytes", "memory"),
    Metric("kv_cache_bytes", "KV cache (seq_len x batch)", "bytes", "memory"),
    Metric("kv_bytes_per_token", "KV cache per token", "bytes", "memory"),
    Metric("inference_bytes", "weights + KV cache", "bytes", "memory"),
    Metric("gradient_bytes", "gradients", "bytes", "memory"),
    Metric("optimizer_bytes", "optimizer states, master weights", "bytes", "memory", "optimizer states"),
    Metric("train_state_bytes", "training state", "bytes", "memory"),
    Metric("activation_bytes", "activations", "bytes", "memory"),
    Metric("backward_transient_bytes", "logits and their gradients", "bytes", "memory"),
    Metric("peak_training_bytes", "peak, training step", "bytes", "memory"),
    Metric("prefill_transient_bytes", "prefill working set", "bytes", "memory"),
    Metric("peak_inference_bytes", "peak, inference", "bytes", "memory"),
    Metric("saved_bytes", "saved bytes", "bytes", "verify"),  # verify --memory: what backward keeps
    Metric("total_bytes", "total", "bytes", "plan"),  # a GPU's weights, gradients, optimizer states, activations
    Metric("prefill", "prefill FLOPs (a prompt of seq_len tokens)", "flops", "inference"),
    Metric("step", "decode step FLOPs (context = {context})", "flops", "inference"),
    Metric("generation", "generating {new_tokens} tokens after the prompt", "flops", "inference"),
    Metric("step_bytes", "bytes a step moves (active weights + cache)", "bytes", "inference"),
    Metric("intensity", "arithmetic intensity of a step (FLOPs/byte)", "ratio", "inference"),
)
BY_NAME = {m.name: m for m in _TABLE}


def group(name: str) -> tuple[str, ...]:
    return tuple(m.name for m in _TABLE if m.group == name)


METRICS = group("cost")
PER_INPUT = group("per_input")[:2]  # the FLOPs per input; uses_per_weight is a ratio beside them
MEMORY_METRICS = group("memory")
INFERENCE = group("inference")
ALL_METRICS = METRICS + MEMORY_METRICS


def label(name: str, short: bool = False, unit: bool = False, **fields) -> str:
    """The metric's label; `short`: its narrow form; `unit`: with "(bytes)" after a byte count, where
    a table mixes units (compare); `fields` fill the label's {placeholders}."""
    m = BY_NAME[name]
    text = ((m.short or m.label) if short else m.label).format(**fields)
    return f"{text} (bytes)" if unit and m.unit == "bytes" else text


def shaped(values: dict) -> dict:
    """Metric values in the one shape every document uses, at every level (totals, components,
    parts, compared specs): FLOP metrics under `flops` by their names (`flops: {forward, backward,
    train}`), per-input ones under `flops_per_input` (`forward_per_input` as `flops_per_input:
    {forward}`), the others at the top; keys not in the table pass through."""
    out: dict = {}
    for name, value in values.items():
        if name in BY_NAME and BY_NAME[name].unit == "flops" and BY_NAME[name].group in ("cost", "per_input"):
            per_input = name.endswith("_per_input")
            group = out.setdefault("flops_per_input" if per_input else "flops", {})
            group[name.removesuffix("_per_input")] = value
        else:
            out[name] = value
    return out
