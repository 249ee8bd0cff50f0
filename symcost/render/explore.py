"""sweep, solve, crossover, compare, approx and budget as data and text."""

from __future__ import annotations

import json
import numbers
from fractions import Fraction

from ..metrics import BY_NAME, label, shaped
from .text import bytes_human, decimal, exact_and_human, formula, human, number, pretty, table, width, wrap


def jsonable(v):
    """An exact value for JSON: integers as integers, other rationals as floats, formulas as text."""
    import sympy

    if isinstance(v, sympy.Basic) and v.is_Rational:
        v = Fraction(int(v.p), int(v.q))
    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else float(v)
    if isinstance(v, sympy.Basic):
        return formula(v)
    return int(v) if isinstance(v, numbers.Integral) else v


def sweep_data(result) -> dict:
    keys = list(result.varied) + [k for k in result.columns if k not in result.varied]
    points = []
    for i, row in enumerate(zip(*(result.columns[k] for k in keys))):
        point = {k: int(v) for k, v in zip(keys, row)}
        if i in result.invalid:
            point = {k: point[k] for k in result.varied} | {"invalid": result.invalid[i]}
        points.append(point)
    return {"name": result.spec.name, "convention": result.convention, "fixed": result.fixed,
            "points_checked": result.checked, "points": points}


def render_sweep(result, fmt: str, limit: int | None = None) -> str:
    if fmt == "json":
        return json.dumps(sweep_data(result), indent=2)
    keys = list(result.varied) + [k for k in result.columns if k not in result.varied]
    rows = list(zip(*(result.columns[k] for k in keys)))
    if fmt == "csv":  # an `invalid` column (the reason) only when some point is invalid
        extra = ["invalid"] if result.invalid else []
        lines = [",".join(keys + extra)]
        for i, row in enumerate(rows):
            if i in result.invalid:
                cells = [str(int(v)) for v in row[:len(result.varied)]] + [""] * (len(keys) - len(result.varied))
                lines.append(",".join(cells + [json.dumps(result.invalid[i])]))
            else:
                lines.append(",".join([str(int(v)) for v in row] + [""] * len(extra)))
        return "\n".join(lines)
    limit = limit or width()
    body, short = [], []
    for i, row in enumerate(rows):
        if i in result.invalid:
            body.append([number(v) for v in row[:len(result.varied)]] + [f"invalid: {result.invalid[i]}"]
                        + [""] * (len(keys) - len(result.varied) - 1))
            short.append({})
        else:
            body.append([number(v) for v in row])
            short.append({j: bytes_human(v) if is_bytes(keys[j]) else human(v) for j, v in enumerate(row)
                          if j >= len(result.varied)})
    note = (f"{result.spec.name} — convention: {result.convention}; constraints checked at "
            f"{result.checked:,} of {result.points:,} points")
    if result.invalid:
        note += f"; {len(result.invalid):,} invalid"
    return "\n".join(wrap(note, limit) + [""] + table(keys, body, limit, compact=short))


def is_bytes(name: str) -> bool:
    """A column of bytes, shown rounded in binary units (GiB), where a table's exact numbers do not fit."""
    return name in BY_NAME and BY_NAME[name].unit == "bytes"


def render_solution(s, fmt: str, limit: int | None = None) -> str:
    """solve's (and budget --optimal-for's) result: the equation, each root as a number
    (its exact form in JSON), the valid sizes around it, and why nearer sizes were skipped."""
    data = s.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2)
    limit = limit or width()
    lines = wrap(s.title, limit) + wrap(f"  {pretty(s.equation)} = {s.target_text}", limit)
    if data["fixed"]:
        lines += wrap("held fixed: " + ", ".join(f"{k}={v:,}" for k, v in data["fixed"].items()), limit)
    lines.append("")
    if not data["roots"]:
        lines.append("no positive real root")
    for r, root in zip(data["roots"], s.roots):
        lines.append(f"root: {s.unknown} = {decimal(root.exact)}")
        for side in ("below", "above"):
            n = r[side]
            more = "" if n is None else "".join(f", {k} {human(v)}" for k, v in n.items() if k not in ("value", s.metric))
            lines += wrap(f"  nearest valid {side}: " + (
                "none" if n is None else f"{n['value']:,}  ->  {s.metric} = {number(n[s.metric])}{more}"), limit)
            for skipped in r[f"skipped_{side}"]:
                lines += wrap(f"    skipped {skipped['value']:,}: {skipped['reason']}", limit, indent=6)
    return "\n".join(lines)


