"""Text for people: readable formulas, numbers with one set of suffixes, byte units, and
lines that fit the terminal. No sympy at import: the fast `eval` path renders cached data."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

DEFAULT_WIDTH = 100  # when not writing to a terminal

# Control characters (and Unicode's invisible direction overrides) a spec's text may carry:
# printed as escapes, so that a name cannot move the cursor, recolour or reorder the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character written as an escape (\\x1b); newlines and tabs kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", text)
MIN_WIDTH = 40


def width() -> int:
    """Columns to fit: $COLUMNS, else the terminal's width, else 100 when not a TTY."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return max(MIN_WIDTH, int(env))
    if sys.stdout.isatty():
        import shutil

        return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)
    return DEFAULT_WIDTH


def formula(e) -> str:
    """A closed form as `sympy.parse_expr` reads it back (JSON), highest-degree terms first."""
    import sympy

    return sympy.sstr(e, order="grlex")


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_POWER = re.compile(r"\*\*(\d+)")
_WORDS = {"oo": "∞", "Min": "min", "Max": "max", "ceiling": "ceil", "CRootOf": "root"}
_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b")


# 1 where a condition holds, else 0 (a dropout mask's bytes: "[dropout > 0]"): Iverson's bracket
_INDICATOR = re.compile(r"Piecewise\(\(1, ([^(),]+)\), \(0, True\)\)")


def pretty(e) -> str:
    """A closed form for reading: `·` for products, superscript powers, ∞, [condition] for 1 or
    0; no `**`."""
    text = _INDICATOR.sub(r"[\1]", formula(e) if not isinstance(e, str) else e)
    text = _POWER.sub(lambda m: m.group(1).translate(_SUPERSCRIPT), text)
    text = text.replace("**", "^").replace("*", "·")
    return _WORD.sub(lambda m: _WORDS[m.group(1)], text)


_SUFFIXES = ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K"))


def human(n) -> str:
    """124439808 -> 124.44M: K, M, B, T, then scientific (1.15e15); exact below 1,000."""
    value = float(n)
    if abs(value) >= 1e15:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    for scale, suffix in _SUFFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}"
    return number(n)


def number(v) -> str:
    """An exact number: integers with separators, other rationals to 6 significant digits."""
    if getattr(v, "denominator", 1) != 1:  # a Fraction
        return f"{float(v):,.6g}"
    if isinstance(v, float):
        return f"{v:,.6g}"
    return f"{int(v):,}"


def decimal(v, places: int = 6) -> str:
    """A real number (a sympy rational or algebraic number) rounded once, exactly, to `places`
    decimals with separators: a float would print digits past 2**53 that are not the number's."""
    import sympy

    scaled = int(sympy.floor(sympy.sympify(v) * 10**places + sympy.Rational(1, 2)))
    whole, part = divmod(abs(scaled), 10**places)
    return f"{'-' if scaled < 0 else ''}{whole:,}.{part:0{places}d}"


def exact_and_human(v) -> str:
    """`124,439,808  (124.44M)`; the readable form only where it says something."""
    text = number(v)
    return text if abs(float(v)) < 1000 else f"{text}  ({human(v)})"


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def bytes_human(n) -> str:
    value, i = float(n), 0
    while abs(value) >= 1024 and i < len(_BYTE_UNITS) - 1:
        value, i = value / 1024, i + 1
    return f"{int(value)} B" if i == 0 and value == int(value) else f"{value:.2f} {_BYTE_UNITS[i]}"


def wrap(text: str, limit: int, indent: int = 4) -> list[str]:
    """`text` in lines of at most `limit` columns: broken before ` + ` / ` - ` terms, then at
    spaces or `·` and `, `, then anywhere; continuation lines indented by `indent` more
    than the first line's own indentation."""
    if len(text) <= limit:
        return [text]
    lead = len(text) - len(text.lstrip(" "))
    pad = " " * min(lead + indent, limit // 2)
    lines, rest = [], text
    room = limit
    while len(rest) > room:
        cut = _cut(rest, room)
        lines.append(rest[:cut].rstrip())
        rest = pad + rest[cut:].lstrip()
        room = limit
    lines.append(rest)
    return lines


def _cut(text: str, room: int) -> int:
    """Where to end a line of at most `room` columns: before a ` + ` or ` - ` term, after `, `
    or `·`, or at a space (a leading `+ ` stays with its term); else at `room`."""
    start = len(text) - len(text.lstrip(" ")) + 2
    for pattern, after in ((" + ", 0), (" - ", 0), (", ", 2), (" ", 0), ("·", 1)):
        # a cut after the pattern keeps it on this line: it must fit, trailing space aside
        at = text.rfind(pattern, start, room + 1 - (after if pattern == "·" else 0))
        if at > 0:
            return at + after
    return room


def fit(text: str, limit: int | None = None) -> str:
    """Every line of `text` wrapped to `limit` columns (default: width())."""
    limit = limit or width()
    return "\n".join(piece for line in text.split("\n") for piece in wrap(line, limit))


def table(head: Sequence[str], rows: Sequence[Sequence[str]], limit: int | None = None,
          compact: Sequence[dict[int, str]] = ()) -> list[str]:
    """Aligned columns within `limit`: when too wide, each entry of `compact` (column ->
    shorter text, per row) is tried in turn, then the first column is shortened from the left."""
    limit = limit or width()
    rows = [list(map(str, r)) for r in rows]
    lines = _aligned(head, rows)
    if max(map(len, lines)) > limit and compact:
        rows = [[alt.get(i, c) for i, c in enumerate(r)] for r, alt in zip(rows, compact)]
        lines = _aligned(head, rows)
    over = max(map(len, lines)) - limit
    if over > 0:
        first = max(len(head[0]), *(len(r[0]) for r in rows)) if rows else len(head[0])
        keep = max(8, first - over)
        rows = [[_left_cut(r[0], keep), *r[1:]] for r in rows]
        lines = _aligned(head, rows)
    return [line[:limit] for line in lines]


def _left_cut(text: str, keep: int) -> str:
    return text if len(text) <= keep else "…" + text[len(text) - keep + 1:]


def _aligned(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths)).rstrip()
    return [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
