"""The planner's questions to a layer type about tensor parallelism: its Rule (declared on the
component class as `parallel`; components/parallel.py says what a rule holds), and why tp cannot
split it when it cannot."""

from __future__ import annotations

from ..components import REGISTRY
from ..components.parallel import REPLICATED, Rule

__all__ = ["REPLICATED", "Rule", "refusal", "rule_of"]


def rule_of(component) -> Rule:
    """The component's rule; a type without one is replicated (tp > 1 is refused for it first)."""
    return type(component).parallel or REPLICATED


def refusal(component, training: bool = True) -> str | None:
    """Why tp cannot split this layer (its type has no rule, one of its settings forbids it, or, `training`,
    its rule is a serving engine's only), else None."""
    rule = type(component).parallel
    if rule is None or (training and not rule.trains):
        ruled = sorted(kind for kind in REGISTRY if (r := REGISTRY[kind].parallel) is not None and (r.trains or
                                                                                                  not training))
        only = " for training; serve splits them as vLLM does" if rule is not None else ""
        return f"{component.kind} layers have no tensor-parallel rule{only} (types with one: {', '.join(ruled)})"
    return rule.refuses(component)
