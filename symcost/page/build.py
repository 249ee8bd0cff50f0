"""A spec as one self-contained HTML page that evaluates its closed forms in the browser.

The page holds, compiled to JavaScript over exact rationals (symcost.page.js):
- each derived dim's definition, in dependency order, and each constraint of the spec
  (evaluate.site_checks and Dims.check), with the free dims each one depends on;
- each component's params, active params and forward/backward FLOPs, over every dim, as
  `eval` substitutes them into the raw cost tree, and the inputs a pass reads;
- the byte metrics of `symcost memory` (at the given precision) as closed forms in the free dims.
It also holds the totals' closed forms as MathML. Everything is inline: the page asks for
nothing over the network (its Content-Security-Policy forbids it).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources

from .. import __version__
from ..codegen.js import Unsupported, js
from ..conventions import CONVENTIONS
from ..dims import shown
from ..errors import SpecError
from ..metrics import MEMORY_METRICS, METRICS, PER_INPUT, label
from ..results import Result

# what the page shows of `symcost memory`'s bytes (all of them are in window.symcost.evaluate)
SHOWN_BYTES = ("weights_bytes", "kv_bytes_per_token", "kv_cache_bytes", "peak_training_bytes", "peak_inference_bytes")


def _script(text: str) -> str:
    """Text safe inside <script>: no `</` can close the element early."""
    return text.replace("</", "<\\/")


_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _json(value) -> str:
    """JSON for the page's script in which no character of a spec's text (a name, a message) can
    end the script or change how the HTML parser reads it (`<!--`, `<script`, `</script>`): `<`,
    `>` and `&` as escapes, and the two line separators JavaScript reads as line ends."""
    return json.dumps(value).translate(_UNSAFE)


def _data(derivation, precision, start: dict[str, int]) -> str:
    """The page's data and compiled forms, as JavaScript source."""
    import sympy

    from ..evaluate import site_checks
    from ..memory import memory_metrics

    spec = derivation.spec
    dims = spec.dimset
    code = lambda e: js(sympy.sympify(e))
    free = [d for d in dims.items if d.definition is None]
    substitution = dims.substitution()

    def check(where: str, c) -> str:
        return (f"{{where:{_json(where)},field:{_json(c.field)},deps:{_json(c.deps(substitution))},"
                f"holds:v=>{code(c.holds)},message:{_json(c.message)},args:v=>[{','.join(map(code, c.args))}]}}")

    derived = [d for d in dims.items if d.definition is not None]
    checks = [check("dims", dims.check(d)) for d in derived]
    checks += [check("/".join(map(str, where)), c) for where, c in site_checks(derivation)]
    components = [
        f"{{path:{_json(n.path)},kind:{_json(n.kind)},"
        f"f:v=>[{','.join(code(x) for x in (n.cost.params, n.cost.active_params, n.cost.forward, n.cost.backward))}]}}"
        for n in derivation.raw
    ]
    memory = memory_metrics(derivation, precision)
    spec_data = {
        "name": spec.name, "version": __version__, "convention": derivation.convention.name,
        "flops_per_mac": int(derivation.convention.flops_per_mac),
        "input_unit": derivation.input_unit,
        "dense": bool(derivation.total.params == derivation.total.active_params),
        "free": [{"name": d.name, "default": shown(d.default), "start": shown(start[d.name]), "rate": d.rate}
                 for d in free],
        "derived": [{"name": d.name, "definition": str(d.definition)} for d in derived],
        "labels": {m: label(m) for m in (*METRICS, *PER_INPUT, *MEMORY_METRICS)}, "shown_bytes": SHOWN_BYTES,
    }
    lines = [
        f"const SPEC = {_json(spec_data)};",
        "function DERIVE(v) {  // each derived dim checked as it is computed, as Dims.values does",
        *(f"  v[{_json(d.name)}] = {code(d.definition)}; held(CHECKS[{i}], v);" for i, d in enumerate(derived)),
        "}",
        "const CHECKS = [", *(f"  {c}," for c in checks), "];",
        "const COMPONENTS = [", *(f"  {c}," for c in components), "];",
        f"const INPUTS = v => {code(derivation.inputs)};",
        "const BYTES = {", *(f"  {m}: v => {code(memory[m])}," for m in MEMORY_METRICS), "};",
    ]
    return "\n".join(lines)


