"""Mixture-of-experts decoders whose configs are their own: DeepSeek-V2 and V3 (latent attention,
dense layers first, shared experts), DBRX (nested attention and expert settings) and LongCat-Flash
(two sublayers and a shortcut MoE with zero-computation experts a layer)."""

from __future__ import annotations

from .heads import _decoder_head
from .reader import Config, _act, _alias
from .writer import CLIPPED, Writer, _capped_seq_len, _dims, _flow


def _latent_attention(c: Config, w: Writer, defaults: dict | None = None) -> dict:
    """Multi-head latent attention's dims (every head its own keys, as MLA requires; a query LoRA where the
    config has one) and its layer's fields; `defaults`: the config class's sizes where a file leaves them
    out (LongCat-Flash's, whose query LoRA is always there)."""
    defaults = defaults or {}
    heads = c.int("num_attention_heads")
    c.expect("num_key_value_heads", (heads, None))
    _dims(c, w, [("kv_lora_rank", "kv_lora_rank", None, defaults.get("kv_lora_rank")),
                 ("qk_nope_dim", "qk_nope_head_dim", None, defaults.get("qk_nope_head_dim")),
                 ("qk_rope_dim", "qk_rope_head_dim", None, defaults.get("qk_rope_head_dim")),
                 ("v_head_dim", "v_head_dim", None, defaults.get("v_head_dim"))])
    c.get("qk_head_dim")  # derived in the config: nope + rope
    mla = {"dim": "d_model", "heads": "n_heads", "kv_lora_rank": "kv_lora_rank", "qk_nope_dim": "qk_nope_dim",
           "qk_rope_dim": "qk_rope_dim", "v_head_dim": "v_head_dim", "bias": c.flag("attention_bias", False),
           "causal": True}
    if c.get("q_lora_rank", defaults.get("q_lora_rank")) is not None:
        w.dim("q_lora_rank", c.int("q_lora_rank", defaults.get("q_lora_rank")), "q_lora_rank")
        mla["q_lora_rank"] = "q_lora_rank"
    return mla


def _deepseek(c: Config, w: Writer, family: str = "deepseek_v3") -> None:
    """DeepSeek-V2, V3 and V3.2: multi-head latent attention (V3.2's, and GLM-5's, with the sparse attention's
    lightning indexer), dense layers first, then MoE layers with shared experts (V2-Lite without a query LoRA)."""
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"),
                 ("n_dense", "first_k_dense_replace", "first_k_dense_replace: dense layers first")])
    w.dim("n_heads", c.int("num_attention_heads"), "num_attention_heads")
    mla = _latent_attention(c, w)
    c.get("head_dim")  # derived in the config: the rope part
    _dims(c, w, [("d_ff", "intermediate_size", "intermediate_size (dense layers)"),
                 ("d_expert", "moe_intermediate_size"), ("n_experts", "n_routed_experts"),
                 ("top_k", "num_experts_per_tok"),
                 ("n_shared", "n_shared_experts", "n_shared_experts: one MLP of n_shared x d_expert"),
                 ("vocab", "vocab_size")])
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    c.expect("moe_layer_freq", (1, None))
    c.expect("mlp_bias", (False, None))  # DeepSeek-V2's configs say so
    act = _act(c)
    if family in ("deepseek_v32", "glm_moe_dsa"):  # DeepSeek Sparse Attention: the indexer and the keys it keeps
        _dims(c, w, [("n_index_heads", "index_n_heads"), ("d_index", "index_head_dim"), ("index_topk", "index_topk")])
        mla |= {"index_heads": "n_index_heads", "index_dim": "d_index", "index_topk": "index_topk"}
        layers, dense = c.int("num_hidden_layers"), c.int("first_k_dense_replace")
        # what its config writes from the sizes; any other mix is refused (GLM-5's "shared" indexer layers, which
        # reuse the layer before's choice, are not written)
        for key, expected, said in (("layer_types", ["indexed_attention"] * layers, "for every layer"),
                                    ("indexer_types", ["full"] * layers, "for every layer (an indexer a layer)"),
                                    ("mlp_layer_types", ["dense"] * dense + ["sparse"] * (layers - dense),
                                     "for the first_k_dense_replace layers, then sparse")):
            if c.get(key, expected) != expected:
                raise c.error(key, f"expected {expected[0]!r} {said}, as the importer writes them")
    tied = c.flag("tie_word_embeddings", False)
    norm = "rmsnorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("rotary: {dim: qk_rope_dim}")
    for count, feed in (
        ("n_dense", f"mlp: {_flow({'dim': 'd_model', 'hidden': 'd_ff', 'activation': act, 'gated': True})}"),
        ("n_layers - n_dense", "moe: " + _flow({"dim": "d_model", "hidden": "d_expert", "experts": "n_experts",
                                                  "top_k": "top_k", "activation": act, "gated": True,
                                                  "shared_experts": 1, "shared_hidden": "n_shared * d_expert"})),
    ):
        w.block(f"repeat: {count}", (norm, f"mla: {_flow(mla)}", norm, feed))
    w.layer(norm)
    _decoder_head(c, w, tied)


