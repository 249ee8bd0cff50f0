"""The registry of component types: the YAML key of each layer -> its class.

Adding a type: one module here (fields, cost rule, torch builder), one line below,
an architecture using it, and its tests.
"""

from .attention import Attention
from .base import Component, Ctx, FieldError, Flow, Size
from .embedding import Embedding
from .layernorm import LayerNorm
from .linear import Linear
from .lm_head import LMHead
from .mlp import MLP
from .position_embedding import PositionEmbedding
from .rmsnorm import RMSNorm
from .rotary import Rotary

REGISTRY: dict[str, type[Component]] = {
    cls.kind: cls
    for cls in (Embedding, PositionEmbedding, Rotary, LayerNorm, RMSNorm, Attention, MLP, Linear, LMHead)
}

__all__ = ["REGISTRY", "Component", "Ctx", "FieldError", "Flow", "Size"]
