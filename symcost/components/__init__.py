"""The registry of component types: the YAML key of each layer -> its class.

Adding a type: one module here (fields, cost rule, torch builder), one line below,
an architecture using it, and its tests.

The registry imports a type's module the first time the type is looked up, so a spec
pays only for the types it uses (each is a pydantic model; building all 33 at start-up
cost more than deriving a small spec).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from .base import Component, Ctx, FieldError, Flow, Memory, Size

# kind -> (module, class), in the order `symcost` lists them
KINDS: dict[str, tuple[str, str]] = {
    # token models
    "embedding": ("embedding", "Embedding"),
    "concat_embedding": ("concat_embedding", "ConcatEmbedding"),
    "position_embedding": ("position_embedding", "PositionEmbedding"),
    "token_type_embedding": ("token_type_embedding", "TokenTypeEmbedding"),
    "relative_position_bias": ("relative_position_bias", "RelativePositionBias"),
    "rotary": ("rotary", "Rotary"),
    "alibi": ("alibi", "ALiBi"),
    "layernorm": ("layernorm", "LayerNorm"),
    "rmsnorm": ("rmsnorm", "RMSNorm"),
    "attention": ("attention", "Attention"),
    "cross_attention": ("cross_attention", "CrossAttention"),
    "mla": ("mla", "MLA"),
    "compressed_attention": ("compressed_attention", "CompressedAttention"),
    "hyper_expand": ("hyper", "HyperExpand"),
    "hyper_head": ("hyper", "HyperHead"),
    "mlp": ("mlp", "MLP"),
    "moe": ("moe", "MoE"),
    "linear": ("linear", "Linear"),
    "lm_head": ("lm_head", "LMHead"),
    "contrastive": ("contrastive", "Contrastive"),
    "insert_encoder": ("insert_encoder", "InsertEncoder"),
    "dropout": ("dropout", "Dropout"),
    # images and recurrence
    "conv1d": ("conv", "Conv1d"),
    "conv2d": ("conv", "Conv2d"),
    "batchnorm": ("batchnorm", "BatchNorm"),
    "activation": ("activation", "Activation"),
    "pool": ("pool", "Pool"),
    "adaptive_pool": ("pool", "AdaptivePool"),
    "flatten": ("flatten", "Flatten"),
    "patch_embedding": ("patch_embedding", "PatchEmbedding"),
    "class_token": ("class_token", "ClassToken"),
    "pool_tokens": ("pool_tokens", "PoolTokens"),
    "pool_grid": ("pool_grid", "PoolGrid"),
    "rnn": ("recurrent", "RNN"),
    "lstm": ("recurrent", "LSTM"),
    "gru": ("recurrent", "GRU"),
    "mamba": ("mamba", "Mamba"),
    "mamba2": ("mamba2", "Mamba2"),
    "gated_deltanet": ("gated_deltanet", "GatedDeltaNet"),
    "kda": ("kda", "KDA"),
    "lightning_attention": ("lightning_attention", "LightningAttention"),
    "rg_lru": ("rg_lru", "RGLRU"),
    "mlstm": ("mlstm", "MLSTM"),
    "rwkv_time_mix": ("rwkv", "RWKVTimeMix"),
    "rwkv_channel_mix": ("rwkv", "RWKVChannelMix"),
    "short_conv": ("short_conv", "ShortConv"),
}


class _Registry(Mapping[str, type[Component]]):
    def __getitem__(self, kind: str) -> type[Component]:
        module, name = KINDS[kind]
        return getattr(importlib.import_module(f".{module}", __name__), name)

    def __iter__(self) -> Iterator[str]:
        return iter(KINDS)

    def __len__(self) -> int:
        return len(KINDS)


REGISTRY: Mapping[str, type[Component]] = _Registry()

__all__ = ["KINDS", "REGISTRY", "Component", "Ctx", "FieldError", "Flow", "Memory", "Size"]
