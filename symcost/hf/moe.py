"""Mixture-of-experts decoders whose configs are their own: DeepSeek-V2 and V3 (latent attention,
dense layers first, shared experts), DBRX (nested attention and expert settings) and LongCat-Flash
(two sublayers and a shortcut MoE with zero-computation experts a layer)."""

from __future__ import annotations

from fractions import Fraction

from .heads import _decoder_head
from .reader import Config, _act, _alias
from .writer import CLIPPED, Writer, _capped_seq_len, _dims, _flow, _runs, mtp_depth


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
        _topk_fits(c, 1, "tokens")
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
    w.nextn(c, "num_nextn_predict_layers", ("hnorm", "eh_proj", "enorm", "shared_head.norm"),
            [norm, f"mla: {_flow(mla)}", norm, feed])


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


# DeepSeek-V4's attention kinds, by layer_types' names and by the legacy compress_ratios
V4_KINDS = {"sliding_attention": "sliding", "compressed_sparse_attention": "csa", "heavily_compressed_attention": "hca"}
V4_RATIOS = {0: "sliding", 4: "csa", 128: "hca"}


def _deepseek_v4(c: Config, w: Writer) -> None:
    """DeepSeek-V4: `hc_mult` hyper-connected residual streams (`hyper_expand`, each sublayer a `residual` with
    `streams`, `hyper_head`), attention with one shared key/value head over a sliding window and, as
    `layer_types` (or the file's `compress_ratios`) say, compressed entries (HCA) or compressed entries chosen
    by a lightning indexer (CSA) (`compressed_attention`), and a MoE with a shared expert on every layer; the
    first layers route by a fixed token table (hash-MoE: which experts a token runs is data, not a count; the
    same parameters and FLOPs as top-k routing), and the routed experts' SwiGLU is clamped (elementwise). Its
    MTP modules (num_nextn_predict_layers), which transformers does not build, as DeepSeek's reference code
    (inference/model.py, MTPBlock) runs them: the next token's embedding normalised and projected (e_proj), each
    of the main model's streams normalised and projected (hnorm, h_proj: one set of weights), their sum through
    one more hyper-connected layer, its own hc_head and norm, then the model's head."""
    n = c.int("num_hidden_layers")
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads"),
                 ("head_dim", "head_dim")])
    c.expect("num_key_value_heads", (1, None))  # one key/value head, read as key and as value
    head_dim = c.int("head_dim")
    factor = c.get("partial_rotary_factor")
    rope = c.int("qk_rope_head_dim") if c.get("qk_rope_head_dim") is not None else int(head_dim * (factor or 64 / 512))
    w.dim("rope_dim", rope, "qk_rope_head_dim (partial_rotary_factor x head_dim)")
    _dims(c, w, [("q_lora_rank", "q_lora_rank"), ("window", "sliding_window"), ("o_groups", "o_groups"),
                 ("o_lora_rank", "o_lora_rank"), ("n_index_heads", "index_n_heads"), ("d_index", "index_head_dim"),
                 ("index_topk", "index_topk"), ("n_hc", "hc_mult", "hc_mult: residual streams"),
                 ("sinkhorn", "hc_sinkhorn_iters"), ("d_expert", "moe_intermediate_size"),
                 ("n_experts", "n_routed_experts"), ("top_k", "num_experts_per_tok"),
                 ("n_shared", "n_shared_experts", "n_shared_experts: one MLP of n_shared x d_expert"),
                 ("vocab", "vocab_size")])
    rates = dict(c.get("compress_rates") or {})
    for key, kind in (("compress_rate_csa", "compressed_sparse_attention"),
                      ("compress_rate_hca", "heavily_compressed_attention")):
        if c.get(key) is not None:
            rates[kind] = c.get(key)
    w.dim("csa_rate", int(rates.get("compressed_sparse_attention", 4)), "compress_rates: CSA's tokens an entry")
    w.dim("hca_rate", int(rates.get("heavily_compressed_attention", 128)), "compress_rates: HCA's tokens an entry")
    _topk_fits(c, int(rates.get("compressed_sparse_attention", 4)), "compressed entries")
    kinds = _v4_kinds(c, n)
    mlps = c.get("mlp_layer_types")
    if mlps is not None and (not isinstance(mlps, list) or len(mlps) != n or not set(mlps) <= {"hash_moe", "moe"}):
        raise c.error("mlp_layer_types", f"expected {n} layer types, each hash_moe or moe; got {mlps!r}")
    c.get("num_hash_layers")  # hash routing: the same counts as top-k routing
    _capped_seq_len(c, w)
    w.dim("batch", 1, "sequences per pass")
    for key in ("scoring_func", "norm_topk_prob", "routed_scaling_factor", "rope_theta", "compress_rope_theta",
                "hc_eps", "rms_norm_eps", "router_aux_loss_coef",
                "router_jitter_noise", "expert_dtype", "topk_method", "use_attn_sink"):
        c.get(key)  # routing and numerics
    c.expect("attention_bias", (False, None))
    c.expect("mlp_bias", (False, None))
    act = _act(c)
    # its experts (routed and shared) clamp gate and up at swiglu_limit (transformers' default 10), no + 1
    limit = str(Fraction(str(c.positive("swiglu_limit", 10.0))))
    w.note("the first layers route by a fixed token-to-expert table (hash-MoE): which experts run is data, the "
           "counts those of top-k routing")

    def layer(kind: str, pad: str = " " * 8) -> list[str]:  # pad: the residual's own lines, under its `- `
        attention = {"dim": "d_model", "heads": "n_heads", "head_dim": "head_dim", "rope_dim": "rope_dim",
                     "q_lora_rank": "q_lora_rank", "window": "window", "o_groups": "o_groups",
                     "o_lora_rank": "o_lora_rank", "residual": False}
        if kind == "hca":
            attention["compress"] = "hca_rate"
        if kind == "csa":
            attention |= {"compress": "csa_rate", "index_heads": "n_index_heads", "index_dim": "d_index",
                          "index_topk": "index_topk"}
        moe = {"dim": "d_model", "hidden": "d_expert", "experts": "n_experts", "top_k": "top_k", "activation": act,
               "gated": True, "shared_experts": 1, "shared_hidden": "n_shared * d_expert", "limit": limit,
               "shifted": False, "residual": False}
        return [f"residual:\n{pad}- rmsnorm: {{dim: d_model}}\n{pad}- {body}\n{pad}streams: n_hc\n"
                f"{pad}sinkhorn_iters: sinkhorn"
                for body in (f"compressed_attention: {_flow(attention)}", f"moe: {_flow(moe)}")]

    labels = {"sliding": "sliding window", "csa": "CSA", "hca": "HCA"}
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("hyper_expand: {streams: n_hc}")
    pair = lambda kind: isinstance(kind, tuple)  # CSA and HCA in turn
    _runs(w, _v4_units(kinds), lambda k: layer(k[0]) + layer(k[1]) if pair(k) else layer(k),
          lambda k: f"{labels[k[0]]} and {labels[k[1]]} in turn" if pair(k) else labels[k], "n_layers",
          size=lambda k: 2 if pair(k) else 1)
    w.layer("hyper_head: {dim: d_model, streams: n_hc}")
    w.layer("rmsnorm: {dim: d_model}")
    _decoder_head(c, w, c.flag("tie_word_embeddings", False))
    if depth := mtp_depth(c, w, "num_nextn_predict_layers"):
        _v4_mtp(c, w, depth, n, layer)


