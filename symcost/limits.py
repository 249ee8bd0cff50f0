"""Limits shared by the spec reader and the command line (light: no sympy here)."""

MAX_FILE_BYTES = 1_000_000  # a spec or config file
MAX_LITERAL = 10**18  # every integer a user writes, in a spec or as an option, is below this


def whole(x) -> bool:
    """An integer as an argument (True is not 1)."""
    import numbers

    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def finite(x) -> bool:
    """A finite real number as an argument (True is not 1; no inf, no nan)."""
    import math
    import numbers

    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)
