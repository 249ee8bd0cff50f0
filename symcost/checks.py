"""A constraint on sizes as data: a sympy condition over dims, and the message when it fails.

Components, repeat counts, residual joins and derived dims state their constraints this way
(heads dividing width, a kernel fitting its input, …), so that one statement serves both
`eval` (Python substitutes the sizes) and the page (symcost.page compiles the condition and
the message's numbers to JavaScript).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sympy

Value = Callable[[sympy.Basic], sympy.Basic]  # an expression at concrete dims


@dataclass(frozen=True)
class Check:
    """`holds` must be true at the sizes; otherwise `message`, its `{}` filled with `args`' values."""

    field: str
    holds: sympy.Basic  # a sympy condition (Eq, Le, And, …, or sympy.true / sympy.false)
    message: str
    args: tuple[sympy.Expr, ...] = ()

    def deps(self, substitution: dict) -> list[str]:
        """The free dims it depends on, derived dims replaced by their definitions (`substitution`)."""
        symbols = set().union(*(sympy.sympify(e).free_symbols for e in (self.holds, *self.args)))
        # by the symbols alone: substituting would rebuild (and evaluate) the condition
        used = set().union(*(substitution[s].free_symbols if s in substitution else {s} for s in symbols))
        return sorted(str(s) for s in used)

    def failure(self, value: Value) -> str | None:
        """The message at these sizes, or None where the condition holds."""
        if value(self.holds) is sympy.true:
            return None
        return self.message.format(*(_short(value(a)) for a in self.args))


def _short(v: sympy.Basic) -> str:
    """A value for a message: a number of more than 40 digits by its first ones and its length."""
    text = str(v)
    return text if len(text) <= 40 or not v.is_Integer else f"{text[:12]}… ({len(text.lstrip('-'))} digits)"


def whole(e: sympy.Expr) -> sympy.Basic:
    """e is an integer (e may be a ratio of dims)."""
    return sympy.Eq(sympy.Mod(e, 1), 0)


def divides(d: sympy.Expr, n: sympy.Expr) -> sympy.Basic:
    return sympy.Eq(sympy.Mod(n, d), 0)


def every(conditions: Iterable[sympy.Basic]) -> sympy.Basic:
    return sympy.And(*conditions)
