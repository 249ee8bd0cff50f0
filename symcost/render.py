"""Formatting: text, json, markdown and latex. The only module that turns results into text."""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import sympy

from .derive import Derivation
from .evaluate import Evaluation
from .explore.leading import leading

FORMATS = ("text", "json", "markdown", "latex")
_LABELS = {
    "params": "params",
    "active_params": "active params",
    "forward": "forward FLOPs",
    "backward": "backward FLOPs",
    "train": "train FLOPs",
}


def formula(e: sympy.Expr) -> str:
    """A closed form as `sympy.parse_expr` reads it back, highest-degree terms first."""
    return sympy.sstr(e, order="grlex")


def human(n: int, metric: str = "params") -> str:
    """124439808 -> 124.44M (params: K M B T); FLOPs take SI prefixes (k M G T P E)."""
    units = ["", "K", "M", "B", "T"] if metric.endswith("params") else ["", "k", "M", "G", "T", "P", "E", "Z", "Y"]
    value, i = float(n), 0
    while abs(value) >= 1000 and i < len(units) - 1:
        value, i = value / 1000, i + 1
    return f"{n:,}" if i == 0 else f"{value:.2f}{units[i]}"


# -- data: plain dicts, the shape of --format json ------------------------------------

def derivation_data(d: Derivation) -> dict:
    dims = {}
    for dim in d.spec.dimset.items:
        dims[dim.name] = formula(dim.definition) if dim.definition is not None else (
            None if dim.default is None else str(dim.default)
        )
    t = d.total
    return {
        "name": d.spec.name,
        "convention": d.convention.name,
        "dims": dims,
        "free_symbols": d.free_symbols,
        "params": formula(t.params),
        "active_params": formula(t.active_params),
        "flops": {"forward": formula(t.forward), "backward": formula(t.backward), "train": formula(t.train)},
        "components": [
            {
                "path": n.path,
                "type": n.kind,
                "params": formula(n.cost.params),
                "active_params": formula(n.cost.active_params),
                "flops_forward": formula(n.cost.forward),
                "flops_backward": formula(n.cost.backward),
                "parts": {k: {"params": formula(c.params), "flops_forward": formula(c.forward)} for k, c in n.parts.items()},
            }
            for n in d.nodes
        ],
    }


def evaluation_data(e: Evaluation) -> dict:
    t = e.total
    return {
        "name": e.name,
        "convention": e.derivation.convention.name,
        "dims": e.dims,
        "params": t["params"],
        "active_params": t["active_params"],
        "flops": {"forward": t["forward"], "backward": t["backward"], "train": t["train"]},
        "components": [
            {
                "path": node.path,
                "type": node.kind,
                "params": v["params"],
                "active_params": v["active_params"],
                "flops_forward": v["forward"],
                "flops_backward": v["backward"],
            }
            for node, v in e.components
        ],
    }


# -- rendering ----------------------------------------------------------------------

def leading_data(d: Derivation, names) -> dict:
    """{dim: {metric: leading term}} for the totals (see explore.leading)."""
    return {name: {m: formula(leading(e, name)) for m, e in d.total.metrics().items()} for name in names}


def render_derivation(d: Derivation, fmt: str, leading_in=()) -> str:
    data = derivation_data(d) | {"leading": leading_data(d, leading_in)}
    if fmt == "json":
        return json.dumps(data, indent=2)
    if fmt == "latex":
        return _latex(d)
    totals = [(_LABELS[m], formula(e)) for m, e in d.total.metrics().items()]
    totals.append((_REUSE, _reuse_formula(d, d.total)))
    for name, terms in data["leading"].items():  # only what grows with the dim
        totals += [(f"{_LABELS[m]} ~", f"{t}   (as {name} -> oo)") for m, t in terms.items()
                   if name in map(str, d.total.metrics()[m].free_symbols)]
    rows = [
        (n.path, n.kind, formula(n.cost.params), formula(n.cost.active_params), formula(n.cost.forward),
         _reuse_formula(d, n.cost))
        for n in d.nodes
    ]
    head = ("component", "type", "params", "active params", "forward FLOPs", _REUSE)
    return _document(d.spec.name, d.convention, _free_line(data), totals, head, rows, fmt)


