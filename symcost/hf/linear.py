"""Hybrids of attention with fixed-state layers: decoders whose layers run a linear (recurrent) attention
or a short convolution in most places and softmax attention in the others. Qwen3-Next: Gated DeltaNet
layers and, every full_attention_interval-th layer (or as layer_types say), attention with an output
gate, per-head Q/K norms and rotary on part of each head; a MoE of routed experts and a gated shared
expert after each. Qwen3.5's text models: the same layers, a dense MLP or the same MoE after each. LFM2:
gated short convolutions and attention, a SwiGLU MLP after each."""

from __future__ import annotations

from .heads import _decoder_head
from .llama import Decoder, _layer_types, _moe, _period
from .reader import Config, _act, _alias, _layer_indices, _rotary_fraction
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


# LFM2's layer_types: True for attention
LFM2_TYPES = {"conv": False, "full_attention": True}


def _lfm2(c: Config, w: Writer) -> None:
    """LFM2 (Liquid AI): gated short-convolution layers (`short_conv`) and, where layer_types (or full_attn_idxs)
    say, grouped-query attention with per-head Q/K norms and rotary; a SwiGLU MLP after each, its width
    intermediate_size adjusted as LFM2 does (2/3 of it, times block_ffn_dim_multiplier, rounded up to
    block_multiple_of); a final norm, the head tied to the table by default."""
    n = c.int("num_hidden_layers")
    types = c.get("layer_types")
    if types is None:
        given = _layer_indices(c, "full_attn_idxs", n) if c.get("full_attn_idxs") is not None else set(range(n))
        full = [i in given for i in range(n)]
    else:
        c.get("full_attn_idxs")  # read only when layer_types is unset
        full = _layer_types(c, types, n, LFM2_TYPES)
    hidden = c.int("hidden_size")
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads"),
                 ("n_kv_heads", "num_key_value_heads")])
    key = _alias(c, "block_ff_dim", "intermediate_size")  # LFM2's config takes block_ff_dim over intermediate_size
    ff, why = c.int(key), key
    if c.flag("block_auto_adjust_ff_dim", True):  # Lfm2MLP's own arithmetic
        ff, why = int(2 * ff / 3), f"{why} {ff} x 2/3"
        multiplier = c.get("block_ffn_dim_multiplier", 1.0)
        if multiplier is not None:
            if isinstance(multiplier, bool) or not isinstance(multiplier, int | float) or multiplier <= 0:
                raise c.error("block_ffn_dim_multiplier", f"expected a positive number, got {multiplier!r}")
            step = c.int("block_multiple_of", 256)
            ff = step * ((int(multiplier * ff) + step - 1) // step)
            why += f", x {multiplier}, rounded up to a multiple of {step}"
    else:
        c.get("block_ffn_dim_multiplier"), c.get("block_multiple_of")  # read only with the adjustment
    w.dim("d_ff", ff, why)
    w.dim("d_conv", c.int("conv_L_cache", 3), "conv_L_cache")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    # Liquid's own names in the published files (block_dim, conv_dim, num_heads, initialisation scales, switches
    # transformers' model does not read: it always builds SwiGLU and rotary)
    c.unused.update({"block_dim", "block_mlp_init_scale", "block_norm_eps", "block_out_init_scale", "block_use_swiglu",
                     "block_use_xavier_init", "conv_dim", "conv_dim_out", "conv_use_xavier_init", "num_heads",
                     "use_pos_enc"})
    heads = c.int("num_attention_heads")
    head = c.int("head_dim") if c.get("head_dim") is not None else None
    if head is None and hidden % heads:
        raise c.error("num_attention_heads", f"{heads} heads do not divide hidden_size {hidden}; set head_dim")
    w.dim("d_head", head if head is not None else "d_model / n_heads",
          "head_dim" if head is not None else "head_dim unset: hidden_size / num_attention_heads")
    norm = "rmsnorm: {dim: d_model}"
    attention = "attention: " + _flow({"dim": "d_model", "heads": "n_heads", "kv_heads": "n_kv_heads",
                                       "head_dim": "d_head", "causal": True, "qk_norm": True})
    conv = "short_conv: " + _flow({"dim": "d_model", "kernel": "d_conv", "bias": c.flag("conv_bias", False)})
    mlp = "mlp: " + _flow({"dim": "d_model", "hidden": "d_ff", "activation": "silu", "gated": True})
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("rotary: {dim: d_head}")
    _runs(w, full, lambda is_full: [norm, attention if is_full else conv, norm, mlp],
          lambda is_full: "attention" if is_full else "short convolution", "n_layers")
    w.layer(norm)
    _decoder_head(c, w, c.flag(_alias(c, "tie_word_embeddings", "tie_embedding"), True))
