"""The registry of component types: the YAML key of each layer -> its class.

Adding a type: one module here (fields, cost rule, torch builder), one line below,
an architecture using it, and its tests.
"""

from .attention import Attention
from .base import Component, Ctx, FieldError, Flow, Memory, Size
from .cross_attention import CrossAttention
from .embedding import Embedding
from .layernorm import LayerNorm
from .linear import Linear
from .lm_head import LMHead
from .mla import MLA
from .mlp import MLP
from .moe import MoE
from .position_embedding import PositionEmbedding
from .rmsnorm import RMSNorm
from .rotary import Rotary

REGISTRY: dict[str, type[Component]] = {
    cls.kind: cls
    for cls in (Embedding, PositionEmbedding, Rotary, LayerNorm, RMSNorm, Attention, CrossAttention, MLA, MLP, MoE, Linear, LMHead)
}

__all__ = ["REGISTRY", "Component", "Ctx", "FieldError", "Flow", "Memory", "Size"]
