"""Optional extras: import one, or say in one line how to install it."""

from __future__ import annotations

import importlib

from .errors import SpecError

NAMES = {"torch": "PyTorch", "transformers": "Hugging Face transformers", "scipy.optimize": "SciPy"}


class MissingExtra(SpecError):
    """An optional dependency is not installed: the message says which extra brings it."""


def require(module: str, extra: str, what: str):
    """Import `module` for `what`, or raise MissingExtra naming `pip install 'symcost[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        missing = MissingExtra(f"{what} needs {NAMES.get(module, module)}: pip install 'symcost[{extra}]'")
        missing.module = module
        raise missing from None


def pyplot():
    """matplotlib's pyplot drawing to files (the Agg backend), or MissingExtra naming symcost[plot]."""
    matplotlib = require("matplotlib", "plot", "a plot")
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt
