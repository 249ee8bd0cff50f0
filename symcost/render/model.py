"""derive, eval and verify as data (the shape of `--format json`) and as text, markdown and
LaTeX. Evaluation text is made from its data alone, so the cached `eval` path, which has
no sympy, prints exactly what the full path prints."""

from __future__ import annotations

from ..conventions import CONVENTIONS
from ..metrics import METRICS, label, shaped
from .text import exact_and_human, formula, human, number, pretty, table, width, wrap

FORMATS = ("text", "json", "markdown", "latex")
REUSE = "uses/weight/input"  # multiply-adds per active weight per input token or image


# -- data ------------------------------------------------------------------------------

def derivation_data(d, leading_in=()) -> dict:
    from ..explore.leading import leading

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
        **{m: formula(e) for m, e in t.metrics(d.tuned).items() if "params" in m},
        "flops": {"forward": formula(t.forward), "backward": formula(t.backward), "train": formula(t.train)},
        "components": [
            {"path": n.path, "kind": n.kind, **_formulas(n.cost, d.tuned),
             "parts": {k: _formulas(c, d.tuned) for k, c in n.parts.items()}}
            for n in d.nodes
        ],
        "leading": {name: shaped({m: formula(leading(e, name)) for m, e in t.metrics().items()}) for name in leading_in},
        **({} if d.mtp is None else {"mtp": {"depth": d.spec.mtp.depth, "params": formula(d.mtp.params),
                                             "flops": {"forward": formula(d.mtp.forward),
                                                       "backward": formula(d.mtp.backward),
                                                       "train": formula(d.mtp.train)}}}),
    }


def _formulas(cost, tuned: bool) -> dict:
    return shaped({m: formula(e) for m, e in cost.metrics(tuned).items()})


def evaluation_data(e) -> dict:
    held = HELD if e.derivation.tuned else ()
    components = [(n.path, n.kind, *(v[m] for m in (*NUMBERS, *held))) for n, v in e.components]
    return evaluation_dict(e.name, e.derivation.convention.name, e.dims, e.inputs, e.input_unit, components, e.notes)


NUMBERS = ("params", "active_params", "forward", "backward")  # of each component, in eval's data
HELD = ("params_trainable", "params_frozen")  # after them, under a fine-tune
ORDER = ("params", *HELD, "active_params", "forward", "backward")  # as the document lists them


def evaluation_dict(name, convention, dims, inputs, input_unit, components, notes=()) -> dict:
    """eval's data from plain values: components are (path, type, params, active params,
    forward FLOPs, backward FLOPs), and under a fine-tune its trainable and frozen parameters
    after them. The cached path (symcost.cache) builds it this way too."""
    keys = NUMBERS + (HELD if components and len(components[0]) > 2 + len(NUMBERS) else ())
    rows = [dict(zip(keys, c[2:])) for c in components]
    total = {m: sum(r[m] for r in rows) for m in keys}
    per = lambda v: v // inputs if v % inputs == 0 else v / inputs  # exact when whole
    train = total["forward"] + total["backward"]
    return {
        "name": name,
        "convention": convention,
        "dims": dims,
        "inputs": inputs,
        "input_unit": input_unit,
        "params": total["params"],
        **{m: total[m] for m in HELD if m in total},
        "active_params": total["active_params"],
        "flops": {"forward": total["forward"], "backward": total["backward"], "train": train},
        "flops_per_input": {"forward": per(total["forward"]), "train": per(train)},
        "components": [
            {"path": c[0], "kind": c[1], **shaped({**{m: r[m] for m in ORDER if m in r},
                                                   "train": r["forward"] + r["backward"]})}
            for c, r in zip(components, rows)
        ],
        "notes": list(notes),
    }


# -- text ------------------------------------------------------------------------------

def _title(name: str, convention: str) -> str:
    return f"{name} — convention: {convention} ({CONVENTIONS[convention].description})"


def _totals(rows: list[tuple[str, str]], limit: int) -> list[str]:
    """`label  value` lines, long values wrapped under the value column."""
    w = max(len(k) for k, _ in rows)
    out = []
    for k, v in rows:
        out += wrap(f"{k:<{w}}  {v}", limit, indent=w + 2)
    return out


def reuse_number(data: dict, row: dict) -> str:
    """Uses of each active weight per input: forward / (FLOPs per multiply-add x active x inputs)."""
    active = row["active_params"]
    if not active:
        return "-"
    forward = row["flops"]["forward"]
    per_mac = CONVENTIONS[data["convention"]].flops_per_mac
    return f"{forward / (per_mac * data['inputs'] * active):,.2f}"


