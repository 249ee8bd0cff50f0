"""What a component's `build` may use: the sizes and flow it is built at (Build), the module that
runs one component's forward (Part), a layer's entry in a decoder's kept state (layer_state), parameters kept
in fp32 (keep_fp32), DeepSeek-V4's weightless RMS norm (unweighted), and activation checkpointing
(Checkpoint). The measured route (symcost.measure.reference) builds the whole spec from these; only it and
the builds import this module, so torch stays optional."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
import torch
from torch import nn

from .base import Flow


def layer_state(state: dict, module) -> dict | None:
    """The module's own entry in a decoder's kept state (`state["kv"]`: keys and values, a conv's inputs, a
    recurrent state), made on first use; None when no state is kept (a pass over a whole sequence)."""
    kept = state.get("kv")
    return kept.setdefault(module, {}) if kept is not None else None


def keep_fp32(module: nn.Module, names: tuple[str, ...] | None = None) -> nn.Module:
    """Keep `module`'s own parameters (those `names`, or all) in fp32 when the model is cast to another dtype,
    as transformers keeps a model's `_keep_in_fp32_modules_strict` (DeepSeek-V4's hyper-connections, sinks,
    norms and position biases)."""
    cast = module._apply

    def apply(fn, recurse=True):
        cast(fn, recurse)
        for name, p in module._parameters.items():
            if p is not None and (names is None or name in names):
                p.data = p.data.float()
        return module

    module._apply = apply
    return module


def unweighted(x: torch.Tensor, eps: float) -> torch.Tensor:
    """An RMS norm without weight, op for op as transformers' DeepSeek-V4 runs it (DeepseekV4UnweightedRMSNorm):
    the 1/rms in fp32, cast back to x's dtype before it scales x."""
    return x * torch.rsqrt(x.float().square().mean(-1, keepdim=True) + eps).to(x.dtype)


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


READ = ("memory", "embedded")  # what `state` carries for some layers only: the encoder's output, the embedding's


class Checkpoint(nn.Module):
    """Runs `body` under activation checkpointing: only its input is kept, the rest recomputed
    in backward. `kept` (set by a memory measurement) is told which tensors that is."""

    kept = None

    def __init__(self, body: nn.Module, path: str, holds: frozenset[str] | None) -> None:
        super().__init__()
        self.body = body
        self.symcost_path = path
        # of the tensors `state` carries only for the layers that read them (the encoder's output, the embedding's
        # copy), those its layers read (a pass needs no others); None: one layer that reads nothing from `state`
        # (a recompute list's norm, MLP or MoE)
        self.holds = holds

    def forward(self, x, state):
        from torch.utils.checkpoint import checkpoint

        if Checkpoint.kept is not None:  # its input, and the tables in `state` it holds on to
            held = [] if self.holds is None else [value for key, value in state.items()
                                                  if key not in READ or key in self.holds]
            for t in (x, *(v for value in held for v in (value if isinstance(value, tuple) else (value,)))):
                if isinstance(t, torch.Tensor):
                    Checkpoint.kept(t, self.symcost_path)
        return checkpoint(self.body, x, state, use_reentrant=False)


def checkpointed(fn):
    """`fn` under torch.utils.checkpoint (selective recomputation's attention core, a recompute list's activation):
    its tensor inputs kept, which a memory measurement is told, the rest run again in backward; the checkpoint
    keeps the RNG state, so dropout draws the same mask again."""
    from torch.utils.checkpoint import checkpoint

    def run(*args):
        if Checkpoint.kept is not None:
            for t in args:
                if isinstance(t, torch.Tensor):
                    Checkpoint.kept(t, None)
        return checkpoint(fn, *args, use_reentrant=False)

    return run


@dataclass
class Build:
    """What a component's `build` may use: concrete sizes, the flow before it, shared modules."""

    values: dict[sympy.Symbol, sympy.Integer]
    flow: Flow = field(default_factory=Flow)
    path: str = ""
    embedding: nn.Module | None = None  # the token embedding, for a tied head
    attention: str = "eager"  # how attention layers compute their core (see components/attention.attend)
    recompute: str = "none"  # selective (or a list naming attention): each attention core checkpointed
    carries: bool = False  # a concat_embedding reads the embedding's output: the embedding leaves it in `state`

    def int(self, e: sympy.Expr) -> int:
        value = sympy.sympify(e).xreplace(self.values)
        assert value.is_Integer, f"{e} = {value} is not an integer"  # evaluate() checked this
        return int(value)

    def rate(self, e: sympy.Expr | None) -> float:
        """A rate field at these values (0 when unset): the probability torch takes."""
        return 0.0 if e is None else float(sympy.sympify(e).xreplace(self.values))

    def part(self, forward, **modules: nn.Module) -> Part:
        return Part(forward, self.path, **modules)
