"""Hybrids of attention with fixed-state layers: decoders whose layers run a linear (recurrent) attention
or a short convolution in most places and softmax attention in the others. Qwen3-Next: Gated DeltaNet
layers and, every full_attention_interval-th layer (or as layer_types say), attention with an output
gate, per-head Q/K norms and rotary on part of each head; a MoE of routed experts and a gated shared
expert after each. Qwen3.5's text models: the same layers, a dense MLP or the same MoE after each. LFM2:
gated short convolutions and attention, a SwiGLU MLP after each. Kimi Linear (KDA and latent attention), MiniMax
(lightning attention) and RecurrentGemma (Griffin's recurrent blocks and local attention)."""

from __future__ import annotations

from .heads import _decoder_head
from .llama import Decoder, _layer_types, _moe, _period
from .moe import _latent_attention
from .reader import Config, _act, _alias, _layer_indices, _rotary_fraction
from .writer import SCALED, Writer, _capped_seq_len, _dims, _flow, _runs

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
    _hybrid_stack(c, w, full, "d_rot", [norm, attention, norm, feed], [norm, linear, norm, feed], "Gated DeltaNet")
    # its checkpoints' MTP module: one attention layer between fc and a norm, reading the shared table
    c.expect("mtp_use_dedicated_embeddings", (False,), False)
    if isinstance(layers := c.get("mtp_num_hidden_layers"), int) and not isinstance(layers, bool) and layers > 1:
        raise c.error("mtp_num_hidden_layers", f"{layers} MTP layers (one a prediction step) are not written; the "
                      "published files have 1")
    w.nextn(c, "mtp_num_hidden_layers", ("pre_fc_norm_hidden", "fc", "pre_fc_norm_embedding", "mtp.norm"),
            [norm, attention, norm, feed])


def _hybrid_stack(c: Config, w: Writer, full: list[bool], rotated: str, attention: list[str], linear: list[str],
                  name: str, tied: bool = False) -> None:
    """The table, rotary over `rotated`, then each layer's lines (`attention` where `full`, else `linear`): one
    repeat of the pattern's period where it divides the layers, else a repeat per run; a final norm and the
    head."""
    n, m = len(full), _period(full)
    lines = lambda is_full: attention if is_full else linear
    label = lambda is_full: "attention" if is_full else name
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer(f"rotary: {{dim: {rotated}}}")
    if m < n and n % m == 0:
        w.block(f"repeat: n_layers / {m}   # " + ", ".join(label(k) for k in full[:m]),
                [line for k in full[:m] for line in lines(k)])
    else:
        _runs(w, full, lines, label, "n_layers")
    w.layer("rmsnorm: {dim: d_model}")
    _decoder_head(c, w, c.flag("tie_word_embeddings", tied))


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
            multiplier = c.positive("block_ffn_dim_multiplier", 1.0)
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


