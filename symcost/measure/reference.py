"""The measured route: build a spec as a torch.nn.Module and let PyTorch count it.

Parameters: `sum(p.numel())` over the module's parameters, each Parameter once (a tied
head reuses the embedding's, as PyTorch's own `parameters()` does), attributed to the
first component that holds it. FLOPs: torch.utils.flop_counter.FlopCounterMode — forward per
component module, backward per component run alone (see count_backward), and both for the
whole model, so a component-by-component sum that misses something shows up.

torch is imported here and in the components' `build` methods, never by derive or eval.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace

import sympy
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..components import Flow, Memory, hyper
from ..components.build import Build, Checkpoint, Part
from ..derive import PER_USE, Derivation, input_flow
from ..precision import TORCH_NAMES, recomputed_layers
from ..spec import (Encoder, Repeat, Residual, Tied, component_of, is_container, reads_embedding, reads_memory,
                    sublists)


class Sequence(nn.Module):
    """A list of layers run in order (the spec's top level, or one copy of a repeat block)."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x, state):
        for layer in self.layers:
            x = layer(x, state)
        return x


class ResidualModule(nn.Module):
    """body(x) + shortcut(x); the shortcut is the identity when the spec gives none."""

    def __init__(self, body: Sequence, shortcut: Sequence | None) -> None:
        super().__init__()
        self.residual = body
        self.shortcut = shortcut

    def forward(self, x, state):
        return self.residual(x, state) + (self.shortcut(x, state) if self.shortcut is not None else x)


class EncoderModule(nn.Module):
    """Runs its layers over the source input and leaves the result as `memory`; x passes by."""

    def __init__(self, body: Sequence) -> None:
        super().__init__()
        self.encoder = body

    def forward(self, x, state):
        if "memory" not in state:  # decode steps reuse the memory computed at prefill
            state["memory"] = self.encoder(state["source"], {})
        return x


class SpecModel(nn.Module):
    def __init__(self, body: Sequence) -> None:
        super().__init__()
        self.body = body

    def forward(self, x, source=None, cache: dict | None = None):
        """One pass. `cache` (a dict the caller keeps across passes) turns on decoding: each
        causal layer keeps its keys and values under cache["kv"], and positions continue
        from cache["offset"], the tokens seen so far."""
        if cache is None:
            return self.body(x, {"source": source})
        cache.setdefault("kv", {})
        cache.setdefault("offset", 0)
        if source is not None:
            cache["source"] = source
        out = self.body(x, cache)
        cache["offset"] += x.shape[1]
        return out


def build(derivation: Derivation, values: dict[sympy.Symbol, sympy.Integer], *, attention: str = "eager",
          recompute: str = "none") -> SpecModel:
    """The spec as a torch module at `values` (every dim, derived ones included). Recompute
    "full" checkpoints each pass of a top-level repeat block (a transformer layer), keeping
    only its input; "selective" each attention core (Korthikanti et al. 2022); a list of parts each layer it names
    (norm, mlp, moe) whole, and attention's core where it names attention."""
    b = Build(values, input_flow(derivation.spec), attention=attention, recompute=recompute,
              carries=any(kind == "concat_embedding" for (*_, kind), _ in derivation.spec.walk()))
    tied: dict[str, list[nn.Module]] = {}  # each tied name's first block, built
    whole = recomputed_layers(recompute)  # the parts whose layers a recompute list checkpoints whole

    def layers(items, path: str) -> list[nn.Module]:
        out = []
        for i, item in enumerate(items):
            if isinstance(item, Repeat):
                # N real copies, one after another: PyTorch must hold every weight (the formulas never unroll);
                # shared weights: one copy, called N times
                n = b.int(item.repeat)
                if item.shared:
                    passes = [Sequence(layers(item.layers, f"{path}/{i}/repeat"))] * n
                else:
                    passes = [Sequence(layers(item.layers, f"{path}/{i}/repeat")) for _ in range(n)]
                if recompute == "full" and path == "layers":
                    holds = frozenset(("memory",) * reads_memory(item) + ("embedded",) * reads_embedding(item))
                    passes = [Checkpoint(p, f"{path}/{i}/repeat", holds) for p in passes]
                out.append(Sequence(passes))
                continue
            if isinstance(item, Encoder):
                outer, b.flow = b.flow, item.source(b.flow.embedding)
                out.append(EncoderModule(Sequence(layers(item.layers, f"{path}/{i}/encoder"))))
                b.flow = replace(outer, memory=Memory.of(b.flow), embedding=b.flow.embedding)
                continue
            if isinstance(item, Residual) and item.streams is not None:  # a hyper-connected residual
                outer = b.flow
                n, width = b.int(item.streams), b.int(outer.width / item.streams)
                b.flow = replace(outer, width=outer.width / item.streams)
                body = Sequence(layers(item.residual, f"{path}/{i}/residual"))
                b.flow = outer
                out.append(hyper.site_module(body, n, width, b.int(item.sinkhorn_iters), f"{path}/{i}/hyper"))
                continue
            if isinstance(item, Residual):
                before = b.flow
                body = Sequence(layers(item.residual, f"{path}/{i}/residual"))
                after, b.flow = b.flow, before
                shortcut = Sequence(layers(item.shortcut, f"{path}/{i}/shortcut")) if item.shortcut else None
                b.flow = after
                out.append(ResidualModule(body, shortcut))
                continue
            if isinstance(item, Tied):
                parts = layers(item.layers, f"{path}/{i}/tied")
                for first, part in zip(tied.setdefault(item.tied, parts), parts):
                    share(first, part)
                out += parts
                continue
            kind, component = component_of(item)
            b.path = f"{path}/{i}/{kind}"
            part = component.build(b)
            out.append(Checkpoint(part, b.path, None) if component.recompute_part in whole else part)
            b.flow = component.after(b.flow)
        return out

    model = SpecModel(Sequence(layers(derivation.spec.layers, "layers")))
    if derivation.spec.finetune is None:
        return model
    from .finetune import apply

    return apply(model, list(components(model)), derivation.spec, values)


def share(first: nn.Module, part: nn.Module) -> None:
    """`part` holding `first`'s Parameters (one each, which PyTorch counts once), but for its adapters."""
    if part is first:
        return
    for name, parameter in first.named_parameters():
        if PER_USE not in name.split("."):
            owner, _, attr = name.rpartition(".")
            setattr(part.get_submodule(owner), attr, parameter)


def example_input(derivation: Derivation, values, device: str, length=None, dtype=None) -> dict:
    """The model's inputs: `x` for the main stream and, with an encoder, `source` for it.

    Token ids when a stream starts with an embedding; else features or pixels that need no
    gradient (raw inputs). `length` overrides the main stream's tokens (decode steps).
    """
    spec = derivation.spec
    batch = int(spec.input_dim("batch", 1).xreplace(values))
    size = Build(values).int

    def stream(layers, flow: Flow):
        item = layers[0]
        while is_container(item):
            item = sublists(item)[0][1][0]
        first = component_of(item)[1]
        if first.in_width() is None:
            return torch.randint(0, size(first.vocab), (batch, size(flow.length)), device=device)
        if flow.spatial is not None:
            return torch.randn(batch, size(first.in_width()), *map(size, flow.spatial), device=device, dtype=dtype)
        return torch.randn(batch, size(flow.length), size(first.in_width()), device=device, dtype=dtype)

    inputs = {}
    for encoder in (item for item in spec.layers if isinstance(item, Encoder)):  # derive allows one
        inputs["source"] = stream(encoder.layers, encoder.source())
    main = input_flow(spec) if length is None else Flow(length=length)
    inputs["x"] = stream([item for item in spec.layers if not isinstance(item, Encoder)], main)
    return inputs


@dataclass
class Measured:
    """Counts per component path, and FLOPs for the whole model as one pass counted them."""

    params: dict[str, int]
    forward: dict[str, int]
    forward_total: int
    backward: dict[str, int] | None = None
    backward_total: int | None = None

    @property
    def unattributed(self) -> dict[str, int]:
        """Whole-model FLOPs that no component accounts for (0 when the parts add up)."""
        out = {"forward": self.forward_total - sum(self.forward.values())}
        if self.backward is not None:
            out["backward"] = self.backward_total - sum(self.backward.values())
        return out


def components(module: nn.Module, prefix: str = "", seen: set | None = None):
    """(qualified name, Part) for every component, not descending into one (experts are Parts too);
    a module reached twice (a shared repeat's pass, under two checkpoints) is named once."""
    seen = set() if seen is None else seen
    for name, child in module.named_children():
        if id(child) in seen:
            continue
        seen.add(id(child))
        qualified = f"{prefix}.{name}" if prefix else name
        if isinstance(child, Part):
            yield qualified, child
        else:
            yield from components(child, qualified, seen)


def count_params(model: nn.Module) -> dict[str, int]:
    seen: set[int] = set()
    out: dict[str, int] = defaultdict(int)
    for _, module in components(model):
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out[module.symcost_path] += values(p)
    return dict(out)


def values(p: torch.Tensor) -> int:
    """The values a parameter holds: its elements, or for a packed one (bitsandbytes' 4-bit, two
    values a byte) those of the shape its quantization state records."""
    state = getattr(p, "quant_state", None)
    return math.prod(state.shape) if state is not None else p.numel()


def count_forward(model: SpecModel, inputs: dict) -> tuple[dict[str, int], int]:
    """Forward FLOPs per component (FlopCounterMode's module tracking), and the whole model's."""
    paths = {f"{type(model).__name__}.{name}": m.symcost_path for name, m in components(model)}
    with FlopCounterMode(display=False) as counter:
        model(**inputs)
    per_path: dict[str, int] = defaultdict(int)
    for key, ops in counter.get_flop_counts().items():
        if key in paths:
            per_path[paths[key]] += sum(ops.values())
    return dict(per_path), counter.get_total_flops()


def count_backward(model: SpecModel, inputs: dict) -> tuple[dict[str, int], int]:
    """Backward FLOPs: the whole model's from one backward pass, and each component's from
    running its backward alone, on the inputs it saw, each needing a gradient as it did.

    NB: FlopCounterMode's own per-module backward attribution is best effort: it goes wrong
    when a tensor reaches a module outside the call chain (an encoder's memory), so it is
    not used; the whole-model total still checks the sum.
    """
    seen = []
    hooks = [
        part.register_forward_pre_hook(lambda m, args: seen.append((m, args[0], dict(args[1]))))
        for _, part in components(model)
    ]
    try:
        out = model(**inputs)
    finally:
        for hook in hooks:
            hook.remove()
    with FlopCounterMode(display=False) as counter:
        out.float().sum().backward()
    per_path: dict[str, int] = defaultdict(int)
    for part, x, state in seen:
        alone = part(_leaf(x), {k: _leaf(v) for k, v in state.items()})
        if not alone.requires_grad:  # frozen, and nothing before it trains: no backward runs through it
            continue
        with FlopCounterMode(display=False) as one:
            alone.float().sum().backward()
        per_path[part.symcost_path] += one.get_total_flops()
    return dict(per_path), counter.get_total_flops()


def _leaf(value):
    """A detached copy that needs a gradient exactly when the original did (tuples item by item)."""
    if isinstance(value, tuple):
        return tuple(_leaf(v) for v in value)
    if isinstance(value, torch.Tensor):
        return value.detach().requires_grad_(value.requires_grad)
    return value


STACK_BYTES = 512 << 20  # the measured route's C stack (address space; pages are touched only as used)


def on_a_deep_stack(fn, *args, **kwargs):
    """fn(*args, **kwargs) in a thread with a C stack of STACK_BYTES. PyTorch releases a deep
    model's module hooks and autograd graph recursively in C: on the main thread's 8 MiB
    stack, verify of 50,000 linear layers died of a segmentation fault there."""
    import threading

    out: dict = {}

    def run():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the caller's thread below
            out["error"] = e

    old = threading.stack_size(STACK_BYTES)
    try:
        thread = threading.Thread(target=run, name="symcost-measure")
        thread.start()
    finally:
        threading.stack_size(old)
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def measure(derivation: Derivation, values, *, backward: bool, device: str = "meta", seed: int = 0) -> Measured:
    torch.manual_seed(seed)
    with torch.device(device):
        # eval(): BatchNorm then uses its running statistics, which changes no count but
        # allows one value per channel (batch 1 at 1x1), where training mode refuses to run
        model = build(derivation, values).eval()
    inputs = example_input(derivation, values, device)
    measured = Measured(count_params(model), *count_forward(model, inputs))
    if backward:
        measured.backward, measured.backward_total = count_backward(model, inputs)
    return measured


# -- inference: the bytes a model holds, and one decode step ----------------------------------

DTYPES = {name: getattr(torch, attribute) for name, attribute in TORCH_NAMES.items()}


def _bytes(value) -> int:
    """Bytes of every tensor in a (nested) cache entry."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_bytes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return sum(_bytes(v) for v in value)
    return 0


def weight_bytes(derivation: Derivation, values, dtype: str, device: str = "meta") -> int:
    """sum(numel x element_size) over the model's parameters (each once), stored in `dtype`."""
    with torch.device(device):
        model = build(derivation, values).to(DTYPES[dtype])
    return sum(p.numel() * p.element_size() for p in model.parameters())


@dataclass
class Decode:
    prefill_cache_bytes: int  # what the caches hold after the prefill of `context` tokens
    forward: dict[str, int]  # FLOPs of the next one-token step, per component
    forward_total: int
    cache_bytes: int  # what they hold after that step (context + 1 tokens)


@torch.no_grad()
def measure_decode(derivation: Derivation, values, context: int, *, dtype: str = "fp32", device: str = "meta",
                   seed: int = 0) -> Decode:
    """Prefill `context` tokens into the model's caches (not counted), then count one step."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = build(derivation, values).eval().to(DTYPES[dtype])
    cache: dict = {}
    prompt = example_input(derivation, values, device, length=context, dtype=DTYPES[dtype])
    if context or "source" in prompt:  # with an encoder, even an empty prompt runs it and caches its keys
        model(prompt["x"], prompt.get("source"), cache=cache)
    kept = _bytes(cache.get("kv", {}))
    step = example_input(derivation, values, device, length=1, dtype=DTYPES[dtype])
    forward, total = count_forward(model, {"x": step["x"], "cache": cache})
    return Decode(kept, forward, total, _bytes(cache["kv"]))
