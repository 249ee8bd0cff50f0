"""The public functions the CLI is a skin over (re-exported by `symcost`)."""

from __future__ import annotations

from .derive import derive
from .evaluate import evaluate
from .spec import load, loads


def verify(spec, values=None, **options):
    """Compare the formulas with PyTorch's own counts (imports torch; see symcost.verification)."""
    from .verification import verify as _verify

    return _verify(spec, values, **options)


__all__ = ["derive", "evaluate", "load", "loads", "verify"]