def _kimi_linear(c: Config, w: Writer) -> None:
    """Kimi Linear: Kimi Delta Attention layers (`kda`) and, where layer_types say (or linear_attn_config's 1-based
    full_attn_layers), DeepSeek's latent attention without positions (NoPE: transformers rotates nothing); a SwiGLU
    MLP after the first first_k_dense_replace layers (or as mlp_layer_types say), a MoE of sigmoid-routed experts
    and shared experts after the others; each run of like layers a repeat."""
    n = c.int("num_hidden_layers")
    kda = c.sub("linear_attn_config")  # the published files' own block: sizes and 1-based layer lists
    if kda.get("use_full_rank_gate", False) is not False:
        raise kda.error("use_full_rank_gate", "a full-rank KDA gate is not what transformers' KimiLinear builds "
                                              "(its gates are low-rank)")
    kda.unused.update({"gate_lower_bound"})
    types = c.get("layer_types")
    if types is not None:
        full = _layer_types(c, types, n, LINEAR_TYPES)
    elif kda.get("full_attn_layers") is not None:
        given = {i - 1 for i in kda.get("full_attn_layers")} if isinstance(kda.get("full_attn_layers"), list) else None
        if given is None or not all(isinstance(i, int) and 0 <= i < n for i in given):
            raise kda.error("full_attn_layers", f"expected 1-based layer numbers from 1 to {n}, got "
                                                f"{kda.get('full_attn_layers')!r}")
        listed = kda.get("kda_layers")
        if listed is not None and sorted(listed) != [i + 1 for i in range(n) if i not in given]:
            raise kda.error("kda_layers", "expected every layer full_attn_layers does not name, 1-based")
        full = [i in given for i in range(n)]
    else:
        full = [i > 0 and i % 4 == 0 for i in range(n)]  # KimiLinearConfig's default
    dense_first = c.int("first_k_dense_replace", 1) if c.get("mlp_layer_types") is None else None
    mlp_types = c.get("mlp_layer_types", ["dense"] * dense_first + ["sparse"] * (n - dense_first)
                      if dense_first is not None else None)
    if not isinstance(mlp_types, list) or len(mlp_types) != n or any(t not in ("dense", "sparse") for t in mlp_types):
        raise c.error("mlp_layer_types", f"expected {n} MLP types, each one of dense, sparse; got {mlp_types!r}")
    c.expect("moe_layer_freq", (1, None))  # transformers' model reads only first_k_dense_replace
    c.expect("moe_router_activation_func", ("sigmoid", None))
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads")])
    mla = _latent_attention(c, w)
    c.get("head_dim")  # derived in the config: the rope part
    c.get("mla_use_nope")  # transformers' latent attention rotates nothing, whatever it says
    for name, key, nested in (("n_kda_heads", "linear_num_heads", "num_heads"), ("d_kda_head", "linear_head_dim",
                                                                                  "head_dim"),
                              ("d_conv", "linear_conv_kernel_dim", "short_conv_kernel_size")):
        given = kda.get(nested)  # the file's block first, as transformers reads it
        w.dim(name, kda.int(nested) if given is not None else c.int(key, {"n_kda_heads": 32, "d_kda_head": 128,
                                                                           "d_conv": 4}[name]),
              f"linear_attn_config.{nested}" if given is not None else key)
        c.get(key)
    act = _act(c)
    _dims(c, w, [("d_ff", "intermediate_size", "intermediate_size (dense layers)"),
                 ("d_expert", "moe_intermediate_size"),
                 ("n_experts", _alias(c, "num_experts", "num_local_experts")),
                 ("top_k", _alias(c, "num_experts_per_token", "num_experts_per_tok")),
                 ("n_shared", _alias(c, "num_shared_experts", "n_shared_experts"),
                  "num_shared_experts: one MLP of n_shared x d_expert"), ("vocab", "vocab_size")])
    for key in ("routed_scaling_factor", "num_expert_group", "n_group", "topk_group", "moe_renormalize",
                "norm_topk_prob", "rms_norm_eps", "pretraining_tp"):
        c.get(key)  # routing's weights and groups, numerics: no count changes
    length = c.int(_alias(c, "model_max_length", "max_position_embeddings"), 1048576)
    w.dim("seq_len", min(length, 4096), f"a 4096-token pass (model_max_length {length:,} is longer)" if length > 4096
          else "model_max_length: one full-context pass")
    if length > 4096:
        w.dim("max_pos", length, f"model_max_length: the longest context (--set seq_len={length})")
    w.dim("batch", 1, "sequences per pass")
    norm = "rmsnorm: {dim: d_model}"
    mixers = {True: f"mla: {_flow(mla)}",
              False: "kda: " + _flow({"dim": "d_model", "heads": "n_kda_heads", "head_dim": "d_kda_head",
                                      "kernel": "d_conv"})}
    feeds = {"dense": "mlp: " + _flow({"dim": "d_model", "hidden": "d_ff", "activation": act, "gated": True}),
             "sparse": "moe: " + _flow({"dim": "d_model", "hidden": "d_expert", "experts": "n_experts",
                                        "top_k": "top_k", "activation": act, "gated": True, "shared_experts": 1,
                                        "shared_hidden": "n_shared * d_expert"})}
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    _runs(w, list(zip(full, mlp_types)), lambda kind: [norm, mixers[kind[0]], norm, feeds[kind[1]]],
          lambda kind: ("latent attention" if kind[0] else "KDA") + (", MLP" if kind[1] == "dense" else ", MoE"),
          "n_layers")
    w.layer(norm)
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))


MINIMAX = Decoder(moe="experts")


def _minimax(c: Config, w: Writer) -> None:
    """MiniMax-Text-01: lightning attention layers (`lightning_attention`: linear attention by blocks of
    block_size, a decay per head, an output gate) and, where layer_types say (every other layer by default;
    one in eight in the released model), grouped-query attention with rotary over each head; a MoE of
    experts after each, each sublayer's output added to its normalised input (the alpha and beta factors,
    scalar multiplies, noted)."""
    n = c.int("num_hidden_layers")
    types = c.get("layer_types")
    full = ([(i + 1) % 2 == 1 for i in range(n)] if types is None  # MiniMaxConfig's default: full attention first
            else _layer_types(c, types, n, LINEAR_TYPES))
    hidden, heads = c.int("hidden_size"), c.int("num_attention_heads")
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads"),
                 ("n_kv_heads", "num_key_value_heads")])
    head = c.get("head_dim")
    if head is None and hidden % heads:
        raise c.error("num_attention_heads", f"{heads} heads do not divide hidden_size {hidden}; set head_dim")
    w.dim("d_head", c.int("head_dim") if head is not None else "d_model / n_heads",
          "head_dim" if head is not None else "head_dim unset: hidden_size / num_attention_heads")
    w.dim("block", c.int("block_size", 256), "block_size: lightning attention's block")
    act = _act(c)
    feed = f"moe: {_flow(_moe(c, MINIMAX, w, act) | {'hidden': 'd_ff'})}"
    w.dim("d_ff", c.int("intermediate_size"), "intermediate_size: each expert's")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    if c.get("sliding_window") is not None:
        raise c.error("sliding_window", "a window on MiniMax's attention layers is not written by the importer")
    scales = [k for k in ("full_attn_alpha_factor", "full_attn_beta_factor", "linear_attn_alpha_factor",
                          "linear_attn_beta_factor", "mlp_alpha_factor", "mlp_beta_factor") if c.get(k) is not None]
    if scales:
        w.note(f"MiniMax's residual factors ({', '.join(scales)}) are not written: each is one elementwise "
               "multiply (no count under pytorch; a few per token under `full`)")
    for key in ("router_jitter_noise", "router_aux_loss_coef", "output_router_logits", "rms_norm_eps"):
        c.get(key)  # training noise and losses, numerics: no count changes
    # the remote code's names, which the -hf files may carry beside transformers' own: transformers' model reads
    # none of them (it rotates whole heads, and always takes the residual after each norm)
    c.unused.update({"rotary_dim", "postnorm", "attn_type_list", "layernorm_full_attention_alpha",
                     "layernorm_full_attention_beta", "layernorm_linear_attention_alpha",
                     "layernorm_linear_attention_beta", "layernorm_mlp_alpha", "layernorm_mlp_beta"})
    norm = "rmsnorm: {dim: d_model}"
    attention = "attention: " + _flow({"dim": "d_model", "heads": "n_heads", "kv_heads": "n_kv_heads",
                                       "head_dim": "d_head", "causal": True})
    linear = "lightning_attention: " + _flow({"dim": "d_model", "heads": "n_heads", "head_dim": "d_head",
                                              "block": "block"})
    _hybrid_stack(c, w, full, "d_head", [norm, attention, norm, feed], [norm, linear, norm, feed],
                  "lightning attention")


