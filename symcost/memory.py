"""Memory in bytes: weights, KV cache, training state and activations — closed forms that
consume a derivation's cost (the model's cost stays free of hardware and precision).

- weights: params x bytes per weight; active weights likewise (what one token reads).
- KV cache: the cache values of the derivation (a causal layer's keys and values for
  every token of context, at most window - 1 for a sliding window; MLA's latent and rope
  key; cross-attention's keys and values of the encoder output; a recurrent state) x bytes.
  Per token: its growth with seq_len before any window fills, per sequence.
- training state (mixed-precision training as in Micikevicius et al. 2018 and ZeRO,
  Rajbhandari et al. 2020, Sec. 3.1): weights + gradients + optimizer states (Adam: two
  moments) + fp32 master weights when the weights are not fp32 — 16 bytes per parameter
  for bf16 weights with Adam.
- activations: the bytes one training forward keeps for backward, summed from each layer
  type's rule (Cost.saved and the attention core's share, in symbols.ACT), which equal what
  `saved_tensors_hooks` sees on the reference build (measure/saved.py, `verify --memory`);
  attention run eager (n x n probabilities kept) or as PyTorch's SDPA (output and
  log-sum-exp); recomputation none, selective (each attention core) or full (each pass of a
  top-level repeat block keeps only its input).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy

from . import symbols
from .derive import Derivation, mtp_notes
from .errors import SpecError
from .results import Result
from .precision import (ATTENTION, BYTES, OPTIMIZER_STATES, Precision, recompute_setting, recomputed_activations,
                        recomputed_cores, recomputed_layers)

ACTIVATION_ASSUMPTION = ("bytes one training forward keeps for backward (with the loss), per layer type, as "
                         "PyTorch saves them on the reference build: exact, checked by symcost verify --memory")


def kv_per_token(derivation: Derivation, cache: sympy.Expr) -> sympy.Expr:
    """The cache's growth per token of one sequence, before any sliding window fills; where entries close every
    m tokens (DeepSeek-V4's compressed attention: floor(n/m) of them), their growth on average, 1/m a token."""
    spec = derivation.spec
    if "seq_len" not in spec.dimset:
        return sympy.Integer(0)
    n = symbols.dim("seq_len")
    grows = cache.replace(sympy.Min, lambda *args: next((a for a in args if n in a.free_symbols), sympy.Min(*args)))
    grows = grows.replace(sympy.floor, lambda arg: arg)
    return sympy.expand(sympy.diff(grows, n) / spec.input_dim("batch", 1))


def saved_bytes(derivation: Derivation, attention: str = "sdpa", recompute: str = "none") -> dict[str, sympy.Expr]:
    """Bytes one training forward keeps for backward, per component path (in symbols.ACT,
    every dim; derived dims unsubstituted). Under `full` recomputation each pass of a
    top-level repeat block keeps only its input, charged to the block's path."""
    if attention not in ATTENTION:
        raise SpecError(f"attention {attention!r}: expected one of {', '.join(ATTENTION)}")
    recompute = recompute_setting(recompute)
    finetune = derivation.spec.finetune
    if finetune is not None and finetune.method == "dora":
        raise SpecError(DORA_MEMORY)
    blocks = derivation.blocks if recompute == "full" else ()
    inside = lambda path: any(path.startswith(b.path + "/") for b in blocks)
    whole, acts = checkpointed(derivation, recompute), recomputed_activations(recompute)
    if acts and finetune is not None:
        raise SpecError(ACTIVATIONS_TUNED, param="recompute")
    out = {n.path: n.cost.checkpoint if n.kind in whole else
           n.cost.activations(attention, recompute) + (n.cost.activation_checkpoint if acts else 0)
           for n in derivation.raw if not inside(n.path)}
    for b in blocks:
        out[b.path] = b.input_bytes + (b.count - 1) * b.later_bytes
        if b.then is not None:
            out[b.then[0]] += b.then[1]
    return out


ACTIVATIONS_TUNED = ("recomputing the activations alone under a fine-tune is not modelled: checkpoint the mlp or moe "
                     "layers whole")


def checkpointed(derivation: Derivation, recompute: str) -> frozenset[str]:
    """The spec's layer types a recompute list checkpoints whole (each keeping its input only): those whose
    recompute_part it names."""
    parts = recomputed_layers(recompute)
    return frozenset(s.component.kind for s in derivation.sites
                     if getattr(s.component, "recompute_part", None) in parts)


# bitsandbytes' paged optimizers (QLoRA's paged AdamW) keep their states in unified memory, which the
# driver moves to the CPU only when the GPU runs short: where they are at the peak is the driver's choice
PAGED = ("a paged optimizer (QLoRA's paged AdamW) would move its states to CPU memory when the GPU runs short: "
         "the peak counts them on the GPU")

DORA_MEMORY = ("DoRA's activation memory is not modelled: peft's DoRA rebuilds B·A from an identity matrix in every "
               "forward and keeps that detached product's tensors until the forward ends; its parameters and FLOPs "
               "are exact (derive, eval)")


def memory_metrics(
    derivation: Derivation, precision: Precision = Precision(), optimizer: str = "adam", recompute: str = "none",
    attention: str = "sdpa",
) -> dict[str, sympy.Expr]:
    """Byte counts as closed forms (derived dims substituted as in derivation.total)."""
    parts = activation_parts(derivation, precision, attention, recompute)
    return _metrics(derivation, precision, optimizer, recompute, attention, parts)


def activation_parts(derivation: Derivation, precision: Precision, attention: str, recompute: str) -> dict:
    """saved_bytes in closed form: the activations' dtype and the derived dims substituted."""
    return {path: _closed(derivation, precision, e) for path, e in saved_bytes(derivation, attention, recompute).items()}


def closer(derivation: Derivation, act):
    """A function putting a bytes expression in closed form: `act` bytes per activation value
    and the derived dims substituted (as in derivation.total)."""
    subst = derivation.spec.dimset.substitution(derivation.keep)
    return lambda e: sympy.sympify(e).xreplace({symbols.ACT: act}).xreplace(subst)


def _closed(derivation: Derivation, precision: Precision, e) -> sympy.Expr:
    return sympy.expand(closer(derivation, precision.bytes("activations"))(e))


def _metrics(derivation: Derivation, precision: Precision, optimizer: str, recompute: str, attention: str,
             parts: dict) -> dict[str, sympy.Expr]:
    if optimizer not in OPTIMIZER_STATES:
        raise SpecError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZER_STATES)}")
    t = derivation.total
    # quantized weights take their own bytes (QLoRA's, finetune.py; a served model's, quantization.py); a
    # fine-tune's gradients and optimizer states are its trainable parameters' only
    weights = (t.params - t.packed) * precision.bytes("weights") + t.packed_bytes
    kv = t.cache * precision.bytes("kv")
    held = precision.state_bytes(optimizer)
    closed = lambda e: _closed(derivation, precision, e)
    activations = sympy.expand(sum(parts.values()))
    grads, optimizer_states = t.trainable * precision.bytes("grads"), t.trainable * held
    backward = closed(backward_transient(derivation, attention, recompute))
    prefill = closed(prefill_transient(derivation, attention))
    return {
        "weights_bytes": weights,
        "active_weights_bytes": ((t.active_params - t.active_packed) * precision.bytes("weights")
                                 + t.active_packed_bytes),
        "kv_cache_bytes": kv,
        "kv_bytes_per_token": kv_per_token(derivation, kv),
        "inference_bytes": weights + kv,
        "gradient_bytes": grads,
        "optimizer_bytes": optimizer_states,
        "train_state_bytes": weights + grads + optimizer_states,
        "activation_bytes": activations,
        "backward_transient_bytes": backward,
        # gradients grow as activations are freed: the peak is at one end of the backward pass. Left
        # unevaluated: to order two sums, sympy may look for the real roots of their difference, a
        # polynomial of up to expr.MAX_DEGREE in one dim (before that bound, 2**28: CI's OOM kill)
        "peak_training_bytes": weights + optimizer_states + sympy.Max(*sympy.ordered((activations + backward, grads)),
                                                                      evaluate=False),
        "prefill_transient_bytes": prefill,
        "peak_inference_bytes": weights + kv + prefill,
    }


