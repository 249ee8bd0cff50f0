"""Closed forms as JavaScript over exact rationals (BigInt numerator and denominator).

Every sympy node a cost, byte count or check can hold is compiled to a call into the page's
small runtime (runtime.js: add, mul, pow, floor, ceil, mod, min, max, cmp), so that the
browser computes each number exactly, as `symcost eval` does. A node outside that set is
an error here, never a silently wrong page.
"""

from __future__ import annotations

import json

import sympy
from sympy.core.relational import Relational

_RELATIONS = {"==": "===", "!=": "!==", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_CALLS = {sympy.Add: "add", sympy.Mul: "mul", sympy.Min: "min", sympy.Max: "max"}


class Unsupported(ValueError):
    """A node the page's runtime has no exact rule for."""


def js(e: sympy.Basic) -> str:
    """e as a JavaScript expression over the rationals `v["dim"]`; a condition compiles to a
    JavaScript boolean."""
    if e is sympy.true or e is sympy.false:
        return "true" if e is sympy.true else "false"
    if isinstance(e, sympy.Integer):
        return f"q({int(e)}n)"
    if isinstance(e, sympy.Rational):
        return f"q({e.p}n,{e.q}n)"
    if isinstance(e, sympy.Symbol):
        return f"v[{json.dumps(str(e))}]"
    for kind, call in _CALLS.items():
        if isinstance(e, kind):
            return f"{call}({','.join(js(a) for a in e.args)})"
    if isinstance(e, sympy.Pow):
        if not e.exp.is_Integer:
            raise Unsupported(f"a power with exponent {e.exp}")
        return f"pow({js(e.base)},{int(e.exp)})"
    if isinstance(e, sympy.floor | sympy.ceiling):
        return f"{'floor' if isinstance(e, sympy.floor) else 'ceil'}({js(e.args[0])})"
    if isinstance(e, sympy.Mod):
        return f"mod({js(e.args[0])},{js(e.args[1])})"
    if isinstance(e, sympy.Piecewise):
        out = "undefinedPiece()"
        for value, cond in reversed(e.args):
            out = js(value) if cond is sympy.true else f"({js(cond)}?{js(value)}:{out})"
        return out
    if isinstance(e, Relational):
        return f"(cmp({js(e.lhs)},{js(e.rhs)}){_RELATIONS[e.rel_op]}0)"
    if isinstance(e, sympy.And | sympy.Or):
        joiner = "&&" if isinstance(e, sympy.And) else "||"
        return "(" + joiner.join(js(a) for a in e.args) + ")"
    if isinstance(e, sympy.Not):
        return f"(!{js(e.args[0])})"
    raise Unsupported(f"{type(e).__name__} in {e}")
