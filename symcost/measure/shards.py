"""The measured route for plans: the reference build split by PyTorch's own tensor parallelism
(DTensor's parallelize_module) and FSDP2 (fully_shard), on a fake process group — one process
playing one rank of a world of any size, collectives answered without a network.

- Shards: each rank's local elements of every parameter (`to_local().numel()`), each Parameter
  once; what plan's per-GPU weights must equal.
- Communication: every collective the rank issues in one training forward and backward, with
  the bytes of the tensor it is about (CommDebugMode counts calls; `Collectives` records sizes
  too), by pass.

torch is imported here only; the fake backend comes from torch.testing (PyTorch's own tests use it).
"""

from __future__ import annotations

import warnings
from collections import Counter
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.distributed.tensor.debug import CommDebugMode
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    PrepareModuleInput,
    RowwiseParallel,
    SequenceParallel,
    parallelize_module,
)

from ..components import REGISTRY
from ..components.parallel import REPLICATED
from .reference import components

# funcol's names -> the planner's
COLLECTIVES = {"all_reduce": "all_reduce", "all_gather_into_tensor": "all_gather", "reduce_scatter_tensor": "reduce_scatter",
               "all_to_all_single": "all_to_all"}


@contextmanager
def fake_world(world_size: int, rank: int = 0):
    from torch.testing._internal.distributed.fake_pg import FakeStore

    dist.init_process_group("fake", rank=rank, world_size=world_size, store=FakeStore())
    try:
        yield
    finally:
        dist.destroy_process_group()


def tensor_parallel(model: torch.nn.Module, mesh, sequence_parallel: bool = False) -> torch.nn.Module:
    """Split every layer as its type's rule says (`parallel.torch`), as Megatron-LM runs it: a
    tensor-parallel region takes its input once (all-gathered from sequence shards under sequence
    parallelism), its projections read it as a replicated DTensor, and its exit all-reduces (or
    reduce-scatters) the output; replicated layers stay whole, or split by sequence under sequence
    parallelism."""
    split = Shard(1) if sequence_parallel else Replicate()
    styles = {"colwise": lambda: ColwiseParallel(input_layouts=Replicate()),
              "rowwise": lambda: RowwiseParallel(output_layouts=split),
              "vocab": lambda: RowwiseParallel(input_layouts=Replicate(), output_layouts=split)}
    for _, part in components(model):
        kind = part.symcost_path.rsplit("/", 1)[-1]
        rule = REGISTRY[kind].parallel
        if rule is None:
            raise ValueError(f"{kind} has no tensor-parallel rule")
        if rule.region in ("parallel", "vocab_out"):  # one entry for the region's projections
            parallelize_module(part, mesh, PrepareModuleInput(input_layouts=(split, None),
                                                              desired_input_layouts=(Replicate(), None),
                                                              use_local_output=False))
        plan = {sub: styles[style]() for sub, style in rule.torch if hasattr(part, sub)}
        if rule is REPLICATED and sequence_parallel:
            plan = {name: SequenceParallel(use_local_output=True) for name, _ in part.named_children()}
        if plan:
            parallelize_module(part, mesh, plan)
    return model


def local_params(model: torch.nn.Module) -> int:
    """Elements of parameters this rank holds, each Parameter once."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.to_local().numel() if isinstance(p, DTensor) else p.numel()
    return total


class Collectives(CommDebugMode):
    """CommDebugMode that also records each collective's tensor bytes and its pass."""

    def __init__(self, group_size: int) -> None:
        super().__init__()
        self.group_size = group_size
        self.records: Counter = Counter()  # (collective, pass) -> bytes summed over calls
        self.calls: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = super().__torch_dispatch__(func, types, args, kwargs)
        name = getattr(getattr(func, "_overloadpacket", None), "__name__", "")
        if name in COLLECTIVES and out is not NotImplemented:
            t = args[0]
            size = t.numel() * t.element_size() * (self.group_size if name == "all_gather_into_tensor" else 1)
            key = (COLLECTIVES[name], "backward" if self.advanced_module_tracker.is_bw else "forward")
            self.records[key] += size
            self.calls[key] += 1
        return out


def measure_comm(model: torch.nn.Module, inputs: dict, group_size: int) -> Collectives:
    """The collectives of one forward and backward (the output summed as the loss)."""
    with Collectives(group_size) as mode, warnings.catch_warnings():
        # the mode's module tracker hooks modules whose inputs (token ids) need no gradient; PyTorch says so
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        out = model(**inputs)
        (out.to_local() if isinstance(out, DTensor) else out).float().sum().backward()
    return mode