def logits_bytes(logits: sympy.Expr) -> sympy.Expr:
    """What `logits` values hold at the start of the backward pass: themselves, in the activations' dtype, and the
    fp32 gradients of the log-probabilities and of the (upcast) logits."""
    return logits * (8 + symbols.ACT)


def backward_transient(derivation: Derivation, attention: str, recompute: str) -> sympy.Expr:
    """What the start of the backward pass holds on top of the activations (an estimate, see
    PEAK_ASSUMPTION): the logits, which the training loop still holds, and the fp32 gradients of
    the log-probabilities and of the (upcast) logits — or, under QLoRA, the largest quantized
    weight dequantized for its matmul (in its compute dtype, by default the activations'), if
    larger; under full recomputation also the largest block pass, re-materialised, and under a recompute list
    the largest layer it checkpoints."""
    out = sympy.Integer(0)
    for site in derivation.sites:
        if getattr(site.component, "holds_logits", False):  # a site may hold a container (an encoder)
            out += logits_bytes(site.ctx.tokens * site.component.vocab)
    if packed := set(n for *_, n in derivation.linears if n != 0):
        compute = derivation.spec.finetune.compute_dtype
        out = sympy.Max(out, sympy.Max(*packed) * (BYTES[compute] if compute else symbols.ACT))
    if recompute == "full" and derivation.blocks:
        out += sympy.Max(*(_largest_pass(b, attention) for b in derivation.blocks))
    if whole := checkpointed(derivation, recompute):  # the largest checkpointed layer, re-materialised
        out += sympy.Max(*(n.cost.activations(attention, recompute) / n.count for n in derivation.raw
                           if n.kind in whole))
    return out


