"""The registry of component types: the YAML key of each layer -> its class.

Adding a type: one module here (fields, cost rule, torch builder), one line below,
an architecture using it, and its tests.
"""

from .activation import Activation
from .attention import Attention
from .base import Component, Ctx, FieldError, Flow, Memory, Size
from .batchnorm import BatchNorm
from .class_token import ClassToken
from .conv import Conv1d, Conv2d
from .cross_attention import CrossAttention
from .embedding import Embedding
from .flatten import Flatten
from .layernorm import LayerNorm
from .linear import Linear
from .lm_head import LMHead
from .mla import MLA
from .mlp import MLP
from .moe import MoE
from .patch_embedding import PatchEmbedding
from .pool import AdaptivePool, Pool
from .pool_tokens import PoolTokens
from .position_embedding import PositionEmbedding
from .relative_position_bias import RelativePositionBias
from .recurrent import GRU, LSTM, RNN
from .rmsnorm import RMSNorm
from .rotary import Rotary
from .token_type_embedding import TokenTypeEmbedding

REGISTRY: dict[str, type[Component]] = {
    cls.kind: cls
    for cls in (
        # token models
        Embedding, PositionEmbedding, TokenTypeEmbedding, RelativePositionBias, Rotary, LayerNorm, RMSNorm,
        Attention, CrossAttention, MLA, MLP, MoE, Linear, LMHead,
        # images and recurrence
        Conv1d, Conv2d, BatchNorm, Activation, Pool, AdaptivePool, Flatten, PatchEmbedding, ClassToken,
        PoolTokens, RNN, LSTM, GRU,
    )
}

__all__ = ["REGISTRY", "Component", "Ctx", "FieldError", "Flow", "Memory", "Size"]
