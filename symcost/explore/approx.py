"""Published FLOP estimates, next to the exact count — outputs to compare against, never the
method. Each needs the transformer's usual dims by their usual names (d_model, n_layers,
seq_len, vocab; n_heads and d_ff where the estimate uses them) and says which it lacks.

- Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Section 2.1 and Table 1:
  training C ~ 6·N per token; forward C_forward ~ 2·N + 2·n_layer·n_ctx·d_attn per token,
  N the non-embedding parameters (every parameter but token and position embeddings and
  an untied output matrix), d_attn = d_model. For a mixture of experts N counts the active
  parameters (what a token runs), and `6ND_total` shows the estimate with every expert.
- Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", Appendix F:
  forward = embeddings 2·n·V·d + per layer (QKV 2·3·n·d·d, logits 2·n²·d, softmax 3·h·n²,
  reduction 2·n²·d, output 2·n·d·d, MLP 2·n·2·d·d_ff) + logits 2·n·d·V; backward = 2 x forward.
- Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters
  Using Megatron-LM", Section 5.1: 72·B·s·L·h²·(1 + s/(6h) + V/(12·h·L)) per iteration
  without activation recomputation.
- Narayanan et al. 2021, Sec. 5.1, Eq. 3: 96·B·s·L·h²·(1 + s/(6h) + V/(16·h·L)) with full
  recomputation (a second forward of every layer), against the exact hardware FLOPs.
- Megatron-LM's theoretical memory (megatron/training/theoretical_memory_usage.py): 18 bytes per
  parameter (bf16 weights, fp32 gradients, fp32 master weights and Adam moments), against the
  exact training state at those dtypes (equal by construction: the check is the parameter count).
- Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
  Sec. 4, eq. 1: activations s·b·h·(34 + 5·a·s/h) bytes per layer (16-bit, a GPT layer with
  a 4h MLP, dropout masks of one byte, eager attention), and 34·s·b·h with selective
  recomputation (Sec. 5); compared with the exact bytes at 16-bit activations, layers only
  in the estimate, the whole model (embeddings, head and loss) in the exact count.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .. import symbols
from ..cost import total
from ..derive import Derivation
from ..errors import SpecError
from ..results import Result

EMBEDDING_KINDS = ("embedding", "position_embedding", "lm_head")


@dataclass
class Estimate:
    name: str
    source: str
    metric: str  # the exact metric it estimates: forward, train or activation_bytes
    formula: sympy.Expr
    exact: sympy.Expr

    @property
    def relative_error(self) -> sympy.Expr:
        return sympy.cancel((self.formula - self.exact) / self.exact)


def _dim(derivation: Derivation, name: str, default=None) -> sympy.Expr:
    if name in derivation.spec.dimset:
        return symbols.dim(name)
    if default is not None:
        return default
    raise SpecError(f"published estimates need a dim named {name!r}; this spec has none")


def non_embedding_params(derivation: Derivation, active: bool = False) -> sympy.Expr:
    """Kaplan's N: every parameter but the token/position tables and an untied output matrix
    (with `active`, only those a token uses: a mixture of experts' routed experts count top_k)."""
    cost = total(n.cost for n in derivation.nodes if n.kind not in EMBEDDING_KINDS)
    return cost.active_params if active else cost.params


def estimates(derivation: Derivation) -> list[Estimate]:
    d = _dim(derivation, "d_model")
    L = _dim(derivation, "n_layers")
    n = _dim(derivation, "seq_len")
    V = _dim(derivation, "vocab")
    B = _dim(derivation, "batch", sympy.Integer(1))
    h = _dim(derivation, "n_heads")
    ff = _dim(derivation, "d_ff", 4 * d)
    subst = derivation.spec.dimset.substitution()
    ff = ff.xreplace(subst)
    N_all = non_embedding_params(derivation)
    N = non_embedding_params(derivation, active=True)  # a token runs only its experts
    moe = N != N_all
    n_is = "N = non-embedding " + ("active parameters (the experts a token runs)" if moe else "parameters")
    exact = derivation.total
    tokens = B * n
    attention = 2 * 3 * n * d * d + 2 * n * n * d + 3 * h * n * n + 2 * n * n * d + 2 * n * d * d
    chinchilla_forward = 2 * n * V * d + L * (attention + 2 * n * 2 * d * ff) + 2 * n * d * V
    return [
        Estimate("6ND", f"Kaplan et al. 2020, Sec. 2.1: C = 6·N per training token; {n_is}", "train",
                 6 * N * tokens, exact.train),
        *([Estimate("6ND_total", "Kaplan et al. 2020, Sec. 2.1, with N = all non-embedding parameters (every "
                    "expert: how 6ND is often misapplied to a mixture of experts)", "train", 6 * N_all * tokens,
                    exact.train)] if moe else []),
        Estimate("kaplan_forward", f"Kaplan et al. 2020, Table 1: 2·N + 2·n_layer·n_ctx·d_attn per token; {n_is}",
                 "forward", (2 * N + 2 * L * n * d) * tokens, exact.forward),
        Estimate("chinchilla", "Hoffmann et al. 2022, App. F: forward + 2x backward", "train",
                 3 * B * chinchilla_forward, exact.train),
        Estimate("megatron", "Narayanan et al. 2021, Sec. 5.1: 72·B·s·L·h²·(1 + s/6h + V/12hL)", "train",
                 72 * B * n * L * d**2 * (1 + n / (6 * d) + V / (12 * d * L)), exact.train),
        Estimate("megatron_recompute", "Narayanan et al. 2021, Eq. 3: 96·B·s·L·h²·(1 + s/6h + V/16hL), full "
                 "recomputation", "train FLOPs with full recomputation",
                 96 * B * n * L * d**2 * (1 + n / (6 * d) + V / (16 * d * L)), recomputed_train(derivation)),
        Estimate("megatron_18_bytes", "Megatron-LM theoretical memory: 18 bytes per parameter (bf16 weights, fp32 "
                 "gradients, master weights and Adam)", "train_state_bytes (fp32 gradients)",
                 18 * exact.params, train_state(derivation)),
        Estimate("korthikanti", "Korthikanti et al. 2022, eq. 1: s·b·h·(34 + 5·a·s/h) bytes per layer (16-bit, eager)",
                 "activation_bytes", L * n * B * d * (34 + 5 * h * n / d), activation_bytes(derivation, "none")),
        Estimate("korthikanti_selective", "Korthikanti et al. 2022, Sec. 5: 34·s·b·h bytes per layer, selective "
                 "recomputation", "activation_bytes", 34 * L * n * B * d, activation_bytes(derivation, "selective")),
    ]


def recomputed_train(derivation: Derivation) -> sympy.Expr:
    from ..plan.tokens import flops_per_token

    return sympy.expand(flops_per_token(derivation, "full") * derivation.inputs.xreplace(derivation.spec.dimset.substitution()))


def train_state(derivation: Derivation) -> sympy.Expr:
    from ..memory import memory_metrics
    from ..precision import Precision

    return memory_metrics(derivation, Precision("bf16", grads="fp32"))["train_state_bytes"]


def activation_bytes(derivation: Derivation, recompute: str) -> sympy.Expr:
    """The exact activation bytes at 16-bit activations, eager attention (as eq. 1 assumes)."""
    from ..memory import activation_parts
    from ..precision import Precision

    return sympy.expand(sum(activation_parts(derivation, Precision("bf16"), "eager", recompute).values()))


@dataclass(repr=False)  # repr is Result's summary
class Approximations(Result):
    """Published estimates beside the exact counts, with their relative errors in closed form and
    at `values` (every dim's exact value)."""

    derivation: Derivation
    estimates: list[Estimate]
    values: dict

    def to_dict(self) -> dict:
        from ..render.explore import estimates_data

        return estimates_data(self)

    def text(self, width: int | None = None) -> str:
        from ..render.explore import estimates_text

        return estimates_text(self, width)

    def summary(self):
        rows = self.to_dict()["estimates"]
        return f"{self.derivation.spec.name}: published estimates", [
            (r["name"], f"{100 * r['relative_error_here']:+.2f}%") for r in rows]


def approximations(derivation: Derivation, values=None) -> Approximations:
    from ..evaluate import dim_values

    return Approximations(derivation, estimates(derivation), dim_values(derivation, values))