def render_evaluation(e: Evaluation, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(evaluation_data(e), indent=2)
    if fmt == "latex":
        return _latex(e.derivation, e)
    dims = "dims: " + ", ".join(f"{k}={v}" for k, v in e.dims.items())
    totals = [(_LABELS[m], f"{v:,}  ({human(v, m)})") for m, v in e.total.items()]
    totals.append((_REUSE, _reuse_number(e, e.total)))
    rows = [
        (n.path, n.kind, f"{v['params']:,}", f"{v['active_params']:,}", f"{v['forward']:,}",
         _share(v["forward"], e.total["forward"]), _reuse_number(e, v))
        for n, v in e.components
    ]
    head = ("component", "type", "params", "active params", "forward FLOPs", "share", _REUSE)
    return _document(e.name, e.derivation.convention, dims, totals, head, rows, fmt)


_REUSE = "uses/weight/input"  # multiply-adds per active weight per input token or image


def _reuse_formula(d: Derivation, cost) -> str:
    reuse = d.reuse(cost)
    return "-" if reuse is None else formula(reuse)


def _reuse_number(e: Evaluation, v: dict) -> str:
    reuse = e.reuse(v)
    return "-" if reuse is None else f"{reuse:,.2f}"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _free_line(data: dict) -> str:
    return "free dims: " + (", ".join(data["free_symbols"]) or "none")


def _document(name, conv, subtitle, totals, head, rows, fmt) -> str:
    title = f"{name} — convention: {conv.name} ({conv.description})"
    if fmt == "markdown":
        lines = [f"## {name}", "", f"Convention: `{conv.name}` ({conv.description}). {subtitle}.", ""]
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | `{v}` |" for k, v in totals]
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(f"`{c}`" if i >= 2 else c for i, c in enumerate(r)) + " |" for r in rows]
        return "\n".join(lines)
    width = max(len(k) for k, _ in totals)
    lines = [title, subtitle, ""] + [f"{k:<{width}}  {v}" for k, v in totals] + [""]
    lines += _table(head, rows)
    return "\n".join(lines)


