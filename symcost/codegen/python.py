"""Closed forms as Python with no dependency (plain integers and fractions.Fraction), exact at
every size: a function a training loop can import (flops-per-token), and the module the eval
cache stores.

Floors and ceilings print as integer floor division (vectorized.exact_form); a value that
is not an integer (FLOPs per token) is returned as an exact Fraction of two integers.
"""

from __future__ import annotations

import keyword

import sympy
from sympy.printing.pycode import pycode

from .vectorized import exact_form


def python_function(name: str, e: sympy.Expr, defaults: dict[str, int | None], doc: str, header: str = "") -> str:
    """Source of `def name(**dims)` returning `e` exactly: arguments in `defaults`' order, those
    without a default (None) first."""
    used = {str(s) for s in e.free_symbols}
    missing = sorted(used - set(defaults))
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    args = sorted((k for k in defaults if k in used), key=lambda k: defaults[k] is not None)
    for a in args:
        if not a.isidentifier() or keyword.iskeyword(a):
            raise ValueError(f"{a!r} is not a Python name")
    num, den = sympy.fraction(sympy.together(e))
    body = f"Fraction({pycode(exact_form(num))}, {pycode(exact_form(den))})" if den != 1 else pycode(exact_form(num))
    signature = ", ".join(a if defaults[a] is None else f"{a}={int(defaults[a])}" for a in args)
    lines = [header.rstrip(), "from fractions import Fraction", "", "",
             f"def {name}({signature}):", f'    """{doc}"""', f"    return {body}", ""]
    return "\n".join(lines).lstrip("\n")


def evaluator(evaluation) -> str:
    """Source of a module whose `evaluate(values)` returns eval's JSON data for the evaluation's
    spec at any values, in integer Python (see symcost.cache, which stores it), with no point
    checked yet (`CHECKED = set()`)."""
    import sympy
    from sympy.printing.pycode import PythonCodePrinter

    from .. import __version__

    derivation = evaluation.derivation
    printer = PythonCodePrinter({"fully_qualified_modules": False})
    names = {s: f"v_{s}" for s in (d.symbol for d in derivation.spec.dimset.items)}

    def code(e) -> str:
        e = sympy.sympify(e).xreplace({s: sympy.Symbol(n) for s, n in names.items()})
        return printer.doprint(exact_form(e))

    spec = derivation.spec
    lines = [
        f"# symcost {__version__}: derived forms of {spec.name!r} ({derivation.convention.name}); generated, do not edit",
        f"VERSION = {__version__!r}",
        "CHECKED = set()",
        "",
        "",
        "def evaluate(values):",
        "    dims = {}",
    ]
    for d in spec.dimset.items:
        var = names[d.symbol]
        fallback = repr(d.default) if d.definition is None else code(d.definition)
        lines.append(f"    {var} = dims[{d.name!r}] = values[{d.name!r}] if {d.name!r} in values else {fallback}")
        if d.rate:  # exact in the formulas, shown as written (evaluate's dims)
            lines.append(f"    dims[{d.name!r}] = float({var})")
    lines.append("    components = [")
    for node in derivation.raw:
        cost = node.cost
        held = (cost.trainable, cost.frozen) if derivation.tuned else ()  # eval's data: render.model.evaluation_dict
        numbers = ", ".join(code(e) for e in (cost.params, cost.active_params, cost.forward, cost.backward, *held))
        lines.append(f"        ({node.path!r}, {node.kind!r}, {numbers}),")
    lines += [
        "    ]",
        f"    return DATA(NAME, CONVENTION, dims, {code(derivation.inputs)}, INPUT_UNIT, components)",
        "",
        "",
        "from fractions import Fraction  # noqa: E402  (a rate dim's value: exact)",
        "from symcost.render.model import evaluation_dict as DATA  # noqa: E402",
        "",
        f"NAME = {spec.name!r}",
        f"CONVENTION = {derivation.convention.name!r}",
        f"INPUT_UNIT = {evaluation.input_unit!r}",
    ]
    return "\n".join(lines) + "\n"
