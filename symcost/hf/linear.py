"""Linear-attention hybrids: decoders whose layers run a linear (recurrent) attention in most places
and softmax attention in the others. Qwen3-Next: Gated DeltaNet layers and, every
full_attention_interval-th layer (or as layer_types say), attention with an output gate, per-head
Q/K norms and rotary on part of each head; a MoE of routed experts and a gated shared expert after
each. Qwen3.5's text models: the same layers, a dense MLP or the same MoE after each."""

from __future__ import annotations

from .heads import _decoder_head
from .llama import Decoder, _layer_types, _moe, _period
from .reader import Config, _act, _rotary_fraction
from .writer import Writer, _capped_seq_len, _dims, _flow, _runs

# layer_types' names: True for softmax attention
LINEAR_TYPES = {"linear_attention": False, "full_attention": True}
QWEN3_NEXT = Decoder(moe="routed", shared_expert=True)


def _qwen3_next(c: Config, w: Writer, family: str = "qwen3_next") -> None:
    """Qwen3-Next and Qwen3.5's text models (qwen3_5_text: a dense MLP after each layer; qwen3_5_moe_text: Qwen3-Next's
    MoE), whose Gated DeltaNet projects q, k, v, z, b and a apart: the same parameters and FLOPs."""
    n = c.int("num_hidden_layers")
    types = c.get("layer_types")
    if types is None:
        every = c.int("full_attention_interval", 4)
        full = [(i + 1) % every == 0 for i in range(n)]
    else:
        c.get("full_attention_interval")  # read only when layer_types is unset
        full = _layer_types(c, types, n, LINEAR_TYPES)
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads"),
                 ("n_kv_heads", "num_key_value_heads"), ("d_head", "head_dim")])
    head_dim = c.int("head_dim")
    fraction = _rotary_fraction(c, "partial_rotary_factor", 0.25)
    w.dim("d_rot", int(head_dim * fraction), f"partial_rotary_factor {fraction} x head_dim {head_dim}, rounded down")
    _dims(c, w, [("n_k_heads", "linear_num_key_heads"), ("n_v_heads", "linear_num_value_heads"),
                 ("d_k", "linear_key_head_dim"), ("d_v", "linear_value_head_dim"),
                 ("d_conv", "linear_conv_kernel_dim", None, 4)])
    act = _act(c)
    if family == "qwen3_5_text":
        w.dim("d_ff", c.int("intermediate_size"), "intermediate_size")
        feed = "mlp: " + _flow({"dim": "d_model", "hidden": "d_ff", "activation": act, "gated": True})
    else:
        feed = f"moe: {_flow(_moe(c, QWEN3_NEXT, w, act))}"
        c.get("intermediate_size")  # a dense MLP's, which no layer has (mlp_only_layers empty, every layer sparse)
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    w.note("its RMSNorms scale by 1 + weight (zero-centred): the same parameters, one add a weight more (not "
           "written: no count under pytorch)")
    norm = "rmsnorm: {dim: d_model}"
    attention = "attention: " + _flow({"dim": "d_model", "heads": "n_heads", "kv_heads": "n_kv_heads",
                                       "head_dim": "d_head", "causal": True, "bias": c.flag("attention_bias", False),
                                       "qk_norm": True, "gate": True})
    linear = "gated_deltanet: " + _flow({"dim": "d_model", "key_heads": "n_k_heads", "value_heads": "n_v_heads",
                                         "key_dim": "d_k", "value_dim": "d_v", "kernel": "d_conv"})
    lines = lambda is_full: [norm, attention if is_full else linear, norm, feed]
    label = lambda is_full: "attention" if is_full else "Gated DeltaNet"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("rotary: {dim: d_rot}")
    m = _period(full)
    if m < n and n % m == 0:
        w.block(f"repeat: n_layers / {m}   # " + ", ".join(label(k) for k in full[:m]),
                [line for k in full[:m] for line in lines(k)])
    else:
        _runs(w, full, lines, label, "n_layers")
    w.layer(norm)
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))