def _table(head: tuple, rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt_row: Callable[[tuple], str] = lambda r: "  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths)).rstrip()
    return [fmt_row(head), fmt_row(tuple("-" * w for w in widths))] + [fmt_row(r) for r in rows]


def _latex(d: Derivation, e: Evaluation | None = None) -> str:
    lines = [f"% {d.spec.name}, convention: {d.convention.name}", r"\begin{align*}"]
    for m, expr in d.total.metrics().items():
        value = f" = {e.total[m]:,}".replace(",", "{,}") if e else ""
        lines.append(rf"  \text{{{_LABELS[m]}}} &= {sympy.latex(expr)}{value} \\")
    lines.append(r"\end{align*}")
    return "\n".join(lines)


def table(head: tuple, rows: list[tuple]) -> str:
    return "\n".join(_table(head, rows))


def report_data(report) -> dict:
    """verify's result as plain data (the shape of `verify --format json`)."""

    def pair(row, metric):
        return {"symbolic": row.symbolic[metric], "measured": row.measured[metric]}

    metrics = list(report.totals.symbolic)
    data = {"name": report.name, "convention": report.convention, "device": report.device, "match": report.match,
            "dims": report.dims}
    for metric in metrics:
        data[metric] = pair(report.totals, metric)
    data["unattributed_flops"] = report.unattributed
    data["components"] = [
        {"path": r.path, "type": r.kind, "match": r.match, "note": r.note, **{m: pair(r, m) for m in metrics}}
        for r in report.rows
    ]
    return data


def render_report(report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report_data(report), indent=2)
    metrics = list(report.totals.symbolic)
    names = {"params": "params", "flops_forward": "forward FLOPs", "flops_backward": "backward FLOPs"}
    head = ("component", *(h for m in metrics for h in (names[m], "torch")), "")
    rows = []
    for r in [*report.rows, report.totals]:
        cells = [f"{side[m]:,}" for m in metrics for side in (r.symbolic, r.measured)]
        rows.append((r.path, *cells, ("ok" if r.match else "DIFFERS") + (" *" if r.note else "")))
    lines = [
        f"{report.name} — verified against PyTorch ({report.device} device), convention: {report.convention}",
        "dims: " + ", ".join(f"{k}={v}" for k, v in report.dims.items()),
        "",
        *_table(head, rows),
        "",
    ]
    notes = sorted({r.note for r in report.rows if r.note})
    lines += [f"* {note}" for note in notes]
    lost = {k: v for k, v in report.unattributed.items() if v}
    if lost:
        lines.append(f"FLOPs counted outside every component: {lost}")
    lines.append("MATCH: every count equals PyTorch's, exactly." if report.match else "MISMATCH: see DIFFERS rows.")
    return "\n".join(lines)


# -- explore ----------------------------------------------------------------------------

def _num(v) -> str:
    """An exact number for text: integers with separators, other rationals to 6 significant digits."""
    if isinstance(v, Fraction) and v.denominator != 1:
        return f"{float(v):,.6g}"
    return f"{int(v):,}"


def _jsonable(v):
    if isinstance(v, sympy.Basic) and v.is_Rational:
        v = Fraction(int(v.p), int(v.q))
    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else float(v)
    if isinstance(v, sympy.Basic):
        return formula(v)
    return int(v) if isinstance(v, (np.integer, int)) else v


def render_sweep(result, fmt: str) -> str:
    keys = list(result.varied) + [k for k in result.columns if k not in result.varied]
    rows = zip(*(result.columns[k] for k in keys))
    if fmt == "json":
        return json.dumps({
            "name": result.spec.name, "convention": result.convention, "fixed": result.fixed,
            "points_checked": result.checked,
            "points": [{k: int(v) for k, v in zip(keys, row)} for row in rows],
        }, indent=2)
    if fmt == "csv":
        return "\n".join([",".join(keys), *(",".join(str(int(v)) for v in row) for row in rows)])
    note = f"{result.spec.name} — convention: {result.convention}; constraints checked at {result.checked:,} of {result.points:,} points"
    return note + "\n\n" + table(tuple(keys), [tuple(f"{int(v):,}" for v in row) for row in rows])


def render_roots(title: str, equation: str, roots, metric: str, fmt: str, extra: dict | None = None) -> str:
    data = {
        "equation": equation,
        "roots": [
            {"exact": formula(r.exact), "value": r.value,
             "below": None if r.below is None else {"value": r.below.value, metric: r.below.metric},
             "above": None if r.above is None else {"value": r.above.value, metric: r.above.metric}}
            for r in roots
        ],
        **(extra or {}),
    }
    if fmt == "json":
        return json.dumps(data, indent=2)
    lines = [title, f"  {equation}", ""]
    if not roots:
        lines.append("no positive real root")
    for r in data["roots"]:
        lines.append(f"root: {r['exact']} = {r['value']:,.6f}")
        for side in ("below", "above"):
            n = r[side]
            lines.append(f"  nearest valid {side}: " + ("none" if n is None else f"{n['value']:,}  ->  {metric} = {n[metric]:,}"))
    return "\n".join(lines)


def render_crossover(c, part_a: str, part_b: str, unknown: str, metric: str, fmt: str) -> str:
    data = {
        "a": {"selector": part_a, metric: formula(c.a)},
        "b": {"selector": part_b, metric: formula(c.b)},
        "in": unknown,
        "general": [formula(g) for g in c.general],
        "roots": [{"exact": formula(r), "value": float(r)} for r in c.roots],
    }
    if fmt == "json":
        return json.dumps(data, indent=2)
    lines = [f"{part_a}: {metric} = {data['a'][metric]}", f"{part_b}: {metric} = {data['b'][metric]}", ""]
    lines += [f"equal when {unknown} = {g}" for g in data["general"]]
    lines += [f"at these sizes: {unknown} = {r['exact']} = {r['value']:,.6f}" for r in data["roots"]] or [
        f"no positive {unknown} where they are equal at these sizes"
    ]
    return "\n".join(lines)


_COMPARE_LABELS = {
    "params": "params",
    "active_params": "active params",
    "forward_per_input": "forward FLOPs per token",
    "train_per_input": "train FLOPs per token",
    "uses_per_weight": "uses/weight/input",
    "weights_bytes": "weights (bytes)",
    "kv_bytes_per_token": "KV cache per token (bytes)",
}


def render_compare(c, fmt: str) -> str:
    def ratio(a: Fraction, b: Fraction):
        return None if a == 0 else b / a

    if fmt == "json":
        return json.dumps({
            "a": c.a.name, "b": c.b.name, "convention": c.convention,
            "rows": [{"at": point, "a": {k: _jsonable(v) for k, v in fa.items()},
                      "b": {k: _jsonable(v) for k, v in fb.items()},
                      "ratio_b_over_a": {k: _jsonable(ratio(fa[k], fb[k])) for k in fa}} for point, fa, fb in c.rows],
        }, indent=2)
    out = [f"{c.a.name} (A) vs {c.b.name} (B) — convention: {c.convention}"]
    for point, fa, fb in c.rows:
        out.append("")
        if point:
            out.append(", ".join(f"{k}={v:,}" for k, v in point.items()))
        rows = [(_COMPARE_LABELS[k], _num(fa[k]), _num(fb[k]),
                 "-" if ratio(fa[k], fb[k]) is None else f"{float(ratio(fa[k], fb[k])):.4f}") for k in fa]
        out += _table(("metric", "A", "B", "B / A"), rows)
    return "\n".join(out)


def render_estimates(derivation, estimates, values: dict, fmt: str) -> str:
    rows = []
    for est in estimates:
        approx, exact = int(est.formula.xreplace(values)), int(est.exact.xreplace(values))
        rows.append({
            "name": est.name, "source": est.source, "metric": est.metric,
            "formula": formula(est.formula), "estimate": approx, "exact": exact,
            "relative_error": formula(est.relative_error), "relative_error_here": (approx - exact) / exact,
        })
    if fmt == "json":
        return json.dumps({"name": derivation.spec.name, "convention": derivation.convention.name, "estimates": rows},
                          indent=2)
    lines = [f"{derivation.spec.name} — exact counts under {derivation.convention.name}, against published estimates", ""]
    for r in rows:
        lines += [
            f"{r['name']}: {r['source']}",
            f"  estimate {r['estimate']:,} vs exact {r['metric']} {r['exact']:,}: {100 * r['relative_error_here']:+.2f}%",
            f"  relative error = {r['relative_error']}",
        ]
    return "\n".join(lines)


def render_budget(b, fmt: str) -> str:
    data = {"params": b.params, "train_flops_per_token": _jsonable(b.train_per_input),
            "tokens": _jsonable(b.tokens), "train_flops": _jsonable(b.flops)}
    if fmt == "json":
        return json.dumps(data, indent=2)
    return "\n".join([
        f"params                 {b.params:,}",
        f"train FLOPs per token  {_num(b.train_per_input)}",
        f"tokens                 {_num(b.tokens)}  ({human(int(b.tokens), 'params')})",
        f"train FLOPs            {_num(b.flops)}  ({human(int(b.flops), 'flops')})",
    ])


# -- memory and inference -----------------------------------------------------------------

_MEMORY_LABELS = {
    "weights_bytes": "weights",
    "active_weights_bytes": "active weights",
    "kv_cache_bytes": "KV cache (seq_len x batch)",
    "kv_bytes_per_token": "KV cache per token",
    "inference_bytes": "weights + KV cache",
    "train_state_bytes": "training state",
    "activation_bytes": "activations",
}


def render_memory(name: str, exprs: dict, numbers: dict, notes: list[str], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"name": name, "bytes": {k: _jsonable(numbers[k]) for k in exprs},
                           "formulas": {k: formula(e) for k, e in exprs.items()}, "notes": notes}, indent=2)
    width = max(map(len, _MEMORY_LABELS.values()))
    lines = [f"{name} — memory in bytes", ""]
    for key, e in exprs.items():
        v = numbers[key]
        lines.append(f"{_MEMORY_LABELS[key]:<{width}}  {_num(v):>24}  ({_bytes_human(v)})   = {formula(e)}")
    return "\n".join(lines + [""] + [f"* {n}" for n in notes])