def _formulas(derivation) -> str:
    """The totals' closed forms as MathML rows of a table."""
    import sympy
    from sympy.printing.mathml import mathml

    from ..render.forms import count_of, shown

    t = derivation.total
    metrics = t.metrics()
    dense = t.params == t.active_params
    rows = []
    for m, e in metrics.items():
        if dense and m == "active_params":
            continue
        e = shown(derivation.compound_counts, e)
        # a factored count prints in parentheses: a placeholder name, then its MathML put in its place
        factors = {s: sympy.Symbol(f"symcostfactor{chr(65 + i)}") for i, s in enumerate(sorted(e.free_symbols, key=str))
                   if count_of(s) is not None}
        math = mathml(e.xreplace(factors), printer="presentation", mul_symbol="dot")  # as the terminal writes products
        for s, placeholder in factors.items():
            count = mathml(count_of(s), printer="presentation", mul_symbol="dot", order="rev-lex")
            math = math.replace(f"<mi>{placeholder}</mi>", f"<mrow><mo>(</mo>{count}<mo>)</mo></mrow>")
        rows.append(f'<tr><th scope="row">{html.escape(label(m))}</th>'
                    f'<td><math>{math}</math></td></tr>')
    return "\n".join(rows)


@dataclass(frozen=True, repr=False)  # repr is Result's summary
class Page(Result):
    """A spec's page: one self-contained HTML file (`html`); `write(path)` saves it."""

    spec: str
    html: str

    def to_dict(self) -> dict:
        return {"name": self.spec, "bytes": len(self.html.encode())}

    def text(self, width: int | None = None) -> str:
        return f"{self.spec}: an HTML page of {len(self.html.encode()):,} bytes (write(path) saves it)"

    def summary(self):
        return f"{self.spec}: page", [("bytes", f"{len(self.html.encode()):,}")]

    def write(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html)


def page(derivation, precision, values: dict[str, int] | None = None) -> Page:
    """The page for `derivation`, opening at the defaults overridden by `values`."""
    from ..evaluate import dim_values

    at = dim_values(derivation, values)  # the page opens at a point eval accepts, or this says why not
    dims = derivation.spec.dimset
    free = [d for d in dims.items if d.definition is None]
    for name in values or {}:
        if name not in {d.name for d in free}:
            raise SpecError(f"{name}: a derived dim; the page sets free dims ({', '.join(d.name for d in free)})", param="dims")
    start = {d.name: Fraction(int(at[d.symbol].p), int(at[d.symbol].q)) if d.rate else int(at[d.symbol]) for d in free}
    try:
        data = _data(derivation, precision, start)
    except Unsupported as e:
        raise SpecError(f"the page cannot compute this spec exactly in the browser: {e}") from None
    files = resources.files(__package__)
    template = files.joinpath("page.html").read_text()
    precision_text = ", ".join(f"{part} {precision.dtype(part)}" for part in ("weights", "kv", "grads", "activations"))
    fill = {
        "TITLE": html.escape(f"{derivation.spec.name} — symcost"),
        "NAME": html.escape(derivation.spec.name),
        "CONVENTION": html.escape(f"{derivation.convention.name}: {CONVENTIONS[derivation.convention.name].description}"),
        "PRECISION": html.escape(f"{precision_text}; optimizer states {precision.optimizer} (Adam)"),
        "VERSION": html.escape(__version__),
        "FORMULAS": _formulas(derivation),
        "STYLE": files.joinpath("page.css").read_text(),
        "SCRIPT": _script("\n".join([files.joinpath("runtime.js").read_text(), data,
                                      files.joinpath("page.js").read_text()])),
    }
    # one pass: no filled text is read again
    return Page(derivation.spec.name, re.sub(r"@([A-Z]+)@", lambda m: fill[m.group(1)], template))
