"""How tensor and expert parallelism split a layer type: the Rule a component class declares as
`parallel` (beside its fields and cost rules, as torchtitan keeps a model's tensor-parallel plan
beside the model), as data.

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

Layer types without a rule (`parallel = None`) refuse tp > 1 with a message rather than guess
(plan/rules.py's `refusal`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import symbols

TP = symbols.dim("tp")  # the plan's tensor-parallel size (plan/execution.py)


@dataclass(frozen=True)
class Rule:
    region: str
    shard: Callable = lambda c: {}  # the fields one tp rank holds, divided by TP
    divides: Callable = lambda c: ()  # (field, size) pairs tp must divide
    experts: str | None = None  # the part whose parameters ep splits
    # how PyTorch's tensor parallelism splits the built layer's submodules (measure/shards.py applies it):
    # colwise / rowwise (ColwiseParallel / RowwiseParallel), vocab (a table split by rows)
    torch: tuple[tuple[str, str], ...] = ()
    # why a layer of this type cannot be split by tp, when one of its settings forbids it (else None)
    refuses: Callable = lambda c: None
    # the fields a serving engine widens so that tp divides them, as vLLM replicates key/value heads when tp
    # exceeds them (each rank then holds one); training frameworks refuse such a tp, and so does plan
    widens: Callable = lambda c: {}
    # False: the split is a serving engine's (vLLM's), whose forward it models; training would add collectives
    # (the gradients of weights every rank holds whole) that no rule here counts, so plan refuses tp > 1
    trains: bool = True


REPLICATED = Rule("replicated")


def by_heads(c) -> dict:
    """Attention's split: a tp rank holds heads / tp query heads and kv_heads / tp key/value heads."""
    return {"heads": c.heads / TP, "kv_heads": c.n_kv / TP, "head_dim": c.d_head}
