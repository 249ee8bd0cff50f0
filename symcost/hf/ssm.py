"""State-space and recurrent layers and their hybrids: Mamba, Mamba-2 (SSD), RWKV, and the models that mix
them with attention (Bamba, Granite 4.0, Jamba, Nemotron-H, Falcon-H1, Zamba2)."""

from __future__ import annotations

import itertools
import math

from .heads import _decoder_head
from .llama import _granite_note
from .reader import Config, _act, _alias, _layer_indices, _rotary_fraction
from .writer import Writer, _capped_seq_len, _dims, _flow, _parallel_block, _runs


# the config fields of a Mamba layer: expand, d_state, d_conv, dt rank, projection and conv biases
SSM_KEYS = {"mamba": ("expand", "state_size", "conv_kernel", "time_step_rank", "use_bias", "use_conv_bias"),
            "jamba": ("mamba_expand", "mamba_d_state", "mamba_d_conv", "mamba_dt_rank", "mamba_proj_bias",
                      "mamba_conv_bias")}


def _ssm(c: Config, w: Writer, keys: tuple[str, ...], norms: bool) -> str:
    """A Mamba layer's dims (its dt rank "auto": ceil(hidden / 16)) and its layer line."""
    expand, state, conv, rank, bias, conv_bias = keys
    w.dim("d_inner", f"{c.int(expand, 2)} * d_model", f"{expand} {c.int(expand, 2)} x hidden_size")
    w.dim("d_state", c.int(state, 16), state)
    w.dim("d_conv", c.int(conv, 4), conv)
    auto = c.get(rank, "auto") == "auto"
    w.dim("dt_rank", "(d_model + 15) // 16" if auto else c.int(rank),
          f"{rank} auto: ceil(hidden_size / 16)" if auto else rank)
    return "mamba: " + _flow({"dim": "d_model", "inner": "d_inner", "state": "d_state", "kernel": "d_conv",
                              "dt_rank": "dt_rank", "bias": c.flag(bias, False), "conv_bias": c.flag(conv_bias, True),
                              **({"norms": True} if norms else {})})


def _mamba(c: Config, w: Writer) -> None:
    """Mamba: a stack of RMSNorm + selective state-space layers, no attention and no positions,
    the head tied to the table."""
    hidden = c.int("hidden_size")
    w.dim("d_model", hidden, "hidden_size")
    w.dim("n_layers", c.int("num_hidden_layers"), "num_hidden_layers")
    expand = c.int("expand", 2)
    inner = c.get("intermediate_size")
    if inner is not None and c.int("intermediate_size") != expand * hidden:
        raise c.error("intermediate_size", f"{inner} disagrees with expand x hidden_size = {expand * hidden}")
    for key in ("residual_in_fp32", "use_mambapy", "use_associative_scan", "rescale_prenorm_residual",
                "time_step_scale", "time_step_min", "time_step_max", "time_step_init_scheme", "time_step_floor"):
        c.get(key)  # numerics, initialisation and which torch path runs the same scan: no count changes
    # mamba_ssm's own names and switches, which the published -hf files carry beside transformers' fields
    # (d_model, n_layer, d_inner, its RMSNorm and fused-norm switches, vocabulary padding, ssm_cfg): the
    # transformers model reads none of them
    c.unused.update({"d_model", "n_layer", "d_inner", "rms_norm", "fused_add_norm", "pad_vocab_size_multiple",
                     "ssm_cfg"})
    _ssm_stack(c, w, _ssm(c, w, SSM_KEYS["mamba"], norms=False), "Mamba", tied=True)


def _ssm_stack(c: Config, w: Writer, mixer: str, model: str, tied: bool) -> None:
    """The rest of a model of state-space layers alone (Mamba, Mamba-2): its vocabulary and pass,
    then the table, RMSNorm + `mixer` per layer, a final RMSNorm and the head (tied by default
    or not, as `tied`); silu its only activation."""
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("seq_len", 2048, f"a 2048-token pass ({model} has no position table that bounds it)")
    w.dim("batch", 1, "sequences per pass")
    c.expect("hidden_act", ("silu",), "silu")
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.block("repeat: n_layers", ("rmsnorm: {dim: d_model}", mixer))
    w.layer("rmsnorm: {dim: d_model}")
    _decoder_head(c, w, c.flag("tie_word_embeddings", tied))


# where a family's config keeps its Mamba-2 layers' fields (with transformers' defaults), and the
# dims they become: Mamba-2's own, and the hybrids' (Bamba, Granite 4.0), whose attention has heads too
SSD_FIELDS = {
    "mamba2": dict(expand="expand", heads=("num_heads", 128), head=("head_dim", 64), groups=("n_groups", 8),
                   state=("state_size", 128), conv="conv_kernel", chunk="chunk_size", bias="use_bias",
                   conv_bias="use_conv_bias", dims=("d_head", "n_heads")),
    "hybrid": dict(expand="mamba_expand", heads=("mamba_n_heads", 128), head=("mamba_d_head", "auto"),
                   groups=("mamba_n_groups", 1), state=("mamba_d_state", 256), conv="mamba_d_conv",
                   chunk="mamba_chunk_size", bias="mamba_proj_bias", conv_bias="mamba_conv_bias",
                   dims=("d_mamba_head", "n_mamba_heads")),
}


