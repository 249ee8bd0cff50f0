"""Closed forms as code a training loop can import: a small Python function with no dependency
(plain integers and fractions.Fraction), exact at every size.

Floors and ceilings print as integer floor division (explore.vectorized.exact_form); a value that
is not an integer (FLOPs per token) is returned as an exact Fraction of two integers.
"""

from __future__ import annotations

import keyword

import sympy
from sympy.printing.pycode import pycode

from .explore.vectorized import exact_form


def python_function(name: str, e: sympy.Expr, defaults: dict[str, int | None], doc: str, header: str = "") -> str:
    """Source of `def name(**dims)` returning `e` exactly: arguments in `defaults`' order, those
    without a default (None) first."""
    used = {str(s) for s in e.free_symbols}
    missing = sorted(used - set(defaults))
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    args = sorted((k for k in defaults if k in used), key=lambda k: defaults[k] is not None)
    for a in args:
        if not a.isidentifier() or keyword.iskeyword(a):
            raise ValueError(f"{a!r} is not a Python name")
    num, den = sympy.fraction(sympy.together(e))
    body = f"Fraction({pycode(exact_form(num))}, {pycode(exact_form(den))})" if den != 1 else pycode(exact_form(num))
    signature = ", ".join(a if defaults[a] is None else f"{a}={int(defaults[a])}" for a in args)
    lines = [header.rstrip(), "from fractions import Fraction", "", "",
             f"def {name}({signature}):", f'    """{doc}"""', f"    return {body}", ""]
    return "\n".join(lines).lstrip("\n")
