"""symcost: parameters and FLOPs of neural architectures as closed-form formulas.

    import symcost
    e = symcost.evaluate("architectures/llama.yaml", seq_len=4096)   # exact integers
    e.to_dict()["params"]                  # 6738415616
    d = symcost.derive("architectures/llama.yaml")   # sympy closed forms, per component
    m = symcost.memory("architectures/llama.yaml", batch=8)
    report = symcost.verify("architectures/transformer.yaml")   # against PyTorch (symcost[torch])

Names load on first use: `import symcost` itself imports neither sympy nor pydantic.
"""

import sys
import types

from .errors import SpecError

__version__ = "0.2.0"

_API = ("load", "loads", "finetune", "quantize", "derive", "evaluate", "memory", "sweep", "solve", "crossover",
        "compare", "approx", "budget", "inference", "serve", "fit_efficiency", "verify", "verify_hf", "verify_memory",
        "plan", "plan_search", "flops_per_token", "scaling_fit", "scaling_optimal", "scaling_compare", "page",
        "import_hf")
__all__ = ["SpecError", "__version__", *_API]


class _Package(types.ModuleType):
    """The API's names always mean the API's functions, even once the submodules of the same
    names (symcost/derive.py, …) are imported and set as attributes by the import system."""

    def __getattribute__(self, name: str):
        if name in _API:
            from . import api

            return getattr(api, name)
        return super().__getattribute__(name)

    def __dir__(self):
        return sorted(__all__)


sys.modules[__name__].__class__ = _Package