def _ssd(c: Config, w: Writer, family: str) -> str:
    """A Mamba-2 layer's dims (its head dim "auto": expand x hidden / heads) and its layer line."""
    f = SSD_FIELDS[family]
    (heads_key, heads_default), (head_key, head_default) = f["heads"], f["head"]
    hidden, expand, heads = c.int("hidden_size"), c.int(f["expand"], 2), c.int(heads_key, heads_default)
    auto = c.get(head_key, head_default) == "auto"
    head = expand * hidden // heads if auto else c.int(head_key, head_default)
    if heads * head != expand * hidden:
        raise c.error(heads_key, f"{heads} heads of {head_key} {head} disagree with {f['expand']} x hidden_size = "
                      f"{expand * hidden}")
    head_dim, n_heads = f["dims"]
    w.dim("d_inner", f"{expand} * d_model", f"{f['expand']} {expand} x hidden_size")
    w.dim(head_dim, head, head_key + (f" auto: {f['expand']} x hidden_size / {heads_key}" * auto))
    w.dim(n_heads, f"d_inner / {head_dim}", f"{heads_key} {heads}")
    for name, (key, default) in (("n_groups", f["groups"]), ("d_state", f["state"]), ("d_conv", (f["conv"], 4)),
                                 ("chunk", (f["chunk"], 256))):
        w.dim(name, c.int(key, default), key)
    c.get("time_step_limit")  # dt's clamp: no count changes
    return "mamba2: " + _flow({"dim": "d_model", "inner": "d_inner", "heads": n_heads, "state": "d_state",
                               "groups": "n_groups", "kernel": "d_conv", "chunk": "chunk",
                               "bias": c.flag(f["bias"], False), "conv_bias": c.flag(f["conv_bias"], True)})


def _mamba2(c: Config, w: Writer) -> None:
    """Mamba-2: a stack of RMSNorm + SSD layers (heads of head_dim channels, B and C per group),
    no attention and no positions."""
    w.dim("d_model", c.int("hidden_size"), "hidden_size")
    w.dim("n_layers", c.int("num_hidden_layers"), "num_hidden_layers")
    for key in ("residual_in_fp32", "rescale_prenorm_residual", "time_step_rank", "time_step_min", "time_step_max",
                "time_step_floor", "layer_norm_epsilon"):
        c.get(key)  # numerics and initialisation (time_step_rank: stored, never used): no count changes
    _ssm_stack(c, w, _ssd(c, w, "mamba2"), "Mamba-2", tied=False)


def _hybrid_layers(w: Writer, attention_at: list[bool], mixer: str, attention: str, feed: str) -> None:
    """Pre-norm layers of a Mamba-2 mixer or attention each, then `feed`: a repeat per run of like layers."""
    norm = "rmsnorm: {dim: d_model}"
    _runs(w, attention_at, lambda a: (norm, attention if a else mixer, norm, feed),
          lambda a: "attention" if a else "Mamba-2")
    w.layer(norm)


def _hybrid_trunk(c: Config, w: Writer) -> tuple[str, int, str]:
    """A hybrid's width, attention heads, vocabulary and pass; its attention's line, and the head
    dim (head_dim when the config gives one, as both families' attention reads it, else
    hidden_size / num_attention_heads) as a number and as the spec writes it."""
    w.dim("d_model", c.int("hidden_size"), "hidden_size")
    heads = c.int("num_attention_heads")
    w.dim("n_heads", heads, "num_attention_heads")
    w.dim("n_kv_heads", c.int("num_key_value_heads", heads), "num_key_value_heads")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    given = c.get("head_dim") is not None
    if given:
        w.dim("d_head", c.int("head_dim"), "head_dim")
    attention = "attention: " + _flow({"dim": "d_model", "heads": "n_heads", "kv_heads": "n_kv_heads",
                                       **({"head_dim": "d_head"} if given else {}), "causal": True,
                                       "bias": c.flag("attention_bias", False)})
    if given:
        return attention, c.int("head_dim"), "d_head"
    return attention, c.int("hidden_size") // heads, "d_model / n_heads"


def _bamba(c: Config, w: Writer) -> None:
    """Bamba: Llama's layers (RMSNorms, grouped-query attention with rotary on half of each head,
    a gated MLP), most of them with a Mamba-2 mixer in attention's place; the full-attention
    layers are attn_layer_indices. Written as runs of like layers, each a repeat."""
    layers = c.int("num_hidden_layers")
    attn = _layer_indices(c, "attn_layer_indices", layers) if c.get("attn_layer_indices") else set()
    attention, head_dim, _ = _hybrid_trunk(c, w)
    fraction = _rotary_fraction(c, "partial_rotary_factor", 0.5)
    w.dim("d_rot", int(head_dim * fraction), f"partial_rotary_factor {fraction} x head dim {head_dim}, rounded down")
    w.dim("d_ff", c.int("intermediate_size"), "intermediate_size")
    mixer = _ssd(c, w, "hybrid")
    for key in ("z_loss_coefficient", "num_logits_to_keep"):
        c.get(key)  # a training loss term, how many logits generation keeps: no count changes
    mlp = _flow({"dim": "d_model", "hidden": "d_ff", "activation": _act(c), "gated": True,
                 "bias": c.flag("mlp_bias", False)})
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("rotary: {dim: d_rot}")
    _hybrid_layers(w, [i in attn for i in range(layers)], mixer, attention, f"mlp: {mlp}")
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))