def _largest_pass(block, attention: str) -> sympy.Expr:
    """What the largest pass of a block keeps, re-materialised: every pass alike, or the first and the
    later ones (which exist from two passes on) apart."""
    first, later = block.first_pass.activations(attention), block.later_pass.activations(attention)
    if first == later:
        return first
    return sympy.Max(first, later * sympy.Min(1, block.count - 1))


def prefill_transient(derivation: Derivation, attention: str, logits: bool = True) -> sympy.Expr:
    """The prefill's working set on top of weights and cache (an estimate): the largest one
    layer materialises, taken as what it would keep for backward in training; without `logits`,
    of the layers but the LM head (a serving engine makes logits for the sampled tokens only)."""
    from .components import REGISTRY

    # nodes of containers (a residual's add, a hyper-connection's site) hold no logits
    nodes = [n for n in derivation.raw if logits or n.kind not in REGISTRY or not REGISTRY[n.kind].holds_logits]
    sets = [e for e in (sympy.cancel(n.cost.activations(attention) / n.count) for n in nodes) if e != 0]
    return sympy.Max(*sets) if sets else sympy.Integer(0)


PEAK_ASSUMPTION = ("peaks are estimates: training is weights and optimizer states, plus the larger of the "
                   "gradients and what the start of the backward pass holds (activations, the logits and "
                   "two fp32 gradients of them, tokens x vocab each, and under full recomputation one block pass); "
                   "inference is weights and KV cache, plus the largest layer's working set in prefill "
                   "(taken as what it would keep for backward); allocator rounding and fragmentation "
                   "are not modelled")


@dataclass(frozen=True, repr=False)
class MemoryReport(Result):
    """Byte counts as closed forms and at concrete sizes, with the assumptions behind them."""

    name: str
    exprs: dict[str, sympy.Expr]
    numbers: dict[str, sympy.Expr]
    notes: tuple[str, ...]
    activations: tuple[tuple[str, str, sympy.Expr, sympy.Expr], ...] = ()  # (path, type, formula, bytes)
    counts: tuple[sympy.Expr, ...] = ()  # the derivation's compound repeat counts, shown as factors
    held: dict = field(default_factory=dict)  # a fine-tune's trainable and frozen parameters (Derivation.held)
    dims: dict = field(default_factory=dict)  # the sizes the numbers are at (`--set` ones too)
    per_gpu: dict = field(default_factory=dict)  # with plan's settings: the most loaded rank's bytes (api.memory)

    def to_dict(self) -> dict:
        from .render.memory import memory_data

        return memory_data(self)

    def text(self, width: int | None = None, formulas: bool = False) -> str:
        from .render.memory import render_memory

        return render_memory(self, "text", width, formulas)

    def summary(self):
        from .metrics import label
        from .render.text import bytes_human

        return self.name, [(label(k), bytes_human(v)) for k, v in self.numbers.items()]


