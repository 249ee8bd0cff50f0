"""Published sizes and files the tests share (no test imports another test): a config built on a
config class's defaults would change meaning silently when transformers changes them, so every size a
test relies on is written here or read from a published file in tests/data/hf."""

import json
from pathlib import Path

DATA = Path(__file__).parent / "data" / "hf"


def published(name: str):
    """transformers' config object of a published file in tests/data/hf."""
    from symcost.hfref import config_object

    data = json.loads((DATA / f"{name}.json").read_text())
    return config_object(data["model_type"], data)


# mistralai/Mamba-Codestral-7B-v0.1's sizes, field by field
MAMBA_CODESTRAL = {"hidden_size": 4096, "num_hidden_layers": 64, "vocab_size": 32768, "num_heads": 128, "head_dim": 64,
                   "state_size": 128, "expand": 2, "n_groups": 8, "conv_kernel": 4, "chunk_size": 256,
                   "use_bias": False, "use_conv_bias": True, "tie_word_embeddings": False}

# ibm-ai-platform/Bamba-9B's sizes, field by field
BAMBA_9B = {"hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 128000, "intermediate_size": 14336,
            "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 262144,
            "mamba_n_heads": 128, "mamba_d_head": 64, "mamba_n_groups": 1, "mamba_d_state": 256, "mamba_d_conv": 4,
            "mamba_expand": 2, "mamba_chunk_size": 256, "attn_layer_indices": None, "tie_word_embeddings": False}
