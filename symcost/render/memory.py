"""memory and inference as data and text."""

from __future__ import annotations

import json
from fractions import Fraction

from ..metrics import INFERENCE, label
from .explore import jsonable
from .text import bytes_human, formula, number, pretty, width, wrap


def memory_data(m) -> dict:
    return {"name": m.name, "dims": m.dims, **m.held, "bytes": {k: jsonable(m.numbers[k]) for k in m.exprs},
            "formulas": {k: formula(e) for k, e in m.exprs.items()},
            "activations_by_component": [{"path": path, "kind": kind, "bytes": jsonable(value), "formula": formula(e)}
                                         for path, kind, e, value in m.activations],
            **({"per_gpu": {k: jsonable(v) for k, v in m.per_gpu.items()}} if m.per_gpu else {}),
            "notes": list(m.notes)}


def render_memory(m, fmt: str, limit: int | None = None, formulas: bool = False) -> str:
    """Numbers first; with `formulas`, each figure's closed form beside it."""
    if fmt == "json":
        return json.dumps(memory_data(m), indent=2)
    from .forms import shown

    limit = limit or width()
    w = max(len(label(k)) for k in m.exprs)
    lines = [f"{m.name} — memory in bytes", *wrap("dims: " + ", ".join(f"{k}={v}" for k, v in m.dims.items()), limit),
             ""]
    for key, e in m.exprs.items():
        if key == "active_weights_bytes" and e == m.exprs["weights_bytes"]:
            continue  # a dense model: every token reads every weight
        v = m.numbers[key]
        head = f"{label(key):<{w}}  {number(v):>24}  ({bytes_human(v)})"
        same_line = f"{head}   = {pretty(shown(m.counts, e))}"
        if not formulas:
            lines += wrap(head, limit)
        else:
            lines += [same_line] if len(same_line) <= limit else [*wrap(head, limit),
                                                                   *wrap(f"{' ' * (w + 2)}= {pretty(shown(m.counts, e))}", limit)]
    lines.append("")
    if m.per_gpu:
        g = m.per_gpu
        lines += wrap(f"per GPU on {g['gpus']:,} x {g['hardware']}, the most loaded rank ({g['stage']} stage), as "
                      "`symcost plan` takes the run (its peak holds the gradients beside the activations, a bound on "
                      "the training peak above, which takes the larger):", limit)
        kinds = [k for k in g if k.endswith("_bytes")]
        wide = max(len(label(k)) for k in kinds)
        lines += [f"  {label(k):<{wide}}  {number(g[k]):>24}  ({bytes_human(g[k])})" for k in kinds]
        lines.append("")
    return "\n".join(lines + [piece for n in m.notes for piece in wrap(f"* {n}", limit)])


def inference_data(inf) -> dict:
    numbers = inf._numbers()
    return {"name": inf.name, "convention": inf.convention, "context": int(numbers["context"]),
            "new_tokens": inf.new_tokens,
            **{k: {"formula": formula(getattr(inf, k)), "value": jsonable(
                Fraction(str(numbers[k])) if k == "intensity" else int(numbers[k]))} for k in INFERENCE},
            "notes": list(inf.notes)}


def inference_rows(inf) -> list[tuple[str, str, str]]:
    """(key, label, value as shown) of each figure: what the text and the summary print."""
    numbers = inf._numbers()
    fields = {"context": int(numbers["context"]), "new_tokens": inf.new_tokens}
    return [(key, label(key, **fields), f"{float(numbers[key]):,.3f}" if key == "intensity" else f"{int(numbers[key]):,}")
            for key in INFERENCE]


def render_inference(inf, fmt: str, limit: int | None = None, formulas: bool = False) -> str:
    if fmt == "json":
        return json.dumps(inference_data(inf), indent=2)
    from .forms import shown

    limit = limit or width()
    lines = wrap(f"{inf.name} — inference, convention: {inf.convention}", limit) + [""]
    for key, text, value in inference_rows(inf):
        lines += wrap(f"{text}: {value}", limit)
        lines += wrap(f"  = {pretty(shown(inf.prefill_derivation.compound_counts, getattr(inf, key)))}", limit) \
            if formulas else []
    return "\n".join(lines + [piece for n in inf.notes for piece in wrap(f"* {n}", limit)])
