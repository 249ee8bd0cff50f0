"""Rendering: one module per group of results (model, explore, memory, plan, scaling), text.py for
what they share (readable formulas, numbers, fitting the terminal's width), and `render`, the one
entry the CLI prints through. No sympy at import: the fast `eval` path renders cached data."""

from __future__ import annotations

from importlib import import_module

# Results with formats beyond text and JSON (markdown, LaTeX, a table, CSV) or options, and the
# function in this package that renders each; found by type name, so that importing this
# module imports no result's module
_BY_TYPE = {
    "Derivation": ("model", "render_derivation"),
    "Evaluation": ("model", "render_evaluation"),
    "Report": ("model", "render_report"),
    "HFReport": ("model", "render_hf_report"),
    "Sweep": ("explore", "render_sweep"),
    "Solution": ("explore", "render_solution"),
    "Crossover": ("explore", "render_crossover"),
    "Comparison": ("explore", "render_compare"),
    "MemoryReport": ("memory", "render_memory"),
    "Inference": ("memory", "render_inference"),
}


def render(result, fmt: str = "text", **options) -> str:
    """A Result as a command prints it in `fmt`: its own renderer where its type has one
    (single dispatch by type), else the protocol: `to_dict()` as JSON, or `text(**options)`."""
    for cls in type(result).__mro__:
        if cls.__name__ in _BY_TYPE:
            module, name = _BY_TYPE[cls.__name__]
            return getattr(import_module(f".{module}", __name__), name)(result, fmt, **options)
    if fmt == "json":
        import json

        return json.dumps(result.to_dict(), indent=2)
    if fmt != "text":
        raise ValueError(f"{type(result).__name__} renders as text or json, not {fmt}")
    return result.text(**options)
