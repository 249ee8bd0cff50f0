"""--set NAME=VALUE, parsed without click (the cached `eval` path, cli/_fast.py, reads it too)."""

from __future__ import annotations

import re
from fractions import Fraction

from ..errors import SpecError
from ..literals import dim_value

_SET = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)=(.+)$")


def parse_sets(items: tuple[str, ...]) -> dict[str, int | Fraction]:
    """--set NAME=VALUE items as dim values."""
    out: dict[str, int | Fraction] = {}
    for item in items:
        m = _SET.match(item)
        if not m:
            raise SpecError(f"--set {item!r}: expected NAME=NUMBER, e.g. --set d_model=1024")
        out[m.group(1)] = dim_value(m.group(2), f"--set {m.group(1)}")
    return out
