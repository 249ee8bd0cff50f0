"""A spec's dimensions: free ones (a symbol, usually with a default) and derived ones
(an expression over other dims), in an order where each comes after what it uses."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

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
    default: int | None  # free dims: the value used unless overridden
    definition: sympy.Expr | None  # derived dims: the expression; None for free dims

    @property
    def symbol(self) -> sympy.Symbol:
        return symbols.dim(self.name)


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
        names = {name: symbols.dim(name) for name in raw}
        dims: dict[str, Dim] = {}
        for name, value in raw.items():
            where = ("dims", name)
            if value is None:
                dims[name] = Dim(name, None, None)
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

    def overridden(self, values: Mapping[str, int]) -> Dims:
        """These dims with `values` as defaults; a derived dim given a value becomes free."""
        for name, value in values.items():
            if name not in self:
                declared = ", ".join(d.name for d in self.items) or "none"
                raise SpecError(f"--set {name}: no such dim; declared dims: {declared}")
            if value <= 0:
                raise SpecError(f"--set {name}={value}: sizes must be positive integers")
        items = tuple(
            replace(d, default=values[d.name], definition=None) if d.name in values else d
            for d in self.items
        )
        return Dims(items, self.doc)

    def substitution(self, keep: Iterable[str] = ()) -> dict[sympy.Symbol, sympy.Expr]:
        """Each derived dim (except those kept) -> its expression in free (and kept) dims."""
        keep = set(keep)
        for name in keep:
            if name not in self:
                raise SpecError(f"--keep {name}: no such dim")
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

    def values(self) -> dict[sympy.Symbol, sympy.Integer]:
        """Exact values of every dim at the defaults; errors name the dim that fails."""
        out: dict[sympy.Symbol, sympy.Integer] = {}
        for d in self.items:
            if d.definition is None:
                if d.default is None:
                    raise self._error(d, "has no value; give one with --set " + f"{d.name}=N")
                out[d.symbol] = sympy.Integer(d.default)
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