def render_crossover(c, fmt: str, limit: int | None = None) -> str:
    if fmt == "json":
        return json.dumps(c.to_dict(), indent=2)
    limit = limit or width()
    lines = wrap(f"{c.part_a}: {c.metric} = {pretty(c.a)}", limit) + wrap(f"{c.part_b}: {c.metric} = {pretty(c.b)}", limit)
    lines.append("")
    if c.identical:
        return "\n".join(lines + [f"equal at every value of {c.unknown}: the two costs are the same expression"])
    for g in c.general:
        lines += wrap(f"equal when {c.unknown} = {pretty(g)}", limit)
    lines += [f"at these sizes: {c.unknown} = {decimal(r)}" for r in c.roots] or [
        f"no positive {c.unknown} where they are equal at these sizes"
    ]
    return "\n".join(lines)


def _ratio(a, b):
    return None if a == 0 else b / a


def compare_data(c) -> dict:
    return {
        "a": c.a.name, "b": c.b.name, "convention": c.convention,
        "rows": [{"at": point, "a": shaped({k: jsonable(v) for k, v in fa.items()}),
                  "b": shaped({k: jsonable(v) for k, v in fb.items()}),
                  "ratio_b_over_a": shaped({k: jsonable(_ratio(fa[k], fb[k])) for k in fa})} for point, fa, fb in c.rows],
    }


def render_compare(c, fmt: str, limit: int | None = None) -> str:
    if fmt == "json":
        return json.dumps(compare_data(c), indent=2)
    limit = limit or width()
    out = wrap(f"{c.a.name} (A) vs {c.b.name} (B) — convention: {c.convention}", limit)
    for point, fa, fb in c.rows:
        out.append("")
        if point:
            out += wrap(", ".join(f"{k}={v:,}" for k, v in point.items()), limit)
        rows = [(label(k, unit=True), number(fa[k]), number(fb[k]),
                 "-" if _ratio(fa[k], fb[k]) is None else f"{float(_ratio(fa[k], fb[k])):.4f}") for k in fa]
        shown = lambda k, v: bytes_human(v) if is_bytes(k) else human(v)
        short = [{1: shown(k, fa[k]), 2: shown(k, fb[k])} for k in fa]
        out += table(("metric", "A", "B", "B / A"), rows, limit, compact=short)
    return "\n".join(out)


def estimates_rows(derivation, estimates, values: dict) -> list[dict]:
    rows = []
    for est in estimates:
        approx, exact = int(est.formula.xreplace(values)), int(est.exact.xreplace(values))
        rows.append({
            "name": est.name, "source": est.source, "metric": est.metric,
            "formula": formula(est.formula), "estimate": approx, "exact": exact,
            "relative_error": formula(est.relative_error), "relative_error_here": (approx - exact) / exact,
            "pretty": (pretty(est.formula), pretty(est.relative_error)),
        })
    return rows


def estimates_data(a) -> dict:
    derivation, estimates, values = a.derivation, a.estimates, a.values
    return {"name": derivation.spec.name, "convention": derivation.convention.name,
            "estimates": [{k: v for k, v in r.items() if k != "pretty"} for r in estimates_rows(derivation, estimates,
                                                                                              values)]}


def estimates_text(a, limit: int | None = None) -> str:
    derivation, estimates, values = a.derivation, a.estimates, a.values
    limit = limit or width()
    lines = wrap(f"{derivation.spec.name} — exact counts under {derivation.convention.name}, "
                 "against published estimates", limit) + [""]
    for r in estimates_rows(derivation, estimates, values):
        lines += wrap(f"{r['name']}: {r['source']}", limit)
        lines += wrap(f"  estimate {r['estimate']:,} vs exact {r['metric']} {r['exact']:,}: "
                      f"{100 * r['relative_error_here']:+.2f}%", limit)
        lines += wrap(f"  relative error = {r['pretty'][1]}", limit)
    return "\n".join(lines)


def budget_data(b) -> dict:
    return {"params": b.params, "train_flops_per_token": jsonable(b.train_per_input),
            "tokens": jsonable(b.tokens), "train_flops": jsonable(b.flops)}


def budget_text(b) -> str:
    return "\n".join([
        f"params                 {exact_and_human(b.params)}",
        f"train FLOPs per token  {exact_and_human(b.train_per_input)}",
        f"tokens                 {exact_and_human(b.tokens)}",
        f"train FLOPs            {exact_and_human(b.flops)}",
    ])

