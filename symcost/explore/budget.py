"""Training budgets from the exact count: total compute for a number of tokens, tokens for a
compute budget, and the compute-optimal size of Hoffmann et al. 2022 ("Chinchilla": about
20 training tokens per parameter, their Table 3 / Section 3.4), solved over one dim.

Per-token training FLOPs are the exact train FLOPs of one pass divided by the tokens (or
images) it reads; a run of D tokens costs D times that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

import sympy

from ..derive import derive
from ..evaluate import dim_values, evaluate
from ..results import Result
from ..spec import Spec
from .solve import Solution, bracket, in_one_variable, roots_in, setup

TOKENS_PER_PARAM = 20


@dataclass(repr=False)  # repr is Result's summary
class Budget(Result):
    """A run's compute from its tokens, or its tokens from a compute budget, exactly."""

    params: int
    train_per_input: Fraction  # exact FLOPs per training token (or image)
    tokens: Fraction
    flops: Fraction

    def to_dict(self) -> dict:
        from ..render.explore import budget_data

        return budget_data(self)

    def text(self, width: int | None = None) -> str:
        from ..render.explore import budget_text

        return budget_text(self)

    def summary(self):
        from ..render.text import human

        return "training budget", [("params", f"{self.params:,}"), ("tokens", human(self.tokens)),
                                   ("train FLOPs", human(self.flops))]


def budget(spec: Spec, *, tokens=None, flops=None, values=None, convention="pytorch") -> Budget:
    """Give tokens to get compute, or compute to get tokens (exact rationals)."""
    e = evaluate(derive(spec, convention), values)
    per = Fraction(e.total["train"], e.inputs)
    if tokens is not None:
        return Budget(e.total["params"], per, Fraction(tokens), per * Fraction(tokens))
    return Budget(e.total["params"], per, Fraction(flops) / per, Fraction(flops))


def optimal(
    spec: Spec,
    flops,
    unknown: str,
    values: Mapping[str, int] | None = None,
    tokens_per_param: int = TOKENS_PER_PARAM,
    multiple_of: int = 1,
    convention: str = "pytorch",
    flops_text: str | None = None,
) -> Solution:
    """Sizes of `unknown` whose compute-optimal run (tokens = tokens_per_param x params) costs `flops`."""
    values = {k: v for k, v in (values or {}).items() if k != unknown}
    derivation, x = setup(spec, unknown, values, convention)
    t = derivation.total
    run = t.train / derivation.inputs * tokens_per_param * t.params  # FLOPs of the whole run
    equation, fixed = in_one_variable(derivation, run, unknown, values)
    target = sympy.nsimplify(flops, rational=True)
    roots = [bracket(derivation, run, values, unknown, r, multiple_of) for r in roots_in(equation - target, x)]
    for root in roots:
        for n in (root.below, root.above):
            if n is not None:
                params = int(t.params.xreplace(dim_values(derivation, {**values, unknown: n.value})))
                n.extra = {"params": params, "tokens": tokens_per_param * params}
    seq = derivation.spec.input_dim("seq_len", None) if "seq_len" in derivation.spec.dimset else None
    at_seq = "" if seq is None else f" at seq_len {int(seq.xreplace(dim_values(derivation, values)))}"
    title = (f"compute-optimal for {unknown} by Hoffmann et al. 2022's rule of thumb, {tokens_per_param} tokens per "
             f"parameter (all parameters), with the exact training FLOPs per token{at_seq}, convention "
             f"{derivation.convention.name} (`symcost scaling optimal` uses a fitted law instead):")
    return Solution(title, equation, target, flops_text or str(flops), "train_flops", unknown, fixed, roots)
