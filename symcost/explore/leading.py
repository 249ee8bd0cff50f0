"""Leading terms: what dominates a cost as one dim grows.

Asymptotically floor(x) ~ x and ceil(x) ~ x; min(a, n) tends to the arguments that do not
grow with n (a sliding window caps attention), max(a, n) to those that do. The result is
the highest power of the dim in what remains, with its exact coefficient: forward FLOPs
~ 4·b·L·d·n² as seq_len -> oo for a transformer.
"""

from __future__ import annotations

import sympy

from .. import symbols


def _asymptotic(e: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
    def bounded(args, grows: bool):
        kept = [a for a in args if (x in a.free_symbols) == grows]
        return kept or list(args)

    e = e.replace(sympy.floor, lambda a: a).replace(sympy.ceiling, lambda a: a)
    e = e.replace(sympy.Min, lambda *args: sympy.Min(*bounded(args, grows=False)))
    return e.replace(sympy.Max, lambda *args: sympy.Max(*bounded(args, grows=True)))


def leading(e: sympy.Expr, name: str) -> sympy.Expr:
    """The dominant term of `e` as dim `name` -> infinity (e itself when not polynomial in it)."""
    x = symbols.dim(name)
    if x not in e.free_symbols:
        return e
    poly = sympy.expand(_asymptotic(e, x)).as_poly(x)
    if poly is None:
        return e
    degree = poly.degree()
    return sympy.factor(poly.coeff_monomial(x**degree)) * x**degree
