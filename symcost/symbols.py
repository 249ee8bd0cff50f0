"""The one place that creates sympy symbols for dimensions.

Every size dimension is a positive integer; creating a symbol elsewhere (with other
assumptions) would make `Symbol('d_model')` and this one different objects. A rate dim
(a dropout probability) is a rational in [0, 1): its own symbol, so that sympy never takes
`dropout > 0` for granted as it would for a positive integer.
"""

from functools import cache

import sympy


@cache
def dim(name: str) -> sympy.Symbol:
    """The symbol for the dimension `name` (a positive integer)."""
    return sympy.Symbol(name, integer=True, positive=True)


@cache
def rate(name: str) -> sympy.Symbol:
    """The symbol for the rate dim `name` (a rational in [0, 1))."""
    return sympy.Symbol(name, rational=True, nonnegative=True)


# Bytes of one activation value (2 for bf16): activation-memory formulas are written in it,
# and `memory` substitutes the dtype asked for.
ACT = sympy.Symbol("act_bytes", integer=True, positive=True)