# layer_types' names for a Granite 4.0 layer's mixer (transformers 5's, then the first files'):
# True for attention
GRANITE_MIXERS = {"linear_attention": False, "mamba": False, "full_attention": True, "attention": True}


def _granitemoehybrid(c: Config, w: Writer) -> None:
    """Granite 4.0 (GraniteMoeHybrid): Bamba's layout with layer_types naming each layer's mixer,
    rotary only when position_embedding_type is rope, and after each mixer a MoE plus a shared
    MLP (or the shared MLP alone, when num_local_experts is 0); Granite's multipliers noted."""
    layers = c.int("num_hidden_layers")
    key = _alias(c, "layer_types", "layers_block_type")
    types = c.get(key) or ["mamba"] * layers
    if not isinstance(types, list) or len(types) != layers or any(t not in GRANITE_MIXERS for t in types):
        raise c.error(key, f"expected {layers} layer types, each one of {', '.join(GRANITE_MIXERS)}; got {types!r}")
    attention, _, head = _hybrid_trunk(c, w)
    experts = c.int("num_local_experts", 8) if c.get("num_local_experts") != 0 else 0
    act = _act(c)
    w.dim("d_shared", c.int("shared_intermediate_size", 1024), "shared_intermediate_size (the shared MLP's)")
    if experts:
        w.dim("d_ff", c.int("intermediate_size"), "intermediate_size (each expert's)")
        w.dim("n_experts", experts, "num_local_experts")
        w.dim("top_k", c.int("num_experts_per_tok", 2), "num_experts_per_tok")
        feed = "moe: " + _flow({"dim": "d_model", "hidden": "d_ff", "experts": "n_experts", "top_k": "top_k",
                                "activation": act, "gated": True, "shared_experts": 1, "shared_hidden": "d_shared"})
    else:
        c.get("intermediate_size"), c.get("num_experts_per_tok")  # read by the experts, which there are none of
        feed = "mlp: " + _flow({"dim": "d_model", "hidden": "d_shared", "activation": act, "gated": True})
    mixer = _ssd(c, w, "hybrid")
    rope = c.expect("position_embedding_type", (None, "rope", "nope"), None) == "rope"
    for key in ("output_router_logits", "router_aux_loss_coef"):
        c.get(key)  # the router's training loss: no count changes
    c.unused.add("normalization_function")  # IBM's own code's switch, in Granite 4.0's files; transformers reads none
    w.note(_granite_note(c))
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    if rope:
        w.layer(f"rotary: {{dim: {head}}}")
    _hybrid_layers(w, [GRANITE_MIXERS[t] for t in types], mixer, attention, feed)
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))


