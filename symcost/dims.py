"""A spec's dimensions: free ones (a symbol, usually with a default) and derived ones
(an expression over other dims), in an order where each comes after what it uses.

A free dim is a size (a positive integer) or, written `{rate: 0.1}`, a rate: a rational in
[0, 1) such as a dropout probability. A rate is read exactly as written (0.1 is 1/10) and
may stand only in a rate field (a layer's dropout); no size, and no derived dim, uses it.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

import sympy

from . import expr, symbols
from .checks import Check, whole
from .errors import SpecError
from .limits import MAX_LITERAL
from .source import Document

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = set(expr.FUNCTIONS)
# what sympy.parse_expr, which reads derive's JSON formulas back, resolves to something other than a symbol
_SYMPY_NAMES = frozenset(sympy.__all__)
MAX_DIMS = 256  # also bounds the depth of the dependency walk below


@dataclass(frozen=True)
class Dim:
    name: str
    default: int | Fraction | None  # free dims: the value used unless overridden
    definition: sympy.Expr | None  # derived dims: the expression; None for free dims
    rate: bool = False  # a rational in [0, 1) (a dropout probability), not a size

    @property
    def symbol(self) -> sympy.Symbol:
        return symbols.rate(self.name) if self.rate else symbols.dim(self.name)

    def accepts(self, value: object) -> str | None:
        """Why `value` (from --set or the API) cannot be this dim's, or None when it can."""
        if isinstance(value, bool) or not isinstance(value, int | Fraction):
            return f"expected a number, got {type(value).__name__}"
        if self.rate:
            return None if 0 <= value < 1 else f"{self.name} is a rate: a number in [0, 1), e.g. 0.1"
        if value != int(value) or value <= 0:
            return "expected a positive integer (a size)"
        return None


def shown(value: int | Fraction) -> int | str:
    """A dim's value for people: a size as it is, a rate as the decimal it was written as (0.1),
    or n/d where no decimal is exact (1/3)."""
    if not isinstance(value, Fraction):
        return value
    text = repr(float(value))
    return text if Fraction(text) == value else f"{value.numerator}/{value.denominator}"


def rate(value: object) -> Fraction:
    """A rate as written: 0.1 (exactly 1/10), 0, a Fraction, or a fraction '1/10'; in [0, 1)."""
    if isinstance(value, Fraction):
        pass
    elif isinstance(value, float) and math.isfinite(value):
        value = Fraction(Decimal(repr(value)))  # the digits the YAML holds, not the nearest binary
    elif isinstance(value, str):  # '1/10' (through the whitelist parser, never eval)
        try:
            parsed = expr.parse(value, {})
        except expr.ExprError:
            parsed = None
        value = Fraction(int(parsed.p), int(parsed.q)) if parsed is not None and parsed.is_Rational else None
    elif isinstance(value, bool) or not isinstance(value, int):
        value = None
    if value is None or not 0 <= value < 1:
        raise expr.ExprError("a rate is a number in [0, 1), e.g. 0.1 or 1/10, or a rate dim")
    return Fraction(value)