def _bytes_human(n) -> str:
    value, units = float(n), ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while value >= 1024 and i < len(units) - 1:
        value, i = value / 1024, i + 1
    return f"{value:.2f} {units[i]}"


def render_inference(name: str, inf, numbers: dict, context: int, new_tokens: int, convention: str, fmt: str) -> str:
    rows = [
        ("prefill", "prefill FLOPs (a prompt of seq_len tokens)", inf.prefill),
        ("step", f"decode step FLOPs (context = {context})", inf.step),
        ("generation", f"generating {new_tokens} tokens after the prompt", inf.generation),
        ("step_bytes", "bytes a step moves (active weights + cache)", inf.step_bytes),
        ("intensity", "arithmetic intensity of a step (FLOPs/byte)", inf.intensity),
    ]
    if fmt == "json":
        return json.dumps({"name": name, "convention": convention, "context": context, "new_tokens": new_tokens,
                           **{k: {"formula": formula(e), "value": _jsonable(Fraction(str(numbers[k])) if k == "intensity" else int(numbers[k]))}
                              for k, _, e in rows}}, indent=2)
    lines = [f"{name} — inference, convention: {convention}", ""]
    for key, label, e in rows:
        v = numbers[key]
        shown = f"{float(v):,.3f}" if key == "intensity" else f"{int(v):,}"
        lines += [f"{label}: {shown}", f"  = {formula(e)}"]
    return "\n".join(lines)


