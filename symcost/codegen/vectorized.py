"""Exact integers for many sizes at once: sympy closed forms -> numpy, without floats.

A cost is an integer-valued rational expression, possibly with floors (conv output
sizes) and min/max (windows). It is put over one denominator, and every floor(p/q) and
the final division become integer floor divisions of integer polynomials, so numpy
computes exactly what `evaluate` computes. int64 is used at every point where a bound on
every partial sum (the sum of the terms' absolute values, computed in float64) stays
below 2^62; the other points are computed with Python integers (an object array) —
slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sympy

INT64_SAFE = 2.0**62


class IntDiv(sympy.Function):
    """floor(num / den) on integers; prints itself as `num // den` for Python and numpy."""

    def _pythoncode(self, printer) -> str:
        num, den = self.args
        return f"(({printer._print(num)}) // ({printer._print(den)}))"

    _numpycode = _pythoncode


def exact_form(e: sympy.Expr) -> sympy.Expr:
    """e with every floor, ceiling and division as an integer floor division."""

    def floordiv(arg: sympy.Expr) -> sympy.Expr:
        num, den = sympy.fraction(sympy.together(exact_form(arg)))
        return IntDiv(sympy.expand(num), sympy.expand(den))

    e = e.replace(sympy.floor, floordiv)
    e = e.replace(sympy.ceiling, lambda arg: -floordiv(-arg))
    num, den = sympy.fraction(sympy.together(e))
    return IntDiv(sympy.expand(num), sympy.expand(den)) if den != 1 else sympy.expand(num)


def _magnitude(e: sympy.Expr) -> sympy.Expr:
    """An upper bound of |e| and of its partial sums: every coefficient made positive."""
    if isinstance(e, IntDiv):
        return _magnitude(e.args[0])
    if e.is_Add:
        return sympy.Add(*(_magnitude(t) for t in e.args))
    if e.is_Mul:
        return sympy.Mul(*(_magnitude(f) for f in e.args))
    if e.is_Number:
        return abs(e)
    if isinstance(e, (sympy.Min, sympy.Max)):
        return sympy.Add(*(_magnitude(a) for a in e.args))
    if e.is_Pow:
        return _magnitude(e.base) ** e.exp
    return e


NUMPY_MODULES = [  # Min and Max elementwise over arrays
    {"Min": np.minimum, "Max": np.maximum}, "numpy"]


class Vectorized:
    """A compiled closed form: call with {dim: array} (broadcastable), get exact integers.

    `fixed` dims are substituted before compiling: coefficients then cancel (a GQA ratio
    n_kv_heads / n_heads becomes a number), which keeps intermediate values small.
    """

    def __init__(self, e: sympy.Expr, fixed: Mapping[str, int] | None = None) -> None:
        e = sympy.sympify(e)
        if fixed:
            e = e.xreplace({s: sympy.Integer(fixed[str(s)]) for s in e.free_symbols if str(s) in fixed})
        self.expr = e
        self.names = sorted(str(s) for s in self.expr.free_symbols)
        symbols = sorted(self.expr.free_symbols, key=str)
        exact = exact_form(self.expr)
        self._exact = sympy.lambdify(symbols, exact, modules=NUMPY_MODULES)
        self._bound = sympy.lambdify(symbols, _magnitude(exact), modules=NUMPY_MODULES)

    def __call__(self, values: Mapping[str, np.ndarray | int]) -> np.ndarray:
        missing = [n for n in self.names if n not in values]
        if missing:
            raise KeyError(f"no values for {', '.join(missing)}")
        args = [np.asarray(values[n]) for n in self.names]
        shape = np.broadcast_shapes(*(np.shape(v) for v in values.values()))  # every point asked for
        if not self.names:
            return np.full(shape, int(self.expr), dtype=object if abs(int(self.expr)) > INT64_SAFE else np.int64)
        args = [np.broadcast_to(a, shape) for a in args]
        safe = np.broadcast_to(self._bound(*(a.astype(np.float64) for a in args)) < INT64_SAFE, shape)
        if safe.all():
            return np.broadcast_to(self._exact(*(a.astype(np.int64) for a in args)), shape)
        result = np.empty(shape, dtype=object)
        if safe.any():
            result[safe] = self._exact(*(a[safe].astype(np.int64) for a in args)).astype(object)
        unsafe = ~safe
        result[unsafe] = self._exact(*(a[unsafe].astype(object) for a in args))
        return result
