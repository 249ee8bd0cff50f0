"""symcost: parameters and FLOPs of neural architectures as closed-form formulas.

    import symcost
    spec = symcost.load("architectures/transformer.yaml")
    d = symcost.derive(spec)              # sympy closed forms, per component
    e = symcost.evaluate(d, {"seq_len": 2048})   # exact integers
    report = symcost.verify(spec)         # against PyTorch's counts (needs torch)
"""

from .api import derive, evaluate, load, loads, verify
from .errors import SpecError

__all__ = ["SpecError", "derive", "evaluate", "load", "loads", "verify"]