def render_hf_report(r, fmt: str) -> str:
    data = {
        "name": r.name, "model": r.model, "match": r.match, "dims": r.dims, "convention": "pytorch",
        "params": {"symbolic": r.params[0], "transformers": r.params[1]},
        "flops_forward": {"symbolic": r.forward[0], "transformers": r.forward[1]},
        "explained": [{"module": m, "flops": f, "why": why} for m, (f, why) in r.explained.items()],
    }
    if fmt == "json":
        return json.dumps(data, indent=2)
    lines = [
        f"{r.name} — against transformers' {r.model} (meta device, eager attention, batched_mm experts)",
        "dims: " + ", ".join(f"{k}={v}" for k, v in r.dims.items()),
        "",
        *_table(("", "symcost", "transformers", ""), [
            ("params", f"{r.params[0]:,}", f"{r.params[1]:,}", "ok" if r.params[0] == r.params[1] else "DIFFERS"),
            ("forward FLOPs", f"{r.forward[0]:,}", f"{r.forward[1]:,}", "ok" if r.forward[0] == r.forward[1] else ""),
        ]),
    ]
    for module, (flops, why) in r.explained.items():
        lines.append(f"  + {flops:,} FLOPs in {module}: {why}")
    lines.append("")
    lines.append("MATCH: equal exactly" + (" once the listed library work is added." if r.explained else ".")
                 if r.match else "MISMATCH: the counts differ by more than the listed library work.")
    return "\n".join(lines)