def _dbrx(c: Config, w: Writer) -> None:
    """DBRX: fused qkv with grouped kv heads, bias-free LayerNorms, 16 experts (top-4) of gated
    SiLU MLPs; attention and expert settings in the nested attn_config and ffn_config."""
    attn, ffn = c.sub("attn_config"), c.sub("ffn_config")
    _dims(c, w, [("d_model", "d_model"), ("n_layers", "n_layers"), ("n_heads", "n_heads")])
    w.dim("n_kv_heads", attn.int("kv_n_heads", 1), "attn_config.kv_n_heads")
    c.get("num_key_value_heads")  # transformers' copy of kv_n_heads
    _dims(ffn, w, [("d_ff", "ffn_hidden_size", "ffn_config.ffn_hidden_size: each expert's", 3584),  # DbrxFFNConfig's
                   ("n_experts", "moe_num_experts", "ffn_config.moe_num_experts", 4),  # values where the file
                   ("top_k", "moe_top_k", "ffn_config.moe_top_k", 1)])  # leaves them out
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("seq_len", c.int("max_seq_len", 2048), "max_seq_len: one full-context pass")
    w.dim("batch", 1, "sequences per pass")
    ffn.expect("hidden_size", (c.int("d_model"), None))  # transformers copies d_model here
    function = ffn.sub("ffn_act_fn")
    act = _act(function, "name", "silu")
    for key in ("moe_jitter_eps", "moe_loss_weight", "moe_normalize_expert_weights"):  # training noise and losses;
        ffn.get(key)  # normalising the routing weights is elementwise
    if attn.get("clip_qkv") is not None:
        w.note(CLIPPED)
    tied = c.flag("tie_word_embeddings", False)
    norm = "layernorm: {dim: d_model, bias: false}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("rotary: {dim: d_model / n_heads}")
    w.block("repeat: n_layers", (norm, "attention: {dim: d_model, heads: n_heads, kv_heads: n_kv_heads, causal: true}",
                                 norm, f"moe: {{dim: d_model, hidden: d_ff, experts: n_experts, top_k: top_k, "
                                       f"activation: {act}, gated: true}}"))
    w.layer(norm)
    _decoder_head(c, w, tied)


def _longcat_flash(c: Config, w: Writer) -> None:
    """LongCat-Flash: num_layers layers of two sublayers each (latent attention with a query LoRA, then a
    SwiGLU MLP of ffn_hidden_size) and a shortcut MoE: n_routed_experts experts of expert_ffn_hidden_size
    beside zero_expert_num zero-computation experts, top moe_topk of both (components/moe.py's
    `zero_experts`: the top-k count is a bound). The MoE reads the first sublayer's normalised stream and
    is added after the second; written after the first MLP: the same parameters and FLOPs."""
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", _alias(c, "num_layers", "num_hidden_layers")),
                 ("n_heads", "num_attention_heads")])
    mla = _latent_attention(c, w, {"q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
                                   "qk_rope_head_dim": 64, "v_head_dim": 128})
    _dims(c, w, [("d_ff", _alias(c, "ffn_hidden_size", "intermediate_size"), "ffn_hidden_size (the dense MLPs)"),
                 ("d_expert", _alias(c, "expert_ffn_hidden_size", "moe_intermediate_size")),
                 ("n_experts", _alias(c, "n_routed_experts", "num_local_experts")),
                 ("n_zero", "zero_expert_num", "zero_expert_num: zero-computation experts", 256),
                 ("top_k", _alias(c, "moe_topk", "num_experts_per_tok")), ("vocab", "vocab_size")])
    rope = c.int("qk_rope_head_dim", 64)
    if c.get("head_dim", 64) != rope:  # transformers sizes the rotary's frequencies by head_dim
        raise c.error("head_dim", f"{c.get('head_dim', 64)!r} differs from qk_rope_head_dim {rope}, which the "
                                  "rotary rotates (transformers' model runs only with the two equal)")
    for key in ("routed_scaling_factor", "rms_norm_eps", "router_aux_loss_coef"):
        c.get(key)  # the routing weights' scale, numerics
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    w.note("its shortcut MoE reads the first sublayer's normalised stream and is added after the second; written "
           "after the first MLP (the same parameters and FLOPs; it keeps its input, a d_model row a token, which "
           "transformers shares with that MLP); the LoRA scales of its latent attention are not written (elementwise)")
    act = _act(c)
    mla = "mla: " + _flow(mla)
    mlp = "mlp: " + _flow({"dim": "d_model", "hidden": "d_ff", "activation": act, "gated": True})
    moe = "moe: " + _flow({"dim": "d_model", "hidden": "d_expert", "experts": "n_experts", "top_k": "top_k",
                           "zero_experts": "n_zero", "activation": act, "gated": True,
                           "router_bias": c.flag("router_bias", False)})
    norm = "rmsnorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("rotary: {dim: qk_rope_dim}")
    w.block("repeat: n_layers", (norm, mla, norm, mlp, moe, norm, mla, norm, mlp))
    w.layer(norm)
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))