def _jamba(c: Config, w: Writer) -> None:
    """Jamba: Mamba layers (with RMSNorms on dt, B and C) and an attention layer every
    attn_layer_period, each followed by an MLP or, every expert_layer_period, a MoE; no
    positions. Written as repeats of the pattern's period."""
    hidden, layers = c.int("hidden_size"), c.int("num_hidden_layers")
    attn_period, attn_offset = c.int("attn_layer_period", 8), c.get("attn_layer_offset", 4)
    expert_period, expert_offset = c.int("expert_layer_period", 2), c.get("expert_layer_offset", 1)
    for key, value, period in (("attn_layer_offset", attn_offset, attn_period),
                               ("expert_layer_offset", expert_offset, expert_period)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < period:
            raise c.error(key, f"expected an integer from 0 to {period - 1}, got {value!r}")
    period = math.lcm(attn_period, expert_period)
    if layers % period:
        raise c.error("num_hidden_layers", f"{layers} layers are not whole periods of the layer pattern ({period}: "
                      "attn_layer_period and expert_layer_period); the importer writes whole periods")
    w.dim("d_model", hidden, "hidden_size")
    w.dim("n_layers", layers, "num_hidden_layers")
    heads = c.int("num_attention_heads")
    w.dim("n_heads", heads, "num_attention_heads")
    w.dim("n_kv_heads", c.int("num_key_value_heads", heads), "num_key_value_heads")
    w.dim("d_ff", c.int("intermediate_size"), "intermediate_size (the MLP's and each expert's)")
    experts = c.int("num_experts", 16)
    if experts > 1:
        w.dim("n_experts", experts, "num_experts")
        w.dim("top_k", c.int("num_experts_per_tok", 2), "num_experts_per_tok")
    else:
        c.get("num_experts_per_tok")
    mamba = _ssm(c, w, SSM_KEYS["jamba"], norms=True)
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    act = _act(c)
    if act != "silu":
        raise c.error("hidden_act", f"{c.get('hidden_act')!r}: Jamba's Mamba layers are written with silu")
    for key in ("use_mamba_kernels", "use_mambapy", "use_associative_scan"):
        c.get(key)  # which implementation runs the same scan
    # AI21's own code's fields, in its files: transformers reads none (it has no position table, always norms
    # dt, B and C, and has no sliding window)
    c.unused.update({"n_ctx", "mamba_inner_layernorms", "sliding_window"})
    tied = c.flag("tie_word_embeddings", False)
    norm = "rmsnorm: {dim: d_model}"
    attention = "attention: {dim: d_model, heads: n_heads, kv_heads: n_kv_heads, causal: true}"
    mlp = f"mlp: {{dim: d_model, hidden: d_ff, activation: {act}, gated: true}}"
    moe = f"moe: {{dim: d_model, hidden: d_ff, experts: n_experts, top_k: top_k, activation: {act}, gated: true}}"
    group = []
    for i in range(period):
        group += [norm, attention if i % attn_period == attn_offset else mamba, norm,
                  moe if experts > 1 and i % expert_period == expert_offset else mlp]
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.block(f"repeat: n_layers / {period}   # {period} layers: attention at {attn_offset} of every {attn_period}, "
            f"experts at {expert_offset} of every {expert_period}", group)
    w.layer(norm)
    _decoder_head(c, w, tied)


# Nemotron-H's block kinds: hybrid_override_pattern's characters, and layers_block_type's names (transformers 5's
# and the first files')
NEMOTRON_PATTERN = {"M": "mamba", "*": "attention", "-": "mlp", "E": "moe"}
NEMOTRON_BLOCKS = {"linear_attention": "mamba", "mamba": "mamba", "full_attention": "attention",
                   "attention": "attention", "mlp": "mlp", "moe": "moe"}


def _nemotron_blocks(c: Config) -> list[str]:
    """Each block's kind, from layers_block_type (or layer_types) or hybrid_override_pattern; a count that
    contradicts num_hidden_layers is refused (transformers warns and uses the list)."""
    key = _alias(c, "layers_block_type", "layer_types")
    given = c.get(key)
    if given is None:
        key, pattern = "hybrid_override_pattern", c.get("hybrid_override_pattern")
        if not isinstance(pattern, str) or not pattern or any(ch not in NEMOTRON_PATTERN for ch in pattern):
            raise c.error(key, f"expected a string of {', '.join(NEMOTRON_PATTERN)} (one a block), got {pattern!r}")
        blocks = [NEMOTRON_PATTERN[ch] for ch in pattern]
    else:
        if not isinstance(given, list) or not given or any(t not in NEMOTRON_BLOCKS for t in given):
            raise c.error(key, f"expected a list of block types, each one of {', '.join(NEMOTRON_BLOCKS)}; "
                          f"got {given!r}")
        blocks = [NEMOTRON_BLOCKS[t] for t in given]
    layers = c.get("num_hidden_layers")
    if layers is not None and layers != len(blocks):
        raise c.error("num_hidden_layers", f"{layers} disagrees with the {len(blocks)} blocks {key} lists")
    return blocks


def _nemotron_h(c: Config, w: Writer) -> None:
    """Nemotron-H: a stack of blocks, each an RMSNorm and one mixer added back to the stream — a Mamba-2
    layer (heads x head_dim channels, which `expand` does not size), grouped-query attention without
    positions, or an ungated MLP of squared ReLUs — as layers_block_type or hybrid_override_pattern
    lists them, each run of like blocks a repeat."""
    blocks = _nemotron_blocks(c)
    w.dim("d_model", c.int("hidden_size"), "hidden_size")
    w.dim("n_layers", len(blocks), "blocks listed")
    heads = c.int("num_attention_heads")
    w.dim("n_heads", heads, "num_attention_heads")
    w.dim("n_kv_heads", c.int("num_key_value_heads", heads), "num_key_value_heads")
    w.dim("d_head", c.int("head_dim", 128), "head_dim")
    w.dim("d_ff", c.int("intermediate_size"), "intermediate_size")
    w.dim("n_mamba_heads", c.int("mamba_num_heads", 128), "mamba_num_heads")
    w.dim("d_mamba_head", c.int("mamba_head_dim", 64), "mamba_head_dim")
    w.dim("d_inner", "n_mamba_heads * d_mamba_head", "mamba_num_heads x mamba_head_dim")
    for name, keys, default in (("n_groups", ("n_groups", "mamba_n_groups"), 8), ("d_state", ("ssm_state_size",), 128),
                                ("d_conv", ("conv_kernel", "mamba_d_conv"), 4),
                                ("chunk", ("chunk_size", "mamba_chunk_size"), 128)):
        key = _alias(c, *keys) if len(keys) > 1 else keys[0]
        w.dim(name, c.int(key, default), key)
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    c.expect("mamba_hidden_act", ("silu",), "silu")
    act = _act(c, "mlp_hidden_act", "relu2")
    if "moe" in blocks:  # routed experts of ungated squared-ReLU MLPs (at a latent width, if given), one shared MLP
        _dims(c, w, [("n_experts", "n_routed_experts", None, 8), ("top_k", "num_experts_per_tok", None, 2),  # the
                     ("d_expert", "moe_intermediate_size", None, 7688),  # config class's values where a file has none
                     ("d_shared", "moe_shared_expert_intermediate_size", None, 7688)])
        if c.get("moe_latent_size") is not None:
            w.dim("d_latent", c.int("moe_latent_size"), "moe_latent_size: the experts' width")
        if c.flag("mlp_bias", False):
            raise c.error("mlp_bias", "true with MoE blocks is not written by the importer (transformers' routed "
                                      "experts have no bias, its shared MLP and latent projections do)")
    for key in ("expand", "mamba_expand", "residual_in_fp32", "rescale_prenorm_residual", "time_step_min",
                "time_step_max", "time_step_floor", "time_step_limit", "use_mamba_kernels", "mamba_ssm_cache_dtype",
                "num_logits_to_keep", "layer_norm_epsilon", "n_routed_experts", "n_shared_experts",
                "moe_intermediate_size", "moe_shared_expert_intermediate_size", "num_experts_per_tok",
                "routed_scaling_factor", "n_group", "topk_group", "norm_topk_prob", "moe_shared_expert_overlap",
                "num_nextn_predict_layers", "mtp_layers_block_type", "moe_latent_size", "output_router_logits",
                "partial_rotary_factor"):
        # sizing by heads, numerics, kernels; the experts' sizes where no block is a MoE, the routing's groups and
        # weights (n_shared_experts: transformers builds one shared MLP of its intermediate size whatever it says);
        # the multi-token-prediction layers the checkpoint ships and transformers does not build; a rotary share
        # its attention, without positions, never reads
        c.get(key)
    # NVIDIA's own code's names in the files: transformers reads head_dim (not attention_head_dim), use_bias for
    # the Mamba projections (not mamba_proj_bias), mlp_hidden_act (not hidden_act); its attention has no window
    c.unused.update({"attention_head_dim", "mamba_proj_bias", "hidden_act", "sliding_window"})
    bias = c.flag("use_bias", False)
    mixers = {
        "mamba": "mamba2: " + _flow({"dim": "d_model", "inner": "d_inner", "heads": "n_mamba_heads", "state": "d_state",
                                     "groups": "n_groups", "kernel": "d_conv", "chunk": "chunk", "bias": bias,
                                     "conv_bias": c.flag(_alias(c, "use_conv_bias", "mamba_conv_bias"), True)}),
        "attention": "attention: " + _flow({"dim": "d_model", "heads": "n_heads", "kv_heads": "n_kv_heads",
                                            "head_dim": "d_head", "causal": True,
                                            "bias": c.flag("attention_bias", False)}),
        "mlp": "mlp: " + _flow({"dim": "d_model", "hidden": "d_ff", "activation": act, "gated": False,
                                "bias": c.flag("mlp_bias", False)}),
        "moe": "moe: " + _flow({"dim": "d_model", "hidden": "d_expert", "experts": "n_experts", "top_k": "top_k",
                                "activation": act, "gated": False, "shared_experts": 1, "shared_hidden": "d_shared",
                                **({"latent": "d_latent"} if c.get("moe_latent_size") is not None else {})}),
    }
    norm = "rmsnorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    _runs(w, blocks, lambda kind: (norm, mixers[kind]), lambda kind: {"mamba": "Mamba-2", "moe": "MoE"}.get(kind, kind),
          "n_layers")
    w.layer(norm)
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))


