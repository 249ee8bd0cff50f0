"""The measured route: build a spec as a torch.nn.Module and let PyTorch count it.

Parameters: `sum(p.numel())` over the module's parameters, each Parameter once (a tied
head reuses the embedding's, as PyTorch's own `parameters()` does), attributed to the
first component that holds it. FLOPs: torch.utils.flop_counter.FlopCounterMode, per
component module; backward = (forward + backward) - forward, from two runs.

torch is imported here and in the components' `build` methods, never by derive or eval.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sympy
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .components import Flow
from .derive import Derivation
from .spec import Repeat, component_of


class Part(nn.Module):
    """One component: its submodules and its forward, a function of (module, x, state).

    `state` carries what a layer hands to later ones besides the tensor (rotary tables).
    """

    def __init__(self, forward, path: str, **modules: nn.Module) -> None:
        super().__init__()
        self._forward = forward
        self.symcost_path = path
        for name, module in modules.items():
            self.add_module(name, module)

    def forward(self, x, state):
        return self._forward(self, x, state)


class Sequence(nn.Module):
    """A list of layers run in order (the spec's top level, or one copy of a repeat block)."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x, state):
        for layer in self.layers:
            x = layer(x, state)
        return x


class RepeatModule(nn.Module):
    """N real copies of a block (PyTorch has to hold every weight; the formulas never unroll)."""

    def __init__(self, copies: list[Sequence]) -> None:
        super().__init__()
        self.repeat = nn.ModuleList(copies)

    def forward(self, x, state):
        for block in self.repeat:
            x = block(x, state)
        return x


class SpecModel(nn.Module):
    def __init__(self, body: Sequence) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x, {})


@dataclass
class Build:
    """What a component's `build` may use: concrete sizes, the flow before it, shared modules."""

    values: dict[sympy.Symbol, sympy.Integer]
    flow: Flow = field(default_factory=Flow)
    path: str = ""
    embedding: nn.Module | None = None  # the token embedding, for a tied head

    def int(self, e: sympy.Expr) -> int:
        value = sympy.sympify(e).xreplace(self.values)
        assert value.is_Integer, f"{e} = {value} is not an integer"  # evaluate() checked this
        return int(value)

    def part(self, forward, **modules: nn.Module) -> Part:
        return Part(forward, self.path, **modules)


def build(derivation: Derivation, values: dict[sympy.Symbol, sympy.Integer]) -> SpecModel:
    """The spec as a torch module at `values` (every dim, derived ones included)."""
    b = Build(values)

    def layers(items, path: str) -> list[nn.Module]:
        out = []
        for i, item in enumerate(items):
            if isinstance(item, Repeat):
                copies = [Sequence(layers(item.layers, f"{path}/{i}/repeat")) for _ in range(b.int(item.repeat))]
                out.append(RepeatModule(copies))
                continue
            kind, component = component_of(item)
            b.path = f"{path}/{i}/{kind}"
            out.append(component.build(b))
            b.flow = component.after(b.flow)
        return out

    return SpecModel(Sequence(layers(derivation.spec.layers, "layers")))


def example_input(derivation: Derivation, values, device: str):
    """Token ids when the spec starts with an embedding, else features that need no gradient."""
    spec = derivation.spec
    batch = int(spec.input_dim("batch", 1).xreplace(values))
    seq_len = int(spec.input_dim("seq_len", None).xreplace(values))
    _, first = next(spec.walk())
    width = first.in_width()
    if width is None:
        vocab = int(first.vocab.xreplace(values))
        return torch.randint(0, vocab, (batch, seq_len), device=device)
    return torch.randn(batch, seq_len, int(width.xreplace(values)), device=device)


@dataclass
class Measured:
    params: dict[str, int]
    forward: dict[str, int]
    backward: dict[str, int] | None
    unattributed: dict[str, int]  # FLOPs the counter saw outside every component (should be 0)


def count_params(model: nn.Module) -> dict[str, int]:
    seen: set[int] = set()
    out: dict[str, int] = defaultdict(int)
    for module in model.modules():
        if isinstance(module, Part):
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out[module.symcost_path] += p.numel()
    return dict(out)


def count_flops(model: SpecModel, x, backward: bool) -> tuple[dict[str, int], int]:
    """FLOPs per component path, and the FLOPs counted outside every component."""
    paths = {f"{type(model).__name__}.{name}": m.symcost_path for name, m in model.named_modules() if isinstance(m, Part)}
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.float().sum().backward()
    per_path: dict[str, int] = defaultdict(int)
    for key, ops in counter.get_flop_counts().items():
        if key in paths:
            per_path[paths[key]] += sum(ops.values())
    return dict(per_path), counter.get_total_flops() - sum(per_path.values())


def measure(derivation: Derivation, values, *, backward: bool, device: str = "meta", seed: int = 0) -> Measured:
    torch.manual_seed(seed)
    with torch.device(device):
        model = build(derivation, values)
    x = example_input(derivation, values, device)
    forward, lost_forward = count_flops(model, x, backward=False)
    unattributed = {"forward": lost_forward}
    both = None
    if backward:
        total, lost_total = count_flops(model, x, backward=True)
        both = {p: total.get(p, 0) - forward.get(p, 0) for p in total.keys() | forward.keys()}
        unattributed["backward"] = lost_total - lost_forward
    return Measured(count_params(model), forward, both, unattributed)