def _topk_fits(c: Config, rate: int, what: str) -> None:
    """The indexer keeps index_topk of the keys (or compressed entries, one per `rate` tokens) a query sees; more
    than the longest context holds is a config that contradicts itself, refused at index_topk."""
    if c.get("max_position_embeddings") is None:
        return
    longest = c.int("max_position_embeddings")
    if c.int("index_topk") > longest // rate:
        raise c.error("index_topk", f"{c.int('index_topk'):,} is more than the {longest // rate:,} {what} of the "
                                    f"longest context (max_position_embeddings {longest:,}"
                                    + (f", one entry per {rate} tokens)" if rate > 1 else ")"))


def _v4_mtp(c: Config, w: Writer, depth: int, n: int, layer) -> None:
    """DeepSeek-V4's MTP modules, their attention as the legacy compress_ratios' entries past the layers say (the
    released files': 0, window-only); without those entries, window-only, and said."""
    ratios = c.get("compress_ratios")
    extra = ratios[n:n + depth] if isinstance(ratios, list) and len(ratios) >= n + depth else None
    if extra is None:
        w.note("the MTP modules' attention is written window-only, as the released files' compress_ratios give it "
               "(this file has no entry for them)")
    elif len(set(extra)) > 1 or extra[0] not in V4_RATIOS:
        raise c.error("compress_ratios", f"the MTP modules' entries {extra!r} are not one of 0, 4 or 128 for all")
    norm, square = "rmsnorm: {dim: d_model}", "linear: {dim: d_model, out: d_model, bias: false}"
    streams = (f"repeat: n_hc   # hnorm and h_proj on each of the main model's streams, one set of weights\n"
               f"      shared: true\n      layers:\n        - {norm}\n        - {square}")
    w.mtp(depth, (f"{norm}   # enorm, of the next token's embedding (the shared table's)", f"{square}   # e_proj",
                  streams, "hyper_expand: {streams: n_hc}   # e_proj's output added to each stream",
                  *layer(V4_RATIOS[extra[0]] if extra else "sliding", " " * 6),
                  "hyper_head: {dim: d_model, streams: n_hc}   # its own hc_head",
                  f"{norm}   # its own norm; then the model's head"),
          "num_nextn_predict_layers: multi-token prediction, reported apart (transformers does not build it)")


def _v4_units(kinds: list[str]) -> list:
    """The layers' kinds, each pair of kinds that alternates twice or more as one unit (a, b) a pair."""
    out, i = [], 0
    while i < len(kinds):
        pair = tuple(kinds[i:i + 2])
        turns = 0
        while len(pair) == 2 and pair[0] != pair[1] and tuple(kinds[i + 2 * turns:i + 2 * turns + 2]) == pair:
            turns += 1
        out += [pair] * turns if turns >= 2 else [kinds[i]]
        i += 2 * turns if turns >= 2 else 1
    return out


def _v4_kinds(c: Config, n: int) -> list[str]:
    """Each layer's attention: layer_types, else the legacy compress_ratios (0, 4, 128 a layer; entries past the
    layers describe the MTP layers), else transformers' default (two HCA, then CSA and HCA in turn)."""
    types, ratios = c.get("layer_types"), c.get("compress_ratios")
    if types is not None:
        if not isinstance(types, list) or len(types) != n or any(t not in V4_KINDS for t in types):
            raise c.error("layer_types", f"expected {n} layer types, each one of {', '.join(V4_KINDS)}; got {types!r}")
        return [V4_KINDS[t] for t in types]
    if ratios is not None:
        if not isinstance(ratios, list) or len(ratios) < n or any(r not in V4_RATIOS for r in ratios[:n]):
            raise c.error("compress_ratios", f"expected at least {n} ratios (one a layer), each 0, 4 or 128; "
                                             f"got {ratios!r}")
        return [V4_RATIOS[r] for r in ratios[:n]]
    return ["hca"] * min(n, 2) + ["csa" if i % 2 else "hca" for i in range(max(n - 2, 0))]