# Falcon-H1's µP multipliers: each one elementwise multiply of a layer's input or output (ssm_multipliers: a
# constant vector over the Mamba-2 in_proj's output), so no count under pytorch
FALCON_H1_SCALES = ("embedding_multiplier", "lm_head_multiplier", "mlp_multipliers", "key_multiplier",
                    "attention_in_multiplier", "attention_out_multiplier", "ssm_in_multiplier", "ssm_out_multiplier",
                    "ssm_multipliers")


def _falcon_h1(c: Config, w: Writer) -> None:
    """Falcon-H1: every layer a Mamba-2 mixer and grouped-query attention side by side on one RMSNorm, their
    outputs added to the stream, then a gated MLP on its own norm. The mixer's width is mamba_d_ssm (its
    config class's 1024 when the file leaves it out; expand x hidden_size when it is null), its gated norm
    optional (mamba_rms_norm), out_proj's bias projectors_bias apart from in_proj's mamba_proj_bias."""
    hidden, heads = c.int("hidden_size"), c.int("num_attention_heads")
    w.dim("d_model", hidden, "hidden_size")
    w.dim("n_layers", c.int("num_hidden_layers"), "num_hidden_layers")
    w.dim("n_heads", heads, "num_attention_heads")
    # FalconH1Config's 8 where a file leaves it out; null: one a head
    null = "num_key_value_heads" in c.data and c.get("num_key_value_heads") is None
    w.dim("n_kv_heads", heads if null else c.int("num_key_value_heads", 8), "num_key_value_heads")
    w.dim("d_head", c.int("head_dim", hidden // heads), "head_dim" if c.get("head_dim") else "hidden_size / heads")
    w.dim("d_ff", c.int("intermediate_size"), "intermediate_size")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    expand = c.int("mamba_expand", 2)
    inner = expand * hidden if "mamba_d_ssm" in c.data and c.data["mamba_d_ssm"] is None else c.int("mamba_d_ssm", 1024)
    n = c.int("mamba_n_heads", 128)
    auto = c.get("mamba_d_head", "auto") == "auto"
    head = inner // n if auto else c.int("mamba_d_head")
    if n * head != inner:
        raise c.error("mamba_n_heads", f"{n} heads of mamba_d_head {head} disagree with the mixer's width {inner}")
    w.dim("d_inner", inner, "mamba_d_ssm" if c.get("mamba_d_ssm") else f"mamba_expand {expand} x hidden_size")
    w.dim("n_mamba_heads", n, "mamba_n_heads")
    for name, key, default in (("n_groups", "mamba_n_groups", 1), ("d_state", "mamba_d_state", 256),
                               ("d_conv", "mamba_d_conv", 4), ("chunk", "mamba_chunk_size", 256)):
        w.dim(name, c.int(key, default), key)
    c.expect("hidden_act", ("silu",), "silu")
    norm = c.flag("mamba_rms_norm", False)
    if norm and c.flag("mamba_norm_before_gate", True):
        w.note("the Mamba-2 mixer's RMSNorm precedes its gate (mamba_norm_before_gate): the same counts; bytes "
               "saved for backward as the reference build keeps them, the gate first")
    c.get("mamba_norm_before_gate")
    w.note(f"Falcon-H1's µP multipliers ({', '.join(k for k in FALCON_H1_SCALES if c.get(k) is not None)}) are "
           "not written: each is one elementwise multiply (no count under pytorch; a few per token under `full`)")
    for key in ("time_step_limit", "num_logits_to_keep", "rms_norm_eps"):
        c.get(key)  # dt's clamp, how many logits generation keeps, numerics: no count changes
    # fields of TII's files that transformers' model never reads (every layer has both mixers and the MLP)
    c.unused.update({"attn_layer_indices", "mamba_use_mlp"})
    mixer = "mamba2: " + _flow({"dim": "d_model", "inner": "d_inner", "heads": "n_mamba_heads", "state": "d_state",
                                "groups": "n_groups", "kernel": "d_conv", "chunk": "chunk",
                                "bias": c.flag("mamba_proj_bias", False), "out_bias": c.flag("projectors_bias", False),
                                "conv_bias": c.flag("mamba_conv_bias", True), "norm": norm, "residual": False})
    attention = "attention: " + _flow({"dim": "d_model", "heads": "n_heads", "kv_heads": "n_kv_heads",
                                       "head_dim": "d_head", "causal": True, "bias": c.flag("attention_bias", False),
                                       "residual": False})
    mlp = "mlp: " + _flow({"dim": "d_model", "hidden": "d_ff", "activation": "silu", "gated": True,
                           "bias": c.flag("mlp_bias", False)})
    rmsnorm = "rmsnorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("rotary: {dim: d_head}")
    _parallel_block(w, rmsnorm, mixer, attention, separate=False, after=(rmsnorm, mlp))
    w.layer(rmsnorm)
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))