@dataclass(frozen=True)
class Dims:
    """Declared dims in dependency order; `doc` is kept to point errors at their line."""

    items: tuple[Dim, ...]
    doc: Document | None = None

    @classmethod
    def parse(cls, raw: object, doc: Document) -> Dims:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise doc.error(("dims",), "expected a mapping of dimension names to sizes")
        if len(raw) > MAX_DIMS:
            raise doc.error(("dims",), f"more than {MAX_DIMS} dims")
        for name in raw:
            if not _NAME.match(name) or keyword.iskeyword(name) or name in _RESERVED:
                raise doc.error(("dims", name), f"{name!r} is not a valid dim name (letters, digits, _; not a keyword or function)")
            if name in _SYMPY_NAMES:
                raise doc.error(("dims", name), f"{name!r} is a name sympy reads as its own object (E is Euler's "
                                                "number, N a function); formulas in JSON could not be read back: "
                                                "choose another name")
        rates = {name for name, value in raw.items() if isinstance(value, dict)}
        names = {name: symbols.rate(name) if name in rates else symbols.dim(name) for name in raw}
        dims: dict[str, Dim] = {}
        for name, value in raw.items():
            where = ("dims", name)
            if value is None:
                dims[name] = Dim(name, None, None)
            elif name in rates:
                if list(value) != ["rate"]:
                    raise doc.error(where, "a dim written as a mapping is a rate, e.g. {rate: 0.1}")
                try:
                    dims[name] = Dim(name, rate(value["rate"]), None, rate=True)
                except expr.ExprError as e:
                    raise doc.error(where + ("rate",), str(e)) from None
            else:
                try:
                    definition = expr.parse(value, names)
                except expr.ExprError as e:
                    raise doc.error(where, str(e)) from None
                if definition.is_Number:
                    if not (definition.is_Integer and definition > 0):
                        raise doc.error(where, f"must be a positive integer, got {definition}")
                    dims[name] = Dim(name, int(definition), None)
                else:
                    if used := sorted(str(r) for r in definition.free_symbols if str(r) in rates):
                        raise doc.error(where, f"uses the rate {used[0]}; a size cannot depend on a rate")
                    dims[name] = Dim(name, None, definition)
        parsed = cls(_ordered(dims, doc), doc)
        substituted: dict[sympy.Symbol, sympy.Expr] = {}
        for d in parsed.items:  # each checked as it is substituted, before a later dim builds on it
            if d.definition is not None:
                parsed.check_terms(d.definition, ("dims", d.name), raw[d.name], substituted)
                substituted[d.symbol] = d.definition.xreplace(substituted)
        return parsed

    @property
    def names(self) -> dict[str, sympy.Symbol]:
        return {d.name: d.symbol for d in self.items}

    def __getitem__(self, name: str) -> Dim:
        for d in self.items:
            if d.name == name:
                return d
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(d.name == name for d in self.items)

    def overridden(self, values: Mapping[str, int | Fraction]) -> Dims:
        """These dims with `values` as defaults; a derived dim given a value becomes free."""
        for name, value in values.items():
            if name not in self:
                declared = ", ".join(d.name for d in self.items) or "none"
                raise SpecError(f"{name}: no such dim; declared dims: {declared}", param="dims")
            if (why := self[name].accepts(value)) is not None:
                raise SpecError(f"{name}={shown(value)}: {why}", param="dims")
        items = tuple(
            replace(d, default=values[d.name] if d.rate else int(values[d.name]), definition=None)
            if d.name in values else d
            for d in self.items
        )
        return Dims(items, self.doc)

    def substitution(self, keep: Iterable[str] = ()) -> dict[sympy.Symbol, sympy.Expr]:
        """Each derived dim (except those kept) -> its expression in free (and kept) dims."""
        keep = set(keep)
        for name in keep:
            if name not in self:
                raise SpecError(f"keep {name}: no such dim", param="keep")
        out: dict[sympy.Symbol, sympy.Expr] = {}
        for d in self.items:
            if d.definition is not None and d.name not in keep:
                out[d.symbol] = d.definition.xreplace(out)
        return out

    def check_terms(self, e: sympy.Expr, path: tuple, text: object, substitution: dict | None = None) -> None:
        """A size, once derived dims are substituted (all of them, or `substitution`), must stay a
        short polynomial (expr.check_terms)."""
        try:
            expr.check_terms(e.xreplace(self.substitution() if substitution is None else substitution), text)
        except expr.ExprError as err:
            raise self.doc.error(path, str(err)) from None

    @property
    def rates(self) -> frozenset[sympy.Symbol]:
        return frozenset(d.symbol for d in self.items if d.rate)

    def plain(self, values: Mapping[sympy.Symbol, sympy.Rational]) -> dict[str, int | float]:
        """Exact dim values as output shows them: a size as an int, a rate as a float (0.1 as written)."""
        rates = self.rates
        return {str(s): float(v) if s in rates else int(v) for s, v in values.items()}

    def values(self) -> dict[sympy.Symbol, sympy.Rational]:
        """Exact values of every dim at the defaults; errors name the dim that fails."""
        out: dict[sympy.Symbol, sympy.Integer] = {}
        for d in self.items:
            if d.definition is None:
                if d.default is None:
                    raise self._error(d, f"has no value; give one with `{d.name}=N`")
                out[d.symbol] = sympy.Rational(d.default.numerator, d.default.denominator) if d.rate \
                    else sympy.Integer(d.default)
                continue
            if (message := self.check(d).failure(lambda e: e.xreplace(out))) is not None:
                raise self._error(d, message)
            out[d.symbol] = d.definition.xreplace(out)
        return out

    def check(self, d: Dim) -> Check:
        """A derived dim must come out a positive integer below MAX_LITERAL, as a written one: each
        is checked as it is computed, so that a chain of powers (b: a**16, c: b**16, …) stops at
        the first too large instead of growing past memory."""
        used = sorted(d.definition.free_symbols, key=str)
        at = ", ".join(f"{s}={{}}" for s in used)
        return Check(d.name, whole(d.definition) & (d.definition > 0) & (d.definition < MAX_LITERAL),
                     f"{d.definition} = {{}} at {at}; a dim must be a positive integer below 10**18",
                     (d.definition, *used))

    def _error(self, d: Dim, message: str) -> SpecError:
        if self.doc is None:
            return SpecError(message, path=("dims", d.name))
        return self.doc.error(("dims", d.name), message)


def _ordered(dims: dict[str, Dim], doc: Document) -> tuple[Dim, ...]:
    """Dims sorted so that each derived dim follows the dims it uses; cycles are errors."""
    done: dict[str, Dim] = {}
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise doc.error(("dims", name), "cyclic definition: " + " -> ".join(cycle))
        visiting.append(name)
        definition = dims[name].definition
        if definition is not None:
            for used in sorted(definition.free_symbols, key=str):
                visit(str(used))
        visiting.pop()
        done[name] = dims[name]

    for name in dims:
        visit(name)
    return tuple(done.values())
