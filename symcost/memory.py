"""Memory in bytes: weights, KV cache, training state and activations — closed forms that
consume a derivation's cost (the model's cost stays free of hardware and precision).

- weights: params x bytes per weight; active weights likewise (what one token reads).
- KV cache: the cache values of the derivation (a causal layer's keys and values for
  every token of context, at most `window` for a sliding window; MLA's latent and rope
  key; cross-attention's keys and values of the encoder output; a recurrent state) x bytes.
  Per token: its growth with seq_len before any window fills, per sequence.
- training state (mixed-precision training as in Micikevicius et al. 2018 and ZeRO,
  Rajbhandari et al. 2020, Sec. 3.1): weights + gradients + optimizer states (Adam: two
  moments) + fp32 master weights when the weights are not fp32 — 16 bytes per parameter
  for bf16 weights with Adam.
- activations: the bytes one training forward keeps for backward, summed from each layer
  type's rule (Cost.saved and the attention core's share, in symbols.ACT), which equal what
  `saved_tensors_hooks` sees on the reference build (torchsaved.py, `verify --memory`);
  attention run eager (n x n probabilities kept) or as PyTorch's SDPA (output and
  log-sum-exp); recomputation none, selective (each attention core) or full (each pass of a
  top-level repeat block keeps only its input).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy

from . import symbols
from .derive import Derivation
from .errors import SpecError
from .results import Result
from .precision import OPTIMIZER_STATES, RECOMPUTE, Precision

ACTIVATION_ASSUMPTION = ("bytes one training forward keeps for backward, per layer type, as PyTorch saves them "
                         "on the reference build (symcost verify --memory); activations in the weights' dtype")


def kv_per_token(derivation: Derivation, cache: sympy.Expr) -> sympy.Expr:
    """The cache's growth per token of one sequence, before any sliding window fills."""
    spec = derivation.spec
    if "seq_len" not in spec.dimset:
        return sympy.Integer(0)
    n = symbols.dim("seq_len")
    grows = cache.replace(sympy.Min, lambda *args: next((a for a in args if n in a.free_symbols), sympy.Min(*args)))
    return sympy.expand(sympy.diff(grows, n) / spec.input_dim("batch", 1))


ATTENTION = ("eager", "sdpa")


def saved_bytes(derivation: Derivation, attention: str = "sdpa", recompute: str = "none") -> dict[str, sympy.Expr]:
    """Bytes one training forward keeps for backward, per component path (in symbols.ACT,
    every dim; derived dims unsubstituted). Under `full` recomputation each pass of a
    top-level repeat block keeps only its input, charged to the block's path."""
    if attention not in ATTENTION:
        raise SpecError(f"attention {attention!r}: expected one of {', '.join(ATTENTION)}")
    if recompute not in RECOMPUTE:
        raise SpecError(f"recompute {recompute!r}: expected one of {', '.join(RECOMPUTE)}")
    blocks = derivation.blocks if recompute == "full" else ()
    inside = lambda path: any(path.startswith(b.path + "/") for b in blocks)
    out = {n.path: n.cost.activations(attention, recompute) for n in derivation.raw if not inside(n.path)}
    for b in blocks:
        out[b.path] = b.input_bytes + (b.count - 1) * b.later_bytes
        if b.then is not None:
            out[b.then[0]] += b.then[1]
    return out


def memory_metrics(
    derivation: Derivation, precision: Precision = Precision(), optimizer: str = "adam", recompute: str = "none",
    attention: str = "sdpa",
) -> dict[str, sympy.Expr]:
    """Byte counts as closed forms (derived dims substituted as in derivation.total)."""
    if optimizer not in OPTIMIZER_STATES:
        raise SpecError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZER_STATES)}")
    t = derivation.total
    subst = derivation.spec.dimset.substitution(derivation.keep)
    weights = t.params * precision.bytes("weights")
    kv = t.cache * precision.bytes("kv")
    per_param = (
        precision.bytes("weights")
        + precision.bytes("grads")
        + OPTIMIZER_STATES[optimizer] * precision.bytes("optimizer")
        + (4 if precision.master_weights else 0)
    )
    return {
        "weights_bytes": weights,
        "active_weights_bytes": t.active_params * precision.bytes("weights"),
        "kv_cache_bytes": kv,
        "kv_bytes_per_token": kv_per_token(derivation, kv),
        "inference_bytes": weights + kv,
        "train_state_bytes": t.params * per_param,
        "activation_bytes": sympy.expand(sum(saved_bytes(derivation, attention, recompute).values())
                                         .xreplace({symbols.ACT: precision.bytes("weights")}).xreplace(subst)),
    }


@dataclass(frozen=True, repr=False)
class MemoryReport(Result):
    """Byte counts as closed forms and at concrete sizes, with the assumptions behind them."""

    name: str
    exprs: dict[str, sympy.Expr]
    numbers: dict[str, sympy.Expr]
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        from .render.memory import memory_data

        return memory_data(self)

    def text(self, width: int | None = None) -> str:
        from .render.memory import render_memory

        return render_memory(self, "text", width)

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

    exprs = memory_metrics(derivation, precision, optimizer, recompute, attention)
    subst = dim_values(derivation, values)
    numbers = {k: e.xreplace(subst) for k, e in exprs.items()}
    notes = [
        f"weights {precision.dtype('weights')}, KV cache {precision.dtype('kv')}, gradients "
        f"{precision.dtype('grads')}, {optimizer} states fp32" + (", fp32 master weights" if precision.master_weights else ""),
        f"activations: {ACTIVATION_ASSUMPTION}; attention {attention}; recomputation: {recompute}",
    ]
    missing = sorted({n.kind for n in derivation.raw if n.cost.saved.has(sympy.nan)})
    if missing:
        notes.append(f"no activation rule yet for {', '.join(missing)}: activation bytes unknown (nan)")
    if (note := cache_note(derivation)) is not None:
        notes.append(note)
    return MemoryReport(derivation.spec.name, exprs, numbers, tuple(notes))


def cache_note(derivation: Derivation) -> str | None:
    """A decoder-looking spec (attention and an LM head) with no causal layer caches nothing:
    say so where the KV cache is printed, rather than let a 0 pass for an answer."""
    kinds = {getattr(site.component, "kind", None) for site in derivation.sites}
    if derivation.total.cache != 0 or "lm_head" not in kinds or not kinds & {"attention", "mla"}:
        return None
    return ("no attention layer is causal, so nothing is cached (KV cache 0): if this is a decoder, "
            "give its attention layers `causal: true`")


def all_metrics(derivation: Derivation, precision: Precision = Precision()) -> dict[str, sympy.Expr]:
    """Parameters, FLOPs and bytes: every metric sweep and solve accept, as closed forms."""
    return {**derivation.total.metrics(), **memory_metrics(derivation, precision)}