def _rwkv(c: Config, w: Writer) -> None:
    """RWKV-4: a LayerNorm on the embeddings, then layers of time mixing and channel mixing (`rwkv_time_mix`,
    `rwkv_channel_mix`), each on its own LayerNorm and residual; no attention and no positions."""
    hidden = c.int("hidden_size")
    w.dim("d_model", hidden, "hidden_size")
    w.dim("n_layers", c.int("num_hidden_layers"), "num_hidden_layers")
    width = c.get("attention_hidden_size")
    w.dim("d_attn", c.int("attention_hidden_size") if width is not None else "d_model",
          "attention_hidden_size" if width is not None else "attention_hidden_size unset: hidden_size")
    ff = c.get("intermediate_size")
    w.dim("d_ff", c.int("intermediate_size") if ff is not None else "4 * d_model",
          "intermediate_size" if ff is not None else "intermediate_size unset: 4 x hidden_size")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("seq_len", c.int("context_length", 1024), "context_length: one full-context pass")
    w.dim("batch", 1, "sequences per pass")
    if c.get("rescale_every", 6):
        w.note("at inference transformers halves the stream every rescale_every layers and divides two weights "
               "a layer to match (elementwise, not written: no count under pytorch)")
    c.get("layer_norm_epsilon")
    norm = "layernorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer(f"{norm}   # pre_ln, on the first layer's input")
    w.block("repeat: n_layers", (norm, "rwkv_time_mix: {dim: d_model, width: d_attn}", norm,
                                 "rwkv_channel_mix: {dim: d_model, hidden: d_ff}"))
    w.layer(norm)
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))


