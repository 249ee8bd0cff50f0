"""The one table of metric names: what each is called in the API, in JSON and on the
command line, its label in text output, and its unit. Light on purpose: the CLI's
option choices come from here without importing sympy."""

from __future__ import annotations

from collections import namedtuple

# name: the key in results, JSON and --metric; label: in text output (a {field} in it is filled by the
# result: inference's context); unit: params, flops, bytes, seconds, ratio, tokens, flops/s, tokens/s,
# dollars; group: which result computes it — cost (a Cost's, summed over the tree), per_input, memory
# (memory.py), verify, plan, inference, scaling; short: the label where a table's column is narrow
# (plan's memory per GPU), if it differs
Metric = namedtuple("Metric", "name label unit group short", defaults=(None,))


_TABLE = (
    Metric("params", "params", "params", "cost"),
    Metric("params_trainable", "trainable params", "params", "cost"),
    Metric("params_frozen", "frozen params", "params", "cost"),
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
    # plan/pieces.py's transient: the logits and their gradients, a re-materialised pass, a gathered layer
    Metric("transient_bytes", "backward's transients (an estimate)", "bytes", "plan", "+ transients"),
    Metric("peak_bytes", "peak (an estimate)", "bytes", "plan", "peak"),  # total + transients: fits reads it
    Metric("prefill", "prefill FLOPs (a prompt of seq_len tokens)", "flops", "inference"),
    Metric("step", "decode step FLOPs (context = {context})", "flops", "inference"),
    Metric("generation", "generating {new_tokens} tokens after the prompt", "flops", "inference"),
    Metric("step_bytes", "bytes a step moves (active weights + cache)", "bytes", "inference"),
    Metric("intensity", "arithmetic intensity of a step (FLOPs/byte)", "ratio", "inference"),
    # serve: a replica's GPU (exact bytes and counts), and time bounds (estimates)
    Metric("kv_bytes_per_sequence", "KV cache a sequence", "bytes", "serve"),
    Metric("activation_reserve_bytes", "activation reserve", "bytes", "serve"),
    Metric("kv_pool_bytes", "KV cache pool per GPU", "bytes", "serve"),
    Metric("shared_prefix_bytes", "shared prefix's KV cache, held once", "bytes", "serve"),
    Metric("memory_utilization_needed", "memory utilization the batch needs", "ratio", "serve"),
    Metric("kv_bytes_per_request", "a prompt's KV cache, moved prefill to decode", "bytes", "serve"),
    Metric("transfer_seconds", "its transfer, bound", "seconds", "serve"),
    Metric("routed_expert_bytes", "routed experts, in host memory", "bytes", "serve"),
    Metric("expert_cache_bytes", "routed experts cached on the GPU", "bytes", "serve"),
    Metric("hit_rate", "expert reads the cache answers", "ratio", "serve"),
    Metric("link_bytes_per_token", "bytes over the host link a token", "bytes", "serve"),
    Metric("link_seconds_per_token", "host link time a token, bound", "seconds", "serve"),
    Metric("tokens_per_second_ceiling", "decode tokens/s of one sequence, bound", "tokens/s", "serve"),
    Metric("prefill_replicas_per_decode_replica", "prefill replicas a decode replica keeps busy", "ratio", "serve"),
    Metric("capacity_tokens", "KV capacity, tokens", "tokens", "serve"),
    Metric("blocks", "KV blocks", "ratio", "serve"),
    Metric("max_concurrency", "max concurrency", "ratio", "serve"),
    Metric("flops_per_step", "FLOPs a decode step", "flops", "serve"),
    Metric("bytes_per_step", "bytes a decode step moves", "bytes", "serve"),
    Metric("seconds_bound", "seconds, roofline bound", "seconds", "serve"),
    Metric("compute_bound_batch", "batch from which decode is compute-bound", "ratio", "serve"),
    Metric("ttft_seconds", "time to first token, bound", "seconds", "serve"),
    Metric("tpot_seconds", "time per output token, bound", "seconds", "serve"),
    Metric("tokens_per_second_per_gpu", "decode tokens/s per GPU, bound", "tokens/s", "serve"),
    Metric("seconds_predicted", "seconds, predicted (efficiency file)", "seconds", "serve"),
    Metric("ttft_seconds_predicted", "time to first token, predicted", "seconds", "serve"),
    Metric("tpot_seconds_predicted", "time per output token, predicted", "seconds", "serve"),
    Metric("compute_seconds", "seconds of its FLOPs at the dense peak", "seconds", "serve"),
    Metric("memory_seconds", "seconds of its bytes at the HBM bandwidth", "seconds", "serve"),
    Metric("comm_bytes", "bytes a GPU sends (tp all-reduces, ep all-to-all)", "bytes", "serve"),
    Metric("comm_bytes_per_step", "bytes a GPU sends a decode step", "bytes", "serve"),
    Metric("measured_tokens_per_second_per_gpu", "output tokens/s per GPU, measured", "tokens/s", "serve"),
    Metric("prediction_error", "predicted / measured - 1", "ratio", "serve"),
    Metric("output_tokens", "tokens the batch generates", "tokens", "serve"),
    Metric("tokens_per_second_per_gpu_bound", "output tokens/s per GPU, prefill included, bound", "tokens/s", "serve"),
    Metric("tokens_per_second_per_gpu_predicted", "output tokens/s per GPU, prefill included, predicted", "tokens/s",
           "serve"),
    Metric("tokens_per_step", "expected tokens a verify step", "ratio", "serve"),
    Metric("speedup_bound", "speculative speedup (ratio of bounds)", "ratio", "serve"),
    Metric("draft_weights_bytes", "draft's weights per GPU", "bytes", "serve"),
    Metric("draft_kv_bytes_per_sequence", "draft's KV cache a sequence", "bytes", "serve"),
    Metric("draft_seconds_bound", "a draft step, bound", "seconds", "serve"),
    Metric("verify_seconds_bound", "a verify step, bound", "seconds", "serve"),
    # plan: a rank's bytes and what the run's time and cost are estimated from (time is a model)
    Metric("memory_bytes", "memory per GPU", "bytes", "plan"),
    Metric("usable_bytes", "memory per GPU a plan may fill (all but the headroom)", "bytes", "plan"),
    Metric("host_bytes", "host memory per GPU of an offloaded run", "bytes", "plan"),
    Metric("smallest_bytes", "least memory per GPU of any layout", "bytes", "plan"),
    Metric("payload_bytes", "bytes a collective's call carries", "bytes", "plan"),
    Metric("sent_bytes", "bytes a rank sends a step", "bytes", "plan"),
    Metric("bytes_moved", "bytes a piece moves through memory", "bytes", "plan"),
    Metric("seconds", "seconds (roofline bound)", "seconds", "plan"),
    Metric("step_seconds", "step time at the assumed MFU", "seconds", "plan"),
    Metric("step_seconds_bound", "step time, roofline bound", "seconds", "plan"),
    Metric("compute_bound_seconds", "compute time, roofline bound", "seconds", "plan"),
    Metric("comm_seconds", "communication time at the links' bandwidth", "seconds", "plan"),
    Metric("bubble_fraction", "pipeline bubble", "ratio", "plan"),
    Metric("mfu_assumed", "MFU assumed", "ratio", "plan"),
    Metric("mfu_at_bound", "MFU at the roofline bound", "ratio", "plan"),
    Metric("step_seconds_predicted", "step time, predicted (efficiency file)", "seconds", "plan"),
    Metric("stage_seconds_predicted", "the slowest stage's micro-batches, predicted, bubble apart", "seconds", "plan"),
    Metric("mfu_predicted", "MFU at the predicted step time", "ratio", "plan"),
    Metric("stage_compute_seconds", "the slowest stage's FLOPs at the dense peak", "seconds", "plan"),
    Metric("stage_memory_seconds", "the slowest stage's HBM traffic at the bandwidth", "seconds", "plan"),
    Metric("measured_step_seconds", "step time, measured", "seconds", "plan"),
    Metric("mfu_measured", "MFU from the measured throughput", "ratio", "plan"),
    Metric("hfu_measured", "HFU from the measured throughput", "ratio", "plan"),
    Metric("peak_flops", "dense peak FLOP/s per GPU", "flops/s", "plan"),
    Metric("tokens_per_step", "tokens per step", "tokens", "plan"),
    Metric("tokens_per_second", "tokens per second", "tokens/s", "plan"),
    Metric("measured_tokens_per_second", "tokens per second, measured", "tokens/s", "plan"),
    Metric("steps", "steps", "ratio", "plan"),
    Metric("train_seconds", "training time", "seconds", "plan"),
    Metric("train_days", "training days", "ratio", "plan"),
    Metric("gpu_hours", "GPU-hours", "ratio", "plan"),
    Metric("goodput", "share of the run's time on steps that count (an input)", "ratio", "plan"),
    Metric("price_per_gpu_hour", "dollars per GPU-hour", "dollars", "plan"),
    # budget and scaling: a run's compute and what a law predicts of it (an extrapolation)
    Metric("tokens", "training tokens", "tokens", "scaling"),
    Metric("train_flops", "training FLOPs", "flops", "scaling"),
    Metric("train_flops_per_token", "training FLOPs per token", "flops", "scaling"),
    Metric("flops_per_token", "training FLOPs per token", "flops", "scaling"),
    Metric("law_params", "N as the law counts it", "params", "scaling"),
    Metric("loss", "predicted loss", "ratio", "scaling"),
    Metric("loss_with_exact_compute", "predicted loss, the spec's exact compute", "ratio", "scaling"),
    Metric("target_loss", "loss to reach", "ratio", "scaling"),
    Metric("served_tokens", "tokens served", "tokens", "scaling"),
    Metric("train_tokens", "training tokens", "tokens", "scaling"),
    Metric("serve_flops", "serving FLOPs", "flops", "scaling"),
    Metric("total_flops", "training and serving FLOPs", "flops", "scaling"),
)
BY_NAME = {m.name: m for m in _TABLE}

