"""Cost: what one part of a model holds (parameters) and what one pass of it computes (FLOPs).

Parameters and computation are kept apart on purpose: `params` counts trainable weights
(tied weights once), `active_params` the weights any one token uses, `forward` and
`backward` the FLOPs of one pass over the input under the derivation's convention, and
`cache` the values a decoder keeps after the pass (keys and values, or a recurrent
state) for the whole batch — what inference memory is made of besides the weights.

`saved` is the bytes a training forward keeps for backward (activation memory), in terms
of `symbols.ACT`, the bytes of one activation value, outside the attention core. The core's
share depends on how it runs: `core_eager` (its copies of q, k, v, the mask and the n x n
probabilities), `core_sdpa` (PyTorch's fused kernel: its inputs, output and log-sum-exp),
and `core_inputs` (the storages of q, k and v it is handed: what a checkpoint keeps under
selective recomputation). NaN where a rule needs what the spec leaves out (a token count).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import sympy

ZERO = sympy.Integer(0)


@dataclass(frozen=True)
class Cost:
    params: sympy.Expr = ZERO
    active_params: sympy.Expr = ZERO
    forward: sympy.Expr = ZERO
    backward: sympy.Expr = ZERO
    cache: sympy.Expr = ZERO
    saved: sympy.Expr = ZERO
    core_inputs: sympy.Expr = ZERO
    core_eager: sympy.Expr = ZERO
    core_sdpa: sympy.Expr = ZERO
    frozen: sympy.Expr = ZERO  # of `params`, those a fine-tune does not train (finetune.py)
    # of `params`, those stored quantized (QLoRA's frozen base, a served model's `quantization`), and their
    # bytes with their constants:
    packed: sympy.Expr = ZERO
    packed_bytes: sympy.Expr = ZERO
    active_packed: sympy.Expr = ZERO  # of `active_params`, those stored quantized, and their bytes (a MoE runs
    active_packed_bytes: sympy.Expr = ZERO  # k of its E experts' stored weights)
    # what a checkpoint of the whole layer keeps instead of `saved` (its input's storage, unless an earlier layer
    # kept it), for the layer types a recompute list can name (components/base.py's recompute_part)
    checkpoint: sympy.Expr = ZERO
    # what checkpointing its activations (act(gate) x up, an MLP's or its experts') changes in `saved`
    activation_checkpoint: sympy.Expr = ZERO

    @classmethod
    def weights(cls, count: sympy.Expr) -> Cost:
        """Parameters that every token uses."""
        return cls(params=count, active_params=count)

    @property
    def trainable(self) -> sympy.Expr:
        return self.params - self.frozen

    @property
    def train(self) -> sympy.Expr:
        return self.forward + self.backward

    def __add__(self, other: Cost) -> Cost:
        return Cost(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __mul__(self, times: sympy.Expr) -> Cost:
        """The cost of `times` copies run one after another (a `repeat`)."""
        return Cost(*(getattr(self, f.name) * times for f in fields(self)))

    __rmul__ = __mul__

    def map(self, fn) -> Cost:
        return Cost(*(fn(getattr(self, f.name)) for f in fields(self)))

    def activations(self, attention: str = "eager", recompute: str = "none") -> sympy.Expr:
        """Bytes kept for backward with the attention core run as `attention` (eager, or fused:
        sdpa or flash), recomputed or not (selective, or a list naming attention)."""
        from .precision import recomputed_cores

        if recomputed_cores(recompute):
            return self.saved + self.core_inputs
        if attention == "eager":
            return self.saved + self.core_eager
        return self.saved + self.core_sdpa

    @property
    def held(self) -> dict[str, sympy.Expr]:
        """A fine-tune's split of `params`, by metric name."""
        return {"params_trainable": self.trainable, "params_frozen": self.frozen}

    def metrics(self, tuned: bool = False) -> dict[str, sympy.Expr]:
        """The cost's figures; `tuned` (a fine-tune's): the trainable and frozen parameters too."""
        return {
            "params": self.params,
            **(self.held if tuned else {}),
            "active_params": self.active_params,
            "forward": self.forward,
            "backward": self.backward,
            "train": self.train,
        }


def total(costs) -> Cost:
    out = Cost()
    for c in costs:
        out = out + c
    return out


@dataclass(frozen=True)
class Node:
    """One component in the cost tree: its slash path, type, cost (all repetitions), and parts."""

    path: str
    kind: str
    cost: Cost
    parts: dict[str, Cost] = field(default_factory=dict)
    count: sympy.Expr = sympy.Integer(1)  # how many times it runs in one pass (enclosing repeats)

    def map(self, fn) -> Node:
        parts = {k: v.map(fn) for k, v in self.parts.items()}
        return Node(self.path, self.kind, self.cost.map(fn), parts, fn(self.count))
