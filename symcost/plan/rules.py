"""How tensor and expert parallelism split each layer type: one rule per type, as data.

A rule says which of a layer's sizes one tensor-parallel rank holds (`shard`: the fields
divided by tp), so that the rank's piece is the same layer type at smaller sizes and its
parameters, FLOPs and saved bytes come from the type's own cost rules, exactly. `region` names
how the layer sits in Megatron-LM's scheme (Shoeybi et al. 2019, Sec. 3):

- "parallel": a column-parallel entry and a row-parallel exit (attention by heads, the MLP by
  its hidden size): its input is replicated on the tp ranks (sequence-split under sequence
  parallelism, as is the mask of a dropout on its output), its output all-reduced in forward,
  its input's gradient in backward; the exit projection's bias is replicated (as
  RowwiseParallel keeps it).
- "vocab_in": the token table split by vocabulary rows; its output all-reduced in forward.
- "vocab_out": the LM head split by vocabulary columns; its input's gradient all-reduced in
  backward (the loss runs on each rank's vocabulary shard).
- "replicated": token-wise layers with no split (norms, position tables, activations, dropout):
  their weights are whole on every rank, and their activations split by sequence only under
  sequence parallelism.

Layer types without a rule refuse tp > 1 with a message rather than guess (`refusal`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .execution import TP


@dataclass(frozen=True)
class Rule:
    region: str
    shard: Callable = lambda c: {}  # the fields one tp rank holds, divided by TP
    divides: Callable = lambda c: ()  # (field, size) pairs tp must divide
    experts: str | None = None  # the part whose parameters ep splits
    # how PyTorch's tensor parallelism splits the built layer's submodules (shardref.py applies it):
    # colwise / rowwise (ColwiseParallel / RowwiseParallel), vocab (a table split by rows)
    torch: tuple[tuple[str, str], ...] = ()
    # why a layer of this type cannot be split by tp, when one of its settings forbids it (else None)
    refuses: Callable = lambda c: None


def _heads(c):
    return {"heads": c.heads / TP, "kv_heads": c.n_kv / TP, "head_dim": c.d_head}


def _moe(c):
    return {"hidden": c.hidden / TP, "shared_hidden": c.shared_width / TP}


REPLICATED = Rule("replicated")
RULES: dict[str, Rule] = {
    "attention": Rule("parallel", _heads, lambda c: (("heads", c.heads), ("kv_heads", c.n_kv)),
                      torch=(("q_proj", "colwise"), ("k_proj", "colwise"), ("v_proj", "colwise"), ("o_proj", "rowwise")),
                      refuses=lambda c: "qk_norm: full normalises over every head at once, so a tp rank would need "
                      "the other ranks' heads (a communication no rule here models)" if c.qk_norm == "full" else None),
    "mlp": Rule("parallel", lambda c: {"hidden": c.hidden / TP}, lambda c: (("hidden", c.hidden),),
                torch=(("up_proj", "colwise"), ("gate_proj", "colwise"), ("down_proj", "rowwise"))),
    "moe": Rule("parallel", _moe, lambda c: (("hidden", c.hidden), ("shared_hidden", c.shared_width)), "experts"),
    "embedding": Rule("vocab_in", lambda c: {"vocab": c.vocab / TP}, lambda c: (("vocab", c.vocab),),
                      torch=(("table", "vocab"),)),
    "lm_head": Rule("vocab_out", lambda c: {"vocab": c.vocab / TP}, lambda c: (("vocab", c.vocab),),
                    torch=(("proj", "colwise"),)),
    **{kind: REPLICATED for kind in ("layernorm", "rmsnorm", "position_embedding", "token_type_embedding", "rotary",
                                     "alibi", "activation", "dropout")},
}


def refusal(component) -> str | None:
    """Why tp cannot split this layer (its type has no rule, or one of its settings forbids it), else None."""
    rule = RULES.get(component.kind)
    if rule is None:
        return f"{component.kind} layers have no tensor-parallel rule (types with one: {', '.join(sorted(RULES))})"
    return rule.refuses(component)