def evaluation_text(data: dict, limit: int | None = None) -> str:
    """eval's text, from evaluation_data alone."""
    limit = limit or width()
    dense = data["params"] == data["active_params"]
    rows = [("params", exact_and_human(data["params"]))]
    rows += [(label(m), exact_and_human(data[m])) for m in HELD if m in data]
    if not dense:
        rows.append(("active params", exact_and_human(data["active_params"])))
    rows += [(label(m), exact_and_human(data["flops"][m])) for m in ("forward", "backward", "train")]
    rows += [(f"{m} FLOPs per {data['input_unit']}", exact_and_human(v)) for m, v in data["flops_per_input"].items()]
    rows.append((REUSE, reuse_number(data, data)))
    lines = wrap(_title(data["name"], data["convention"]), limit)
    lines += wrap("dims: " + ", ".join(f"{k}={v}" for k, v in data["dims"].items()), limit)
    lines += [""] + _totals(rows, limit) + [""] + component_table(data, limit)
    lines += [piece for note in data["notes"] for piece in wrap(f"* {note}", limit)]
    return "\n".join(lines)


def component_table(data: dict, limit: int) -> list[str]:
    """Each component's numbers; exact, or rounded (K, M, B, T) where exact would not fit."""
    dense = data["params"] == data["active_params"]
    head = ["component", "params", *([] if dense else ["active params"]), "forward FLOPs", "share", REUSE]
    body, short = [], []
    forward = data["flops"]["forward"]
    for c in data["components"]:
        numbers = [c["params"], *([] if dense else [c["active_params"]]), c["flops"]["forward"]]
        share = f"{100 * c['flops']['forward'] / forward:.1f}%" if forward else "-"
        body.append([c["path"], *(number(n) for n in numbers), share, reuse_number(data, c)])
        short.append({i + 1: human(n) for i, n in enumerate(numbers)})
    return table(head, body, limit, compact=short)


def derivation_text(d, limit: int | None = None, leading_in=(), formulas: bool = False, at=None) -> str:
    """derive's text: closed forms of the totals; per component, numbers at the defaults
    (`at`, an Evaluation) unless `formulas` is asked for (or no evaluation was possible)."""
    from ..explore.leading import leading
    from .forms import shown

    limit = limit or width()
    t = d.total
    dense = t.params == t.active_params
    shown_metrics = t.metrics(d.tuned)
    metrics = [m for m in METRICS if m in shown_metrics and not (dense and m == "active_params")]
    rows = [(label(m), pretty(shown(d.compound_counts, shown_metrics[m]))) for m in metrics]
    reuse = d.reuse(t)
    rows.append((REUSE, "-" if reuse is None else pretty(shown(d.compound_counts, reuse))))
    for name in leading_in:
        rows += [(f"{label(m)} ~", f"{pretty(leading(e, name))}   (as {name} → ∞)")
                 for m, e in t.metrics().items() if name in map(str, e.free_symbols)]
    lines = wrap(_title(d.spec.name, d.convention.name), limit)
    lines += wrap("free dims: " + (", ".join(d.free_symbols) or "none"), limit)
    lines += [""] + _totals(rows, limit) + [""]
    if d.mtp is not None:
        n = d.spec.mtp.depth
        lines += wrap(f"multi-token prediction, apart ({n} module{'s' if n > 1 else ''}; embedding and head shared)",
                      limit)
        from .. import symbols  # here: eval's cached path renders with this module and imports no sympy

        subst = None if at is None else {symbols.dim(k): v for k, v in at.dims.items()}
        value = lambda e: "" if subst is None else f"   (= {int(e.xreplace(subst)):,} at the defaults)"
        lines += ["  " + line for line in _totals([(label(m), pretty(getattr(d.mtp, m)) + value(getattr(d.mtp, m)))
                                                   for m in ("params", "train")], limit - 2)] + [""]
    if at is not None and not formulas:
        data = evaluation_data(at)
        lines += wrap("per component at " + ", ".join(f"{k}={v}" for k, v in data["dims"].items())
                      + " (--formulas: closed forms):", limit)
        return "\n".join(lines + component_table(data, limit))
    for n in d.nodes:
        lines.append(f"{n.path}  ({n.kind})")
        parts = [(label(m), pretty(shown(d.compound_counts, n.cost.metrics()[m]))) for m in metrics if m != "train"]
        lines += ["  " + line for line in _totals(parts, limit - 2)]
    return "\n".join(lines)