def _xlstm(c: Config, w: Writer) -> None:
    """xLSTM-7B (NX-AI): blocks of an RMSNorm, an mLSTM layer (`mlstm`) and its residual, an RMSNorm and a SwiGLU
    feed-forward (its width hidden_size x ffn_proj_factor rounded up to ffn_round_up_to_multiple_of) and its
    residual; a final norm (transformers builds it whatever add_out_norm says) and the head. Its soft caps
    (gates, logits) are one tanh each: no count under pytorch."""
    def one(key: str, alias: str, default: int) -> tuple[int, str]:
        # transformers fills each of a pair from the other when unset, but `key` has a default of its own, and
        # its model reads the two in different places: a file that gives only `alias` away from that default
        # builds a model that cannot run
        given, other = c.get(key), c.get(alias)
        if given is not None and other is not None and c.int(key) != c.int(alias):
            raise c.error(alias, f"{other} differs from {key} {given}; transformers builds parts of the model from "
                                 "each")
        if given is None and other is not None and c.int(alias) != default:
            raise c.error(alias, f"{other} without {key}: transformers then takes {key}'s default {default} for "
                                 f"part of the model, which the rest does not fit; set {key}")
        return (c.int(key), key) if given is not None else (c.int(alias, default), alias)

    hidden, why = one("hidden_size", "embedding_dim", 4096)
    w.dim("d_model", hidden, why)
    blocks, why = one("num_hidden_layers", "num_blocks", 32)
    w.dim("n_layers", blocks, why)
    w.dim("n_heads", c.int("num_heads", 8), "num_heads")
    for name, key, default in (("d_qk", "qk_dim_factor", 0.5), ("d_v", "v_dim_factor", 1.0)):
        factor = c.positive(key, default)
        if int(hidden * factor) <= 0:
            raise c.error(key, f"expected a positive number, got {factor!r}")  # a width rounded down to none
        w.dim(name, int(hidden * factor), f"{key} {factor} x hidden_size, rounded down (xLSTMLayer's own)")
    factor, step = c.positive("ffn_proj_factor", 2.667), c.int("ffn_round_up_to_multiple_of", 64)
    w.dim("d_ff", int((hidden * factor + step - 1) // step * step),
          f"ffn_proj_factor {factor} x hidden_size, rounded up to a multiple of {step}")
    w.dim("chunk", c.int("chunk_size", 64), "chunk_size: the chunkwise form's")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    c.expect("weight_mode", ("single",), "single")  # fused: the same counts, other saved tensors (not written)
    if c.flag("use_bias", False):
        raise c.error("use_bias", "biases on every projection and norm of xLSTM's blocks are not written by the "
                                  "importer")
    c.get("gate_soft_cap")
    if "gate_soft_cap" in c.data and c.data["gate_soft_cap"] is None:  # null is no cap, not the default
        raise c.error("gate_soft_cap", "gates without their soft cap keep no tanh for backward; the mlstm layer "
                                       "writes the capped gates (any cap value counts the same)")
    c.expect("mode", ("inference", "train"), "inference")  # train runs chunks alone: the same, where it runs
    w.note("xLSTM's kernels (chunkwise_kernel, sequence_kernel, step_kernel) are the xlstm package's where it is "
           "installed; transformers' own native ones count here, which run the same products by chunk and by step")
    for key in ("chunkwise_kernel", "sequence_kernel", "step_kernel", "autocast_kernel_dtype", "inference_state_dtype",
                "return_last_states", "add_out_norm", "norm_reduction_force_float32", "norm_eps", "eps",
                "output_logit_soft_cap", "max_inference_chunksize"):
        c.get(key)  # numerics, caps and kernels: no count changes
    norm = "rmsnorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.block("repeat: n_layers", (
        norm, "mlstm: " + _flow({"dim": "d_model", "heads": "n_heads", "qk_dim": "d_qk", "v_dim": "d_v",
                                  "chunk": "chunk"}),
        norm, "mlp: " + _flow({"dim": "d_model", "hidden": "d_ff", "activation": "silu", "gated": True})))
    w.layer(norm)
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))


ZAMBA2_TYPES = {"linear_attention": "mamba", "mamba": "mamba", "hybrid": "hybrid"}  # transformers' and legacy names