# Every other key a --format json document holds names its structure, not a measured quantity; each
# means one thing in every document that has it. Keys under DATA_KEYED are names from the input
# (dims, parts, stages, collectives, parallel sizes), not vocabulary.
STRUCTURE = {
    # what was asked, and of what
    "name": "the spec's name (an estimate's, in approx's estimates)", "convention": "the FLOP convention",
    "kind": "a component's layer type", "path": "a component's place in the spec", "dims": "every dim's value "
    "(or, in derive, its closed form)", "device": "where verify built the model", "input_unit": "what one input is "
    "(token, image)", "inputs": "inputs a forward pass reads", "unknown": "the dim solved for", "fixed": "the other "
    "dims' values", "at": "the dims a row is evaluated at", "context": "cached tokens a decode step attends to",
    "new_tokens": "tokens generated", "recompute": "activation recomputation", "attention": "the attention kernel",
    "optimizer": "the optimizer (its states' dtype, under dtypes)", "law": "a scaling law's name",
    "law_source": "the law's citation", "n_means": "what the law's N counts for this spec", "rule": "how an "
    "optimum is derived", "method": "how the fit was made", "ranked_by": "what a search's order rests on",
    "source": "where a number comes from (a datasheet, a paper)", "key": "the hardware's catalog entry",
    "hardware": "the GPU", "stage": "a pipeline stage", "metric": "a metric's name (one of this table's)",
    "selector": "a part named by path:part", "in": "the dim a crossover varies", "yaml": "an imported spec's text",
    "ignored": "config fields that change no count", "headroom": "the share of each GPU's memory a plan keeps free",
    # groups of figures
    "flops": "FLOP metrics by name (forward, backward, train), or plan's per step", "flops_per_input": "FLOP "
    "metrics per input (token, image)", "bytes": "byte metrics by name", "formulas": "closed forms of the metrics, "
    "by name", "components": "one row per component", "parts": "a component's parts, by name", "leading":
    "leading terms, by dim", "free_symbols": "the dims the forms depend on", "activations_by_component": "each "
    "component's activation bytes", "per_gpu": "the most loaded rank's bytes", "per_stage": "each pipeline stage's "
    "figures", "comm": "a rank's communication", "records": "one collective each", "sent_bytes_by_collective":
    "bytes sent, by collective", "sent_bytes_by_dim": "bytes sent, by parallel dim", "time": "the step-time "
    "estimates", "training": "the run's length", "cost": "the run's price", "total": "the sum", "execution":
    "the parallel layout and schedule", "dtypes": "bytes per value, by tensor", "roofline_by_component": "each "
    "piece's roofline", "published_estimates": "published estimates beside the exact counts", "estimates": "one "
    "published estimate each", "rows": "one row per point", "points": "one row per point of the grid",
    "points_checked": "grid points whose constraints were checked", "roots": "the sizes that solve the equation",
    "above": "the nearest valid size above", "below": "the nearest valid size below", "skipped_above": "invalid "
    "sizes passed over above", "skipped_below": "invalid sizes passed over below", "reason": "why a size is invalid",
    "a": "the first of two (spec or part)", "b": "the second of two", "best": "the best rows", "pareto_front":
    "layouts no other beats on both memory and time", "plans": "the best layouts planned exactly", "specs":
    "one row per spec", "exact": "the exact figure (the best size, with exact compute)", "six_nd": "the law's 6ND "
    "optimum", "spec_size_holding_it": "the spec's size nearest the 6ND optimum's N", "inference_aware": "the "
    "optimum with serving", "training_optimal": "the training optimum, served", "fit": "a fitted law's "
    "parameters", "ci": "95% bootstrap intervals, by parameter", "approaches": "Hoffmann et al.'s approaches 1 "
    "and 2", "approach_1": "minimum loss per FLOP budget", "approach_2": "iso-FLOP parabolas",
    # single values
    "value": "a number", "formula": "its closed form", "equation": "the equation solved", "general": "the "
    "crossover in closed form", "identical": "whether the two parts cost the same everywhere", "fits": "whether "
    "the plan fits the GPU's memory", "fitting": "layouts that fit", "evaluated": "layouts evaluated", "match":
    "whether symbolic equals measured", "symbolic": "symcost's figure", "measured": "PyTorch's or transformers' "
    "figure", "note": "why a row differs", "notes": "what a result assumes", "warnings": "what a fit doubts",
    "unattributed_flops": "FLOPs no component claims", "unattributed_bytes": "saved bytes no component claims",
    "relative_error": "an estimate's error, closed form", "relative_error_here": "an estimate's error here",
    "estimate": "an estimate's value", "ratio_b_over_a": "b's figure over a's", "size": "the free dim's size",
    "objective": "the fit's Huber loss", "starts": "initialisations tried", "converged": "starts that converged",
    "residuals": "log L - log fit, per run", "k": "N_opt = k C^a: k", "n_opt": "N_opt at each budget",
    "calls": "a collective's calls per step", "group": "ranks in the collective", "collective": "its kind",
    "pass": "forward or backward", "dim": "the parallel dim it runs over", "bound": "compute or memory",
    "serving_flops_per_token": "how a served token is priced", "model_per_step": "model FLOPs a step",
    "mfu_per_step": "a step's FLOPs as the MFU convention counts them", "mfu_convention": "what MFU counts: "
    "pytorch, causal (kept scores only) or 6nd",
    "hardware_per_step": "hardware FLOPs a step (recomputation too)", "rank_per_step": "a rank's FLOPs a step",
    "model_formula": "model FLOPs a step, closed form",
    "activations": "activation bytes per value", "grads": "gradient "
    "bytes per value", "weights": "weight bytes per value", "master_weights": "whether fp32 master weights are "
    "kept", "E": "L(N, D) = E + A/N^alpha + B/D^beta: E", "A": "the law's A", "B": "the law's B", "alpha":
    "the law's alpha", "beta": "the law's beta",
    # serve's groups and settings (serve/serve.py: Serving; quantization.py)
    "serving": "the replica's layout and the engine's settings", "replicas": "copies of the model on the GPUs",
    "memory_utilization": "the share of a GPU's memory the engine may use", "block_size": "tokens a KV block "
    "holds", "prompt": "tokens a request's prompt holds", "output": "tokens a request generates", "concurrency":
    "sequences a replica decodes together", "max_num_batched_tokens": "tokens the largest prefill chunk holds",
    "quantization": "how the linears are stored (null: in the weights' dtype)", "format": "a quantization format",
    "which": "the linears a format stores", "bits": "bits a stored value", "double_quant": "whether block "
    "constants are quantized too", "kv": "the KV cache pool", "decode": "one "
    "decode step of the batch", "speculative": "speculative decoding", "gamma": "draft tokens a verify step",
    "acceptance": "acceptance rates, per drafted token", "batch": "sequences in the step", "flops_in_bound":
    "whether a decode step's bound counts its FLOPs (not for MLA: its reference re-expands the cache)", "prefix":
    "prompt tokens every request shares", "curve": "the throughput-latency curve, one row per batch",
    "disaggregated": "prefill and decode on separate pools", "efficiency": "an efficiency entry (plan/efficiency.py)",
    "matmul": "achieved share of the dense peak", "memory": "achieved share of the HBM bandwidth", "link":
    "achieved share of the links' bandwidth", "fitted_on": "the "
    "runs an entry was fitted on", "held_out": "runs checked, not fitted (or whether a run was)", "held_out_error":
    "the largest |predicted / measured - 1| of the held-out runs", "date": "when a figure was checked", "runs": "one "
    "row per timed run", "throughput": "a batch of requests prefilled "
    "together and decoded to their ends",
    "offload": "what host memory holds (serve: the routed experts; plan: ZeRO-Offload's shards)",
    "offload_experts": "whether the routed experts are offloaded", "lengths": "the requests' (prompt, output, "
    "count) where a file mixes them", "hit_rate_assumed": "whether the hit rate is "
    "the cached share (routing assumed even) rather than given",
    "matmuls": "the dtype the matmuls run in, whose dense peak time and MFU read (plan --matmul-dtype)",
    "mtp": "multi-token prediction modules, counted apart from the model (a spec's mtp block)",
    "depth": "how many multi-token prediction modules",
    # the execution record's fields (plan/execution.py: Execution)
    **{f: "the execution's field (plan --help)" for f in (
        "gpus", "tp", "pp", "dp", "ep", "cp", "sequence_parallel", "zero", "micro_batch", "global_batch",
        "microbatches", "virtual_stages", "schedule", "first_stage_layers", "last_stage_layers", "stage_layers",
        "vocab_multiple")},
}
DATA_KEYED = ("dims", "leading", "parts", "per_stage", "sent_bytes_by_collective", "sent_bytes_by_dim", "fixed", "at")


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