def memory(
    derivation: Derivation,
    values: Mapping[str, int] | None = None,
    precision: Precision = Precision(),
    optimizer: str = "adam",
    recompute: str = "none",
    attention: str = "sdpa",
) -> MemoryReport:
    """Memory at the spec's sizes (defaults, overridden by `values`), with its formulas."""
    from .evaluate import dim_values

    parts = activation_parts(derivation, precision, attention, recompute)
    exprs = _metrics(derivation, precision, optimizer, recompute, attention, parts)
    subst = dim_values(derivation, values)
    numbers = {k: e.xreplace(subst) for k, e in exprs.items()}
    notes = [
        f"weights {precision.dtype('weights')}, KV cache {precision.dtype('kv')}, gradients "
        f"{precision.dtype('grads')}, {optimizer} states {precision.dtype('optimizer')}"
        + (", fp32 master weights" if precision.master_weights else ""),
        f"activations ({precision.dtype('activations')}): {ACTIVATION_ASSUMPTION}; attention {attention}; "
        f"recomputation: {recompute}",
        PEAK_ASSUMPTION,
    ]
    if derivation.tuned:
        finetune = derivation.spec.finetune
        notes.insert(1, finetune.summary(derivation.held(subst)["params_trainable"])
                     + ("; the peak allows for the largest quantized weight dequantized for its matmul"
                        if finetune.storage is not None else "") + "; " + PAGED)
    if (stored := derivation.spec.quantization) is not None:
        notes.insert(1, f"linears stored {stored.label}: the inference figures hold; the training ones count "
                     "gradients and optimizer states for every weight, which a quantized checkpoint cannot train "
                     "(fine-tune it with qlora)")
    notes += recompute_notes(derivation, recompute) + dropout_notes(derivation, attention, recompute)
    missing = sorted({n.kind for n in derivation.raw if n.cost.saved.has(sympy.nan)})
    if missing:
        notes.append(f"activation bytes unknown (nan): the rule of {', '.join(missing)} needs a token count "
                     "(declare seq_len)")
    if (note := cache_note(derivation)) is not None:
        notes.append(note)
    notes += mtp_notes(derivation, values, "serving drops them; training them adds their weights, states and "
                                          "activations")
    kinds = {n.path: n.kind for n in derivation.raw}
    per_component = tuple((path, kinds.get(path, "repeat"), e, e.xreplace(subst)) for path, e in parts.items())
    return MemoryReport(derivation.spec.name, exprs, numbers, tuple(notes), per_component, derivation.compound_counts,
                        derivation.held(subst), derivation.spec.dimset.plain(subst))


def recompute_notes(derivation: Derivation, recompute: str) -> list[str]:
    """Where a recomputation mode has nothing to act on, or acts on part of the model: say so."""
    if recompute == "selective" and not any(getattr(site.component, "attends", None) for site in derivation.sites):
        return ["selective recomputation recomputes attention cores; this spec has none, so nothing is recomputed"]
    if recompute == "full" and not derivation.blocks:
        return ["full recomputation checkpoints top-level repeat blocks; this spec has none, so nothing is recomputed"]
    if recompute == "full":
        return ["full recomputation: each pass of a top-level repeat block keeps only its input; the layers "
                "outside those blocks keep what they keep without it"]
    notes = []
    if parts := recomputed_layers(recompute):
        missing = sorted(parts - {getattr(s.component, "recompute_part", None) for s in derivation.sites})
        notes.append(f"recomputed layers ({', '.join(sorted(parts - set(missing))) or 'none'}): each checkpointed "
                     "whole, as torch.utils.checkpoint does, keeping its input and running its forward again in "
                     "backward" + (f"; this spec has no {' or '.join(missing)} layer" if missing else ""))
    if "attention" in recompute.split(",") and not any(getattr(s.component, "attends", None) for s in derivation.sites):
        notes.append("attention's core is named for recomputation; this spec has none")
    if recomputed_activations(recompute):
        notes.append("recomputed activations: each MLP's and expert's act(gate) x up checkpointed on its own, keeping "
                     "its inputs (the product down_proj keeps)")
    return notes


def dropped_cores(derivation: Derivation, values=None) -> list[str]:
    """Field paths of the attention layers with dropout on their probabilities (above 0 at `values`)."""
    out = []
    for site in derivation.sites:
        p = getattr(site.component, "attention_dropout", None)
        if p is not None and (values is None or p.xreplace(values) > 0):
            out.append(".".join(map(str, site.where + ("attention_dropout",))))
    return out


def dropout_notes(derivation: Derivation, attention: str, recompute: str) -> list[str]:
    """Attention dropout under a fused kernel keeps no mask: say what that figure assumes."""
    if attention == "eager" or recompute == "full" or recomputed_cores(recompute) or not dropped_cores(derivation):
        return []
    return [f"attention dropout under {attention}: as PyTorch's GPU kernels run it, no mask is kept (backward "
            "draws it again from a random-number state of a few bytes, not counted); not measured here, where "
            "PyTorch runs such a core unfused (verify it with --attention eager)"]


def cache_note(derivation: Derivation) -> str | None:
    """A decoder-looking spec (attention and an LM head) with no causal layer caches nothing:
    say so where the KV cache is printed, rather than let a 0 pass for an answer."""
    components = [site.component for site in derivation.sites]  # containers (an encoder) among them
    if (derivation.total.cache != 0 or not any(getattr(c, "holds_logits", False) for c in components)
            or not any(getattr(c, "attends", None) in ("self", "latent") for c in components)):
        return None
    return ("no attention layer is causal, so nothing is cached (KV cache 0): if this is a decoder, "
            "give its attention layers `causal: true`")


def all_metrics(derivation: Derivation, precision: Precision = Precision()) -> dict[str, sympy.Expr]:
    """Parameters, FLOPs and bytes: every metric sweep and solve accept, as closed forms."""
    return {**derivation.total.metrics(tuned=True), **memory_metrics(derivation, precision)}
