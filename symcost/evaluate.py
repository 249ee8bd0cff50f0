"""Exact numbers from a derivation: every dim gets an integer, every cost an exact int.

Values are substituted into the raw cost tree (derived dims as their own values), so a
`--set` on a derived dim is honoured. Before any number is returned, every component's
constraints are checked at those sizes (positive sizes, heads dividing width, …).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import sympy

from .checks import Check
from .cost import Node
from . import symbols
from .derive import CONTEXT, Derivation
from .metrics import METRICS
from .errors import SpecError
from .results import Result


@dataclass(frozen=True, repr=False)
class Evaluation(Result):
    """Exact numbers at concrete sizes: totals, and each component's."""

    derivation: Derivation
    dims: dict[str, int | float]  # a rate dim (a dropout probability) as a float, as written
    total: dict[str, int]
    components: list[tuple[Node, dict[str, int]]]
    inputs: int  # tokens (or images) one forward pass reads
    notes: tuple[str, ...] = ()

    @property
    def input_unit(self) -> str:
        return self.derivation.input_unit

    def to_dict(self) -> dict:
        """The shape of `eval --format json`."""
        from .render.model import evaluation_data

        return evaluation_data(self)

    def text(self, width: int | None = None) -> str:
        from .render.model import evaluation_data, evaluation_text

        return evaluation_text(evaluation_data(self), width)

    def summary(self):
        from .metrics import label
        from .render.text import exact_and_human

        rows = [(label(m), exact_and_human(v)) for m, v in self.total.items()
                if not (m == "active_params" and v == self.total["params"])]
        return f"{self.name} at " + ", ".join(f"{k}={v}" for k, v in self.dims.items()), rows

    def _repr_latex_(self) -> str:
        from .render.model import latex

        return latex(self.derivation, self, display=True)

    def to_pandas(self):
        """One row per component: path, type, params, active params, forward and backward FLOPs."""
        from .results import frame

        return frame(self.to_dict()["components"])

    def reuse(self, v: dict[str, int]) -> float | None:
        """Uses of each active weight per input (see Derivation.reuse)."""
        if not v["active_params"]:
            return None
        return v["forward"] / (self.derivation.convention.flops_per_mac * self.inputs * v["active_params"])

    @property
    def name(self) -> str:
        return self.derivation.spec.name


def dim_values(derivation: Derivation, values: Mapping[str, int] | None = None) -> dict[sympy.Symbol, sympy.Integer]:
    """Every dim's exact value (defaults, overridden by `values`), checked against every component."""
    spec = derivation.spec
    values = dict(values or {})
    context = {}
    if derivation.decode and CONTEXT not in spec.dimset:  # the decode step's own symbol
        if CONTEXT not in values:
            raise SpecError(f"a decode step needs `{CONTEXT}` (tokens already cached): give `{CONTEXT}=N`")
        if values[CONTEXT] < 0:
            raise SpecError(f"{CONTEXT}={values[CONTEXT]}: must be 0 or more", param="dims")
        context = {symbols.dim(CONTEXT): sympy.Integer(values.pop(CONTEXT))}
    subst = spec.dimset.overridden(values).values() | context

    def value(e: sympy.Expr) -> sympy.Expr:
        return sympy.sympify(e).xreplace(subst)

    for where, check in _distinct_checks(derivation):
        if (message := check.failure(value)) is not None:
            raise spec.doc.error(where + (check.field,), message)
    return subst


def _distinct_checks(derivation: Derivation) -> tuple[tuple[tuple, Check], ...]:
    """site_checks once a derivation (a sweep checks every point), each condition at the first layer that states it
    (a condition met at one layer is met at every other: an MTP module's copies of the model's layers)."""
    cached = derivation.__dict__.get("_distinct_checks")
    if cached is None:
        first = {}
        for where, check in site_checks(derivation):
            first.setdefault(check.holds, (where, check))
        cached = tuple(first.values())
        object.__setattr__(derivation, "_distinct_checks", cached)
    return cached


def site_checks(derivation: Derivation) -> Iterator[tuple[tuple, Check]]:
    """Every constraint of the spec's layers, with the YAML path of the layer it is about: each
    component's own, and that its input width is the width the layer before gives."""
    for site in (*derivation.sites, *derivation.mtp_sites):
        for check in site.component.checks(site.ctx):
            yield site.where, check
        wanted, have = site.component.in_width(), site.ctx.flow.width
        if wanted is not None and have is not None:
            yield site.where, Check("dim", sympy.Eq(wanted, have),
                                    "expects {} features per token, but the layer before gives {}", (wanted, have))


def evaluate(derivation: Derivation, values: Mapping[str, int] | None = None) -> Evaluation:
    subst = dim_values(derivation, values)

    def numbers(cost) -> dict[str, int]:
        return {m: int(e.xreplace(subst)) for m, e in cost.metrics(derivation.tuned).items()}

    return Evaluation(
        derivation,
        derivation.spec.dimset.plain(subst),
        numbers(derivation.raw_total),
        [(node, numbers(node.cost)) for node in derivation.raw],
        int(derivation.inputs.xreplace(subst)),
    )


__all__ = ["METRICS", "Evaluation", "dim_values", "evaluate"]