# block_types' names (the config's; layers_block_type cycles them over the layers): True for attention
GRIFFIN_TYPES = {"recurrent": False, "attention": True}


def _recurrent_gemma(c: Config, w: Writer) -> None:
    """RecurrentGemma (Griffin): Griffin's recurrent blocks (`rg_lru`: linear_y and linear_x of lru_width, a
    depthwise conv, the RG-LRU with block-diagonal gates a head) and local attention (a sliding window of
    attention_window_size, rotary over half of each head, an output bias) as block_types cycles them; a
    gated MLP with biases of intermediate_size / 2 after each; the head tied to the table."""
    n = c.int("num_hidden_layers")
    cycle = c.get("block_types", ["recurrent", "recurrent", "attention"])
    if not isinstance(cycle, list) or not cycle or any(t not in GRIFFIN_TYPES for t in cycle):
        raise c.error("block_types", f"expected a list of recurrent, attention; got {cycle!r}")
    full = [GRIFFIN_TYPES[t] for t in (cycle * n)[:n]]
    hidden, heads = c.int("hidden_size"), c.int("num_attention_heads")
    if hidden % heads:
        raise c.error("num_attention_heads", f"{heads} heads do not divide hidden_size {hidden}")
    width = c.int("lru_width", hidden) if c.get("lru_width") is not None else hidden
    if width != hidden:  # its conv state is kept at hidden_size's width: another width does not decode
        raise c.error("lru_width", f"{width} differs from hidden_size {hidden}, which transformers' cache assumes")
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads"),
                 ("n_kv_heads", "num_key_value_heads", None, heads)])
    w.dim("d_head", "d_model / n_heads", "hidden_size / num_attention_heads")
    fraction = _rotary_fraction(c, "partial_rotary_factor", 0.5)
    w.dim("d_rot", int(hidden // heads * fraction), f"partial_rotary_factor {fraction} x head dim, rounded down")
    ff = c.int("intermediate_size")
    w.dim("d_ff", ff // 2, f"intermediate_size {ff} / 2, as its MLP halves it")
    w.dim("window", c.int("attention_window_size", 2048), "attention_window_size")
    w.dim("d_conv", c.int("conv1d_width", 4), "conv1d_width")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    c.expect("hidden_activation", ("gelu_pytorch_tanh",), "gelu_pytorch_tanh")
    w.note(SCALED.format(""))
    w.note("its RMSNorms scale by 1 + weight, and its logits are capped by logits_soft_cap (elementwise, not "
           "written: no count under pytorch)")
    for key in ("logits_soft_cap", "w_init_variance_scale", "final_w_init_variance_scale", "rms_norm_eps", "head_dim"):
        c.get(key)  # numerics and initialisation; head_dim: the config's own hidden_size / heads
    norm = "rmsnorm: {dim: d_model}"
    attention = "attention: " + _flow({"dim": "d_model", "heads": "n_heads", "kv_heads": "n_kv_heads",
                                       "head_dim": "d_head", "causal": True, "window": "window",
                                       "bias": c.flag("attention_bias", False), "o_bias": True})
    recurrent = "rg_lru: " + _flow({"dim": "d_model", "width": "d_model", "heads": "n_heads", "kernel": "d_conv"})
    mlp = "mlp: " + _flow({"dim": "d_model", "hidden": "d_ff", "activation": "gelu_tanh", "gated": True,
                           "bias": True})
    _hybrid_stack(c, w, full, "d_rot", [norm, attention, norm, mlp], [norm, recurrent, norm, mlp], "recurrent",
                  tied=True)
