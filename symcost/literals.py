"""Numbers as people type them ('7e9', '50_257'), parsed exactly and bounded like the spec's
own integers; light (no click, no sympy): the API, the commands and the cached eval path
share it."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from .errors import SpecError
from .limits import MAX_LITERAL

_FRACTION = re.compile(r"^(\d{1,18})/(\d{1,18})$")


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def integer(text: str, what: str) -> int:
    """'1024', '50_257', '7e9' -> a positive int below the spec's own bound (10^18): the
    exponent is checked before any digits are built, so 1e999999999 is refused at once."""
    value = _decimal(text)
    if value is None or value.adjusted() >= 18 or value != value.to_integral_value():
        raise SpecError(f"{what} {text!r}: expected a whole number below 10^18, e.g. 1024 or 7e9", param=what)
    number = int(value)
    if not 1 <= number < MAX_LITERAL:
        raise SpecError(f"{what} {text!r}: sizes must be positive integers below 10^18", param=what)
    return number


def exact(text: str, what: str) -> Fraction:
    """'7e9', '1.5e21', '300_000_000_000' -> an exact positive rational (bounded exponent)."""
    value = _decimal(text)
    if value is None or not -30 <= value.adjusted() <= 60:
        raise SpecError(f"{what} {text!r}: expected a number such as 7e9 (between 1e-30 and 1e60)", param=what)
    if value <= 0:
        raise SpecError(f"{what} {text!r}: must be positive", param=what)
    return Fraction(value)


def dim_value(text: str, what: str) -> int | Fraction:
    """A dim's value as typed: '1024', '7e9' -> an int; '0.1' or '1/10' -> exactly 1/10 (a rate dim's).
    Which a dim takes (a positive integer, or a rate in [0, 1)) is checked against the spec's dims."""
    if m := _FRACTION.match(text.strip()):
        if int(m.group(2)) == 0:
            raise SpecError(f"{what} {text!r}: divides by zero", param=what)
        value = Fraction(int(m.group(1)), int(m.group(2)))
        return int(value) if value.denominator == 1 else value
    value = _decimal(text)
    if value is None or value.adjusted() >= 18 or value.as_tuple().exponent < -18:
        raise SpecError(f"{what} {text!r}: expected a number: a size below 10^18 (1024, 7e9) or a rate (0.1)", param=what)
    return int(value) if value == value.to_integral_value() else Fraction(value)


def real(text: str, what: str) -> float:
    """'0.4', '2.5', '1e6' -> a finite float (inf, nan and exponents past 10^±30 refused, as written)."""
    value = _decimal(text)
    if value is None or (value and not -30 <= value.adjusted() <= 30):
        raise SpecError(f"{what} {text!r}: expected a finite number such as 0.4 or 2.5", param=what)
    return float(value)
