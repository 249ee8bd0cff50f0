"""solve and crossover: where a closed form meets a target, or two parts meet each other.

All dims but the unknown are fixed (defaults, --set), which leaves an equation in one
variable. Its positive real roots come from sympy: in radicals for polynomials up to
degree 2 (a parameter count is quadratic in width), as exact algebraic numbers (CRootOf)
for higher degrees, and by exact bisection where floors or mins make it no polynomial. Sizes
are integers and not every integer is a valid size (heads must divide width; a
--multiple-of may be asked), so each root is bracketed by the nearest valid sizes below
and above — found by stepping outwards and running the spec's own checks — with the
metric's exact value at each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy

from .. import symbols
from ..cost import Cost, total
from ..derive import Derivation, derive
from ..metrics import METRICS
from ..errors import SpecError
from ..evaluate import dim_values
from ..memory import all_metrics
from ..precision import Precision
from ..results import Result
from ..spec import Spec

SEARCH_STEPS = 10_000  # candidate sizes tried on each side of a root


@dataclass
class Neighbour:
    value: int
    metric: int
    extra: dict = field(default_factory=dict)  # more numbers at this size (budget: params and tokens)


@dataclass
class Skipped:
    value: int
    reason: str  # why this size is not valid


@dataclass
class Root:
    exact: sympy.Expr  # a closed form when sympy finds one, else a numeric root
    below: Neighbour | None  # the largest valid size <= the root
    above: Neighbour | None  # the smallest valid size >= the root
    skipped_below: list[Skipped] = field(default_factory=list)  # sizes between the root and `below`
    skipped_above: list[Skipped] = field(default_factory=list)

    @property
    def value(self) -> float:
        return float(self.exact)


@dataclass(repr=False)
class Solution(Result):
    """metric(unknown) = target with every other dim fixed: the roots and the valid sizes around them."""

    title: str
    equation: sympy.Expr  # the metric in the unknown (other dims at their values)
    target: sympy.Rational
    target_text: str
    metric: str
    unknown: str
    fixed: dict[str, int]  # the dims held at their values, and those values
    roots: list[Root]

    def to_dict(self) -> dict:
        from ..render.text import formula

        def side(n):
            return None if n is None else {"value": n.value, self.metric: n.metric, **n.extra}

        return {
            "equation": f"{formula(self.equation)} = {self.target_text}",
            "unknown": self.unknown,
            "fixed": self.fixed,
            "roots": [{"exact": formula(r.exact), "value": r.value, "below": side(r.below), "above": side(r.above),
                       "skipped_below": [vars(k) for k in r.skipped_below],
                       "skipped_above": [vars(k) for k in r.skipped_above]} for r in self.roots],
        }

    def text(self, width: int | None = None) -> str:
        from ..render.explore import render_solution

        return render_solution(self, "text", width)

    def summary(self):
        from ..render.text import decimal

        rows = []
        for r in self.roots:
            rows.append(("root", decimal(r.exact)))
            rows += [(f"valid {name}", f"{n.value:,} ({self.metric} = {n.metric:,})")
                     for name, n in (("below", r.below), ("above", r.above)) if n is not None]
        return self.title, rows


def roots_in(e: sympy.Expr, x: sympy.Symbol) -> list[sympy.Expr]:
    """Positive real roots of e = 0 in x, ascending: exact for polynomials, else numeric."""
    real = sympy.Symbol(x.name, positive=True)  # the dim symbol is an integer: solve over the reals
    numerator = sympy.fraction(sympy.together(e.xreplace({x: real})))[0]
    if numerator.is_polynomial(real) and sympy.degree(numerator, real) > 0:
        if sympy.degree(numerator, real) <= 2:  # radicals read well up to quadratics
            found = [r for r in sympy.solve(numerator, real) if r.is_real]
        else:
            found = list(sympy.Poly(numerator, real).real_roots())
        return sorted((r for r in found if r > 0), key=float)
    # Floors and mins: find sign changes on a geometric scan, then bisect exactly.
    f = lambda v: sympy.sign(e.xreplace({x: sympy.Integer(v)}))
    roots, lo = [], 1
    while lo < 2**62:
        hi = 2 * lo
        if f(lo) == 0:
            roots.append(sympy.Integer(lo))
        elif f(lo) * f(hi) < 0:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if f(mid) * f(lo) > 0 else (lo, mid)
            roots.append(sympy.Integer(hi) if f(hi) == 0 else sympy.Rational(lo + hi, 2))
        lo = hi
    return roots


SKIPPED_SHOWN = 2  # invalid sizes listed on each side of a root


def _problem(derivation: Derivation, values: Mapping[str, int], unknown: str, candidate: int) -> str | None:
    """Why `candidate` is not a valid size of `unknown` (None when it is)."""
    try:
        dim_values(derivation, {**values, unknown: candidate})
    except SpecError as e:
        return e.reason
    return None


def bracket(derivation, expr, values, unknown, root, multiple_of: int = 1) -> Root:
    """`root` with the nearest valid sizes at or below and at or above it, `expr` at each,
    and the first few sizes skipped on the way, with their reasons (under a fine-tune, each size's
    trainable and frozen parameters too)."""

    def neighbour(v: int) -> Neighbour:
        subst = dim_values(derivation, {**values, unknown: v})
        return Neighbour(v, int(expr.xreplace(subst)), derivation.held(subst))

    def walk(start: int, step: int, skipped: list[Skipped]) -> Neighbour | None:
        candidate = start
        for _ in range(SEARCH_STEPS):
            if candidate < 1:
                return None
            reason = _problem(derivation, values, unknown, candidate)
            if reason is None:
                return neighbour(candidate)
            if len(skipped) < SKIPPED_SHOWN:
                skipped.append(Skipped(candidate, reason))
            candidate += step
        return None

    k = multiple_of
    # Exact floor and ceiling of root / k (a float would lose digits past 2^53).
    low, high = int(sympy.floor(root / k)) * k, int(sympy.ceiling(root / k)) * k
    out = Root(root, None, None)
    out.below, out.above = walk(low, -k, out.skipped_below), walk(high, k, out.skipped_above)
    return out


def solve(
    spec: Spec,
    metric: str,
    target: sympy.Rational,
    unknown: str,
    values: Mapping[str, int] | None = None,
    multiple_of: int = 1,
    convention: str = "pytorch",
    precision: Precision = Precision(),
    target_text: str | None = None,
) -> Solution:
    """The equation metric(unknown) = target, and its roots with valid integer neighbours."""
    values = {k: v for k, v in (values or {}).items() if k != unknown}
    derivation, x = setup(spec, unknown, values, convention)
    available = all_metrics(derivation, precision)
    if metric not in available:
        raise SpecError(f"metric {metric!r}: expected one of {', '.join(available)}")
    expr = available[metric]
    equation, fixed = in_one_variable(derivation, expr, unknown, values)
    roots = [bracket(derivation, expr, values, unknown, r, multiple_of) for r in roots_in(equation - target, x)]
    title = f"{metric} = {target_text or target} for {unknown} (convention: {derivation.convention.name}):"
    return Solution(title, equation, target, target_text or str(target), metric, unknown, fixed, roots)


def setup(spec: Spec, unknown: str, values, convention) -> tuple[Derivation, sympy.Symbol]:
    """The derivation to solve in (derived dims that are given or solved for kept as symbols)."""
    dims = spec.dimset
    if unknown not in dims:
        from ..plan.search import SMALLEST

        hint = (f"; {unknown} is a parallel size: plan with `smallest={unknown}` finds the smallest that fits"
                if unknown in SMALLEST else "")
        raise SpecError(f"unknown {unknown!r}: no such dim; declared dims: {', '.join(d.name for d in dims.items)}"
                        + hint)
    if dims[unknown].rate:
        raise SpecError(f"unknown {unknown!r}: a rate, not a size; solve and crossover find sizes")
    keep = [d.name for d in dims.items if d.definition is not None and (d.name == unknown or d.name in values)]
    return derive(spec, convention, keep=keep), symbols.dim(unknown)


def in_one_variable(derivation: Derivation, expr: sympy.Expr, unknown: str, values) -> tuple[sympy.Expr, dict]:
    """expr with every dim but `unknown` at its value (derived dims through their definitions),
    and the free dims so held fixed, with their values."""
    dims = derivation.spec.dimset
    probe = {**values}
    if dims[unknown].definition is None and dims[unknown].default is None:
        probe[unknown] = 1  # any value: it is substituted away below
    fixed = {s: v for s, v in dim_values(derivation, probe).items() if str(s) != unknown}
    held = dims.plain({s: v for s, v in fixed.items() if s in expr.free_symbols})
    return sympy.expand(expr.xreplace(fixed)), held


# -- crossover ------------------------------------------------------------------------

def select(derivation: Derivation, selector: str, closed: bool = True) -> Cost:
    """The cost of the components a selector names, summed: a slash path, a path suffix or a
    type (`attention`), optionally with named parts after a colon (`attention:scores+values`)."""
    target, _, part_names = selector.partition(":")
    wanted = [p for p in part_names.split("+") if p] if part_names else None
    nodes = derivation.nodes if closed else derivation.raw
    matched = [n for n in nodes if n.path == target or n.kind == target or n.path.endswith("/" + target)]
    if not matched:
        kinds = sorted({n.kind for n in nodes})
        raise SpecError(f"{selector!r}: no component matches; types here: {', '.join(kinds)}, or a path")
    if wanted is None:
        return total(n.cost for n in matched)
    for name in wanted:
        if not any(name in n.parts for n in matched):
            have = sorted({p for n in matched for p in n.parts})
            raise SpecError(f"{selector!r}: no part {name!r}; parts: {', '.join(have)}")
    return total(n.parts[name] for n in matched for name in wanted if name in n.parts)


@dataclass(repr=False)  # repr is Result's summary
class Crossover(Result):
    """Where part_a's metric equals part_b's as `unknown` varies: in closed form, and at the spec's sizes."""

    part_a: str  # the selectors as given (a type or path, optionally with parts)
    part_b: str
    unknown: str
    metric: str
    a: sympy.Expr
    b: sympy.Expr
    general: list[sympy.Expr]  # solutions with every other dim symbolic
    roots: list[sympy.Expr]  # at the spec's sizes (other dims fixed)
    identical: bool = False  # equal at every value: no roots to list

    def to_dict(self) -> dict:
        from ..render.text import formula

        return {
            "a": {"selector": self.part_a, self.metric: formula(self.a)},
            "b": {"selector": self.part_b, self.metric: formula(self.b)},
            "in": self.unknown,
            "general": [formula(g) for g in self.general],
            "roots": [{"exact": formula(r), "value": float(r)} for r in self.roots],
            "identical": self.identical,
        }

    def text(self, width: int | None = None) -> str:
        from ..render.explore import render_crossover

        return render_crossover(self, "text", width)

    def summary(self):
        from ..render.text import decimal

        rows = [("metric", self.metric), *((f"{self.unknown} =", decimal(r)) for r in self.roots)]
        return f"{self.part_a} vs {self.part_b} in {self.unknown}", rows


def crossover(
    spec: Spec,
    part_a: str,
    part_b: str,
    unknown: str,
    metric: str = "forward",
    values: Mapping[str, int] | None = None,
    convention: str = "pytorch",
) -> Crossover:
    """Where part_a's metric equals part_b's, as `unknown` varies."""
    values = {k: v for k, v in (values or {}).items() if k != unknown}
    derivation, x = setup(spec, unknown, values, convention)
    if metric not in METRICS:
        raise SpecError(f"metric {metric!r}: expected one of {', '.join(METRICS)}")
    a = select(derivation, part_a).metrics(tuned=True)[metric]
    b = select(derivation, part_b).metrics(tuned=True)[metric]
    named = (part_a, part_b, unknown, metric, a, b)
    if sympy.expand(a - b) == 0:
        return Crossover(*named, [], [], identical=True)
    real = sympy.Symbol(unknown, positive=True)
    try:
        general = [r.xreplace({real: x}) for r in sympy.solve(sympy.together(a - b).xreplace({x: real}), real)]
    except NotImplementedError:
        general = []
    roots = roots_in(in_one_variable(derivation, a - b, unknown, values)[0], x)
    return Crossover(*named, general, roots)
