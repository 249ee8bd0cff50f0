"""The one place that creates sympy symbols for dimensions.

Every dimension is a positive integer; creating a symbol elsewhere (with other
assumptions) would make `Symbol('d_model')` and this one different objects.
"""

from functools import cache

import sympy


@cache
def dim(name: str) -> sympy.Symbol:
    """The symbol for the dimension `name` (a positive integer)."""
    return sympy.Symbol(name, integer=True, positive=True)


# Bytes of one activation value (2 for bf16): activation-memory formulas are written in it,
# and `memory` substitutes the dtype asked for.
ACT = sympy.Symbol("act_bytes", integer=True, positive=True)