def derivation_markdown(d) -> str:
    from .forms import shown

    lines = [f"## {d.spec.name}", "", f"Convention: `{d.convention.name}` ({d.convention.description}). "
             f"free dims: {', '.join(d.free_symbols) or 'none'}.", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {label(m)} | `{pretty(shown(d.compound_counts, e))}` |" for m, e in d.total.metrics().items()]
    head = ("component", "type", "params", "active params", "forward FLOPs", REUSE)
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in d.nodes:
        reuse = d.reuse(n.cost)
        cells = [n.path, n.kind, *(f"`{pretty(shown(d.compound_counts, x))}`"
                                   for x in (n.cost.params, n.cost.active_params, n.cost.forward)),
                 "-" if reuse is None else f"`{pretty(shown(d.compound_counts, reuse))}`"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def latex_names(exprs) -> dict:
    """Each dim symbol as \\mathrm{name} (underscores escaped), and a factored count (render.forms)
    in parentheses, for sympy.latex."""
    import sympy

    from .forms import count_of

    symbols = set().union(*(e.free_symbols for e in exprs))
    names = {s: r"\mathrm{" + str(s).replace("_", r"\_") + "}" for s in symbols if count_of(s) is None}
    for s in symbols - names.keys():
        count = count_of(s)
        names[s] = r"\left(" + sympy.latex(count, symbol_names=latex_names([count]), order="rev-lex") + r"\right)"
    return names


def latex(d, e=None, display: bool = False) -> str:
    """The totals as an align* block; `display`: as $$\\begin{aligned}…$$ for Jupyter."""
    import sympy

    from .forms import shown

    metrics = {m: shown(d.compound_counts, e) for m, e in d.total.metrics().items()}
    names = latex_names(metrics.values())
    env = "aligned" if display else "align*"
    lines = [rf"\begin{{{env}}}"]
    for m, expr in metrics.items():
        value = f" = {e.total[m]:,}".replace(",", "{,}") if e else ""
        lines.append(rf"  \text{{{label(m)}}} &= {sympy.latex(expr, symbol_names=names)}{value} \\")
    lines.append(rf"\end{{{env}}}")
    if display:
        return "$$" + "\n".join(lines) + "$$"
    return "\n".join([f"% {d.spec.name}, convention: {d.convention.name}", *lines])


def render_derivation(d, fmt: str, leading_in=(), formulas: bool = False, at=None) -> str:
    if fmt == "json":
        import json

        return json.dumps(derivation_data(d, leading_in), indent=2)
    if fmt == "latex":
        return latex(d)
    if fmt == "markdown":
        return derivation_markdown(d)
    return derivation_text(d, leading_in=leading_in, formulas=formulas, at=at)


def render_evaluation(e, fmt: str) -> str:
    if fmt == "json":
        import json

        return json.dumps(evaluation_data(e), indent=2)
    if fmt == "latex":
        return latex(e.derivation, e)
    if fmt == "markdown":
        data = evaluation_data(e)
        lines = [f"## {data['name']}", "", f"Convention: `{data['convention']}`. dims: "
                 + ", ".join(f"{k}={v}" for k, v in data["dims"].items()) + ".", "", "| metric | value |", "|---|---|"]
        lines += [f"| {label(m)} | {number(v)} |" for m, v in e.total.items()]
        lines += ["", "| component | type | params | active params | forward FLOPs |", "|---|---|---|---|---|"]
        lines += [f"| {c['path']} | {c['kind']} | {number(c['params'])} | {number(c['active_params'])} | "
                  f"{number(c['flops']['forward'])} |" for c in data["components"]]
        return "\n".join(lines)
    return evaluation_text(evaluation_data(e))


# -- verify ----------------------------------------------------------------------------

def report_data(report) -> dict:
    """verify's result as plain data (the shape of `verify --format json`)."""

    def pair(row, metric):
        return {"symbolic": row.symbolic[metric], "measured": row.measured[metric]}

    metrics = list(report.totals.symbolic)
    data = {"name": report.name, "convention": report.convention, "device": report.device, "match": report.match,
            "dims": report.dims, **shaped({m: pair(report.totals, m) for m in metrics})}
    data["unattributed_bytes" if "saved_bytes" in metrics else "unattributed_flops"] = report.unattributed
    data["components"] = [
        {"path": r.path, "kind": r.kind, "match": r.match, "note": r.note, **shaped({m: pair(r, m) for m in metrics})}
        for r in report.rows
    ]
    return data


def render_report(report, fmt: str, limit: int | None = None) -> str:
    if fmt == "json":
        import json

        return json.dumps(report_data(report), indent=2)
    limit = limit or width()
    metrics = list(report.totals.symbolic)
    head = ("component", *(h for m in metrics for h in (label(m), "torch")), "")
    rows, short = [], []
    for r in [*report.rows, report.totals]:
        values = [side[m] for m in metrics for side in (r.symbolic, r.measured)]
        rows.append((r.path, *(number(v) for v in values), ("ok" if r.match else "DIFFERS") + (" *" if r.note else "")))
        short.append({i + 1: human(v) for i, v in enumerate(values)})
    lines = [
        *wrap(f"{report.name} — verified against PyTorch ({report.device} device), "
              + (report.convention if "saved_bytes" in metrics else f"convention: {report.convention}"), limit),
        *wrap("dims: " + ", ".join(f"{k}={v}" for k, v in report.dims.items()), limit),
        "",
        *table(head, rows, limit, compact=short),
        "",
    ]
    for note in sorted({r.note for r in report.rows if r.note}):
        lines += wrap(f"* {note}", limit)
    lost = {k: v for k, v in report.unattributed.items() if v}
    if lost:
        lines += wrap(f"{'bytes' if 'saved_bytes' in metrics else 'FLOPs'} counted outside every component: {lost}", limit)
    lines.append("MATCH: every count equals PyTorch's, exactly." if report.match else "MISMATCH: see DIFFERS rows.")
    return "\n".join(lines)


def hf_report_data(r) -> dict:
    """verify --hf's result as plain data (the shape of its --format json)."""
    return {
        "name": r.name, "model": r.model, "match": r.match, "dims": r.dims, "convention": "pytorch",
        "params": {"symbolic": r.params[0], "transformers": r.params[1]},
        "active_params": {"symbolic": r.active[0], "transformers": r.active[1]},
        "flops": {"forward": {"symbolic": r.forward[0], "transformers": r.forward[1]}},
        "flops_not_measured": r.unmeasured,
        "explained": [{"module": m, "flops": f, "why": why} for m, (f, why) in r.explained.items()],
        "by_kind": {k: shaped({"params": {"symbolic": ours[0], "transformers": theirs[0]},
                               "forward": {"symbolic": ours[1], "transformers": theirs[1]}})
                    for k, (ours, theirs) in r.by_kind.items()},
    }


def render_hf_report(r, fmt: str, limit: int | None = None) -> str:
    if fmt == "json":
        import json

        return json.dumps(hf_report_data(r), indent=2)
    limit = limit or width()
    ok = lambda ours, theirs: "ok" if ours == theirs else "DIFFERS"
    rows = [("params", number(r.params[0]), number(r.params[1]), ok(*r.params))]
    if r.active != r.params:  # a model with experts
        rows.append(("active params", number(r.active[0]), number(r.active[1]), ok(*r.active)))
    rows.append(("forward FLOPs", number(r.forward[0]), "not measured", "") if r.unmeasured else
                ("forward FLOPs", number(r.forward[0]), number(r.forward[1]), "ok" if r.forward[0] == r.forward[1] else ""))
    lines = [
        *wrap(f"{r.name} — against transformers' {r.model} (meta device, eager attention, batched_mm experts)", limit),
        *wrap("dims: " + ", ".join(f"{k}={v}" for k, v in r.dims.items()), limit),
        "",
        *table(("", "symcost", "transformers", ""), rows, limit),
    ]
    for module, (flops, why) in r.explained.items():
        lines += wrap(f"  + {flops:,} FLOPs in {module}: {why}", limit)
    if r.unmeasured:
        lines += wrap(f"  forward FLOPs not measured: {r.unmeasured}", limit)
    if r.by_kind:
        flops = ("forward FLOPs", "transformers") if not r.unmeasured else ()  # else each row's 0 and 0
        lines += ["", *table(("layer type", "params", "transformers", *flops, ""), [
            (k, number(ours[0]), number(theirs[0]), *((number(ours[1]), number(theirs[1])) if flops else ()),
             "ok" if ours == theirs else "-") for k, (ours, theirs) in r.by_kind.items()], limit)]
        if not r.kinds_agree:
            lines += wrap("  -: the two module trees cut these layers differently (transformers' modules are typed by "
                          "name: self_attn, mlp, *RMSNorm, …); the totals above are the check", limit)
    lines.append("")
    if r.unmeasured:
        lines.append("MATCH in parameters; forward FLOPs not measured (above)." if r.match else
                     "MISMATCH: the parameters differ.")
    else:
        lines.append("MATCH: equal exactly" + (" once the listed library work is added." if r.explained else ".")
                     if r.match else "MISMATCH: the counts differ by more than the listed library work.")
    return "\n".join(lines)