def _zamba2(c: Config, w: Writer) -> None:
    """Zamba2 (Glorioso et al. 2024): Mamba-2 layers, and at the hybrid layers one of num_mem_blocks shared
    transformer blocks in turn (`tied`), reading [h, e] (the stream beside the embedding, 2 x d_model wide) through
    an RMSNorm, attention with no residual whose o_proj writes d_model, an RMSNorm and a gated MLP with no
    residual, each use with its own low-rank adapters (the MLP's always, q/k/v's with
    use_shared_attention_adapter) and its own d_model x d_model linear, whose output the layer's Mamba-2 input
    adds (written as a residual around block and linear: the same counts). Sizes transformers derives from
    others (attention_head_dim, mamba_headdim, kv_channels, …) are derived here too, as it does."""
    hidden = c.int("hidden_size")
    given = c.get("layers_block_type")
    if given is None:  # transformers' default: the 2.7B's pattern, whatever num_hidden_layers says
        given = (["linear_attention"] + (["linear_attention"] * 5 + ["hybrid"]) * 7 + ["linear_attention"] * 4
                 + ["hybrid"] + ["linear_attention"] * 3 + ["hybrid"] + ["linear_attention"] * 2)
    if not isinstance(given, list) or not given or any(t not in ZAMBA2_TYPES for t in given):
        raise c.error("layers_block_type", f"expected a list of layer types, each one of {', '.join(ZAMBA2_TYPES)}; "
                                           f"got {given!r}")
    types = [ZAMBA2_TYPES[t] for t in given]
    if c.int("num_hidden_layers", len(types)) != len(types):
        raise c.error("num_hidden_layers", f"{c.get('num_hidden_layers')} disagrees with layers_block_type's "
                                           f"{len(types)} layers, which transformers builds")
    heads, blocks = c.int("num_attention_heads", 32), c.int("num_mem_blocks", 1)
    kv = c.int("num_key_value_heads", heads) if c.get("num_key_value_heads") is not None else heads
    expand, n_mamba = c.int("mamba_expand", 2), c.int("n_mamba_heads", 8)
    if (expand * hidden) % n_mamba:
        raise c.error("n_mamba_heads", f"{n_mamba} heads do not divide mamba_expand x hidden_size = {expand * hidden}")
    if (2 * hidden) % heads:
        raise c.error("num_attention_heads", f"{heads} heads do not divide the shared attention's width, "
                                             f"2 x hidden_size = {2 * hidden}")
    adapters = c.flag("use_shared_attention_adapter", False)
    if adapters and kv != heads:
        raise c.error("num_key_value_heads", f"{kv} key/value heads: the k and v adapters write 2 x hidden_size, so "
                                             f"transformers' model runs only with as many as the {heads} heads")
    w.dim("d_model", hidden, "hidden_size")
    w.dim("n_layers", len(types), "num_hidden_layers: layers_block_type's layers")
    w.dim("n_heads", heads, "num_attention_heads (the shared attention's)")
    w.dim("n_kv_heads", kv, "num_key_value_heads")
    w.dim("d_head", "2 * d_model / n_heads", "attention_head_dim: 2 x hidden_size / heads")
    w.dim("d_ff", c.int("intermediate_size", 4 * hidden) if c.get("intermediate_size") else "4 * d_model",
          "intermediate_size" if c.get("intermediate_size") else "intermediate_size unset: 4 x hidden_size")
    w.dim("adapter_rank", c.int("adapter_rank", 128), "adapter_rank")
    w.dim("d_inner", f"{expand} * d_model", f"mamba_expand {expand} x hidden_size")
    w.dim("n_mamba_heads", n_mamba, "n_mamba_heads (mamba_headdim: d_inner / n_mamba_heads)")
    for name, key, default in (("n_groups", "mamba_ngroups", 1), ("d_state", "mamba_d_state", 64),
                               ("d_conv", "mamba_d_conv", 4), ("chunk", "chunk_size", 256)):
        w.dim(name, c.int(key, default), key)
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    long = c.flag("use_long_context", False)
    positions = 16384 if long else c.int("max_position_embeddings", 4096)
    w.dim("seq_len", positions, "use_long_context: 16,384 positions, one full-context pass" if long
          else "max_position_embeddings: one full-context pass")
    w.dim("batch", 1, "sequences per pass")
    rope = c.flag("use_mem_rope", False)
    act = _act(c, default="gelu")
    for key in ("attention_hidden_size", "attention_head_dim", "mamba_headdim", "kv_channels", "num_query_groups",
                "hybrid_layer_ids", "use_conv_bias"):
        c.unused.add(key)  # transformers derives them from the sizes above (or, the conv's bias, always has one)
    for key in ("time_step_min", "time_step_max", "time_step_floor", "use_mamba_kernels", "use_mem_eff_path",
                "num_logits_to_keep", "rms_norm_eps"):
        c.get(key)  # dt's clamp and initialisation, which kernels run, numerics: no count changes
    bias = c.flag("add_bias_linear", False)
    mixer = "mamba2: " + _flow({"dim": "d_model", "inner": "d_inner", "heads": "n_mamba_heads", "state": "d_state",
                                "groups": "n_groups", "kernel": "d_conv", "chunk": "chunk", "bias": bias,
                                "conv_bias": True})
    attention = "attention: " + _flow({"dim": "2 * d_model", "heads": "n_heads", "kv_heads": "n_kv_heads",
                                       "head_dim": "d_head", "causal": True, "out": "d_model",
                                       "residual": False, **({"adapter_rank": "adapter_rank"} if adapters else {})})
    mlp = "mlp: " + _flow({"dim": "d_model", "hidden": "d_ff", "activation": act, "gated": True, "bias": bias,
                           "residual": False, "adapter_rank": "adapter_rank"})
    norm = "rmsnorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    if rope:
        w.layer("rotary: {dim: d_head}")
    first, hybrids, runs = 0, 0, [(kind, len(list(run))) for kind, run in itertools.groupby(types)]
    for i, (kind, count) in enumerate(runs):
        if kind == "mamba" and i == len(runs) - 1:  # the last run: n_layers less the layers before it
            w.block(f"repeat: n_layers - {first}   # layers {first} on: Mamba-2", (norm, mixer))
        elif kind == "mamba":
            where = f"layer {first}" if count == 1 else f"layers {first} to {first + count - 1}"
            w.block(f"repeat: {count}   # {where}: Mamba-2", (norm, mixer))
        for j in range(count if kind == "hybrid" else 0):
            block = (hybrids + j) % blocks
            w.block(f"repeat: 1   # layer {first + j}: shared block {block} and its own linear, then Mamba-2", ())
            w.layers += ["      " + line for line in (
                "- residual:", f"    - tied: block_{block}", "      layers:",
                *(f"        - {x}" for x in ("concat_embedding: {dim: d_model}   # [h, e]",
                                             "rmsnorm: {dim: 2 * d_model}", attention, norm, mlp)),
                "    - linear: {dim: d_model, out: d_model}", f"- {norm}", f"- {mixer}")]
        hybrids += count if kind == "hybrid" else 0
        first += count
    w.layer(norm)
    _decoder_head(c, w, c.flag("tie_word_embeddings", True))
