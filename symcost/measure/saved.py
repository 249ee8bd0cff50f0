"""The measured route for activation memory: the bytes one training forward keeps for backward.

Every tensor autograd saves passes through `torch.autograd.graph.saved_tensors_hooks`; we
record its storage, each storage once (a view saved twice, or by two layers, is one
allocation), and skip parameters and buffers (weights are counted elsewhere). A storage is
charged to the component during whose forward it was first saved; tables a layer hands to
later ones through `state` (rotary's cos and sin) are charged to the layer that made them.
A model ending in an LM head is trained with cross-entropy against random labels, charged
to the head (its log-probabilities are often the largest single term).

Runs on real tensors (CPU at small sizes): routing and the storages' sizes need real values.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..derive import Derivation
from ..errors import SpecError
from ..memory import dropped_cores
from ..precision import recomputed_cores
from ..components.build import Checkpoint
from .reference import DTYPES, build, components, example_input


class Ledger:
    """Bytes of the storages autograd saves, each storage once, the model's parameters and
    buffers excluded, by the place each was first charged to."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.held = {local(t).untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
        self.charged: dict[int, str] = {}
        self.per_path: dict[str, int] = defaultdict(int)
        # each storage charged, kept alive for the pass: one saved only by a branch nothing reads (a layer's
        # final state, dropped) is freed at once, and a later storage at its address is not the same one
        self.alive: list = []

    def add(self, t: torch.Tensor, where: str) -> None:
        storage = local(t).untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self.held and ptr not in self.charged:
            self.charged[ptr] = where
            self.per_path[where] += storage.nbytes()
            self.alive.append(storage)


def local(t: torch.Tensor) -> torch.Tensor:
    """What a rank stores of `t`: a DTensor's local shard, a collective's result once it has
    arrived, else `t`."""
    t = getattr(t, "_local_tensor", t)
    return t.trigger_wait() if hasattr(t, "trigger_wait") else t


@dataclass
class Saved:
    per_path: dict[str, int]  # bytes charged to each component
    total: int  # bytes of every distinct storage saved in the pass


def measure_saved(derivation: Derivation, values, *, dtype: str = "fp32", attention: str = "eager",
                  recompute: str = "none", seed: int = 0, prepare=None) -> Saved:
    """`prepare` may split the built model before the pass (shards.tensor_parallel): then what
    one rank saves is measured."""
    if attention != "eager" and recompute != "full" and not recomputed_cores(recompute) and (
            dropped := dropped_cores(derivation, values)):
        raise SpecError(f"{dropped[0]}: attention dropout under {attention} cannot be measured here: PyTorch runs "
                        "it unfused on the CPU (its GPU kernels keep no mask); measure with `attention=eager`")
    torch.manual_seed(seed)
    model = build(derivation, values, attention=attention, recompute=recompute).to(DTYPES[dtype]).train()
    if prepare is not None:
        model = prepare(model)
    inputs = example_input(derivation, values, "cpu", dtype=DTYPES[dtype])
    ledger = Ledger(model)
    stack: list[str] = []
    owners: dict[int, str] = {}

    def pack(t: torch.Tensor, where: str | None = None):
        ledger.add(t, owners.get(local(t).untyped_storage().data_ptr()) or where or (stack[0] if stack else ""))
        return t

    parts = [part for _, part in components(model)]
    Checkpoint.kept = pack
    try:
        _run(model, inputs, parts, stack, owners, pack)
    except ValueError as e:  # PyTorch refuses to train, say, batch norm on one value per channel
        raise SpecError(f"PyTorch cannot run this training step: {e}; raise batch or the input size") from None
    finally:
        Checkpoint.kept = None
    return Saved(dict(ledger.per_path), sum(ledger.per_path.values()))


def _run(model, inputs, parts, stack, owners, pack) -> None:
    """One training forward under `pack`; a model ending in an LM head adds its loss."""
    with _tracking(parts, stack, owners), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(**inputs)
        last = parts[-1]
        if last.symcost_path.endswith("/lm_head"):
            stack.append(last.symcost_path)
            vocab = out.shape[-1]
            labels = torch.randint(0, vocab, out.shape[:-1])
            F.cross_entropy(out.float().reshape(-1, vocab), labels.reshape(-1))


@contextmanager
def _tracking(parts, stack: list[str], owners: dict[int, str]):
    """Keep `stack` as the components whose forward is running (outermost first), and record
    in `owners` the storages of the tables each leaves in `state` for later layers."""

    keys_before: dict[int, set] = {}
    # each recorded storage kept for the pass: one freed early (a table a later pass replaces in `state`) must not
    # lend its address, and so its owner, to a storage made later
    alive: list = []

    def before(module, args):
        stack.append(module.symcost_path)
        keys_before[id(module)] = set(args[1])

    def after(module, args, output):
        stack.pop()
        # the embedding's copy is charged to whoever keeps it (a checkpoint): nothing saves it otherwise
        for key in set(args[1]) - keys_before.pop(id(module)) - {"embedded"}:
            for t in _tensors(args[1][key]):
                storage = local(t).untyped_storage()
                owners.setdefault(storage.data_ptr(), module.symcost_path)
                alive.append(storage)

    hooks = [h for part in parts for h in (part.register_forward_pre_hook(before), part.register_forward_hook(after))]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)
