"""memory and inference as data and text."""

from __future__ import annotations

import json
from fractions import Fraction

from ..metrics import label
from .explore import jsonable
from .text import bytes_human, formula, number, pretty, width, wrap


def memory_data(m) -> dict:
    return {"name": m.name, "bytes": {k: jsonable(m.numbers[k]) for k in m.exprs},
            "formulas": {k: formula(e) for k, e in m.exprs.items()},
            "activations_by_component": [{"path": path, "type": kind, "bytes": jsonable(value), "formula": formula(e)}
                                         for path, kind, e, value in m.activations],
            "notes": list(m.notes)}


def render_memory(m, fmt: str, limit: int | None = None) -> str:
    if fmt == "json":
        return json.dumps(memory_data(m), indent=2)
    limit = limit or width()
    w = max(len(label(k)) for k in m.exprs)
    lines = [f"{m.name} — memory in bytes", ""]
    for key, e in m.exprs.items():
        if key == "active_weights_bytes" and e == m.exprs["weights_bytes"]:
            continue  # a dense model: every token reads every weight
        v = m.numbers[key]
        head = f"{label(key):<{w}}  {number(v):>24}  ({bytes_human(v)})"
        same_line = f"{head}   = {pretty(e)}"
        lines += [same_line] if len(same_line) <= limit else [*wrap(head, limit),
                                                               *wrap(f"{' ' * (w + 2)}= {pretty(e)}", limit)]
    lines.append("")
    return "\n".join(lines + [piece for n in m.notes for piece in wrap(f"* {n}", limit)])


_INFERENCE_ROWS = ("prefill", "step", "generation", "step_bytes", "intensity")


def render_inference(name: str, inf, numbers: dict, context: int, new_tokens: int, convention: str, fmt: str) -> str:
    labels = {
        "prefill": "prefill FLOPs (a prompt of seq_len tokens)",
        "step": f"decode step FLOPs (context = {context})",
        "generation": f"generating {new_tokens} tokens after the prompt",
        "step_bytes": "bytes a step moves (active weights + cache)",
        "intensity": "arithmetic intensity of a step (FLOPs/byte)",
    }
    exprs = {k: getattr(inf, k) for k in _INFERENCE_ROWS}
    if fmt == "json":
        return json.dumps({"name": name, "convention": convention, "context": context, "new_tokens": new_tokens,
                           **{k: {"formula": formula(e), "value": jsonable(
                               Fraction(str(numbers[k])) if k == "intensity" else int(numbers[k]))}
                              for k, e in exprs.items()}, "notes": list(inf.notes)}, indent=2)
    limit = width()
    lines = wrap(f"{name} — inference, convention: {convention}", limit) + [""]
    for key, e in exprs.items():
        v = numbers[key]
        shown = f"{float(v):,.3f}" if key == "intensity" else f"{int(v):,}"
        lines += [f"{labels[key]}: {shown}", *wrap(f"  = {pretty(e)}", limit)]
    return "\n".join(lines + [piece for n in inf.notes for piece in wrap(f"* {n}", limit)])
