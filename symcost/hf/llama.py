"""Llama and its relatives as data: a `Decoder` each in DECODERS (which norm, which bias flags, qk
norms, MoE kind, window pattern, parallel or post-norm layout, notes), read by one template."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from .heads import _decoder_head
from .reader import Config, _act, _alias, _layer_indices, _rotary_fraction
from .writer import CLIPPED, SCALED, Writer, _capped_seq_len, _dims, _flow, _parallel_block, _runs, mtp_depth


@dataclass(frozen=True)
class Decoder:
    """A Llama-like family as data: what its config fields mean for the one template, _decoder.
    A flag is (config field, its default); every switch here is read from the config."""

    norm: str = "rmsnorm: {dim: d_model}"
    act: tuple[str, str] | None = ("hidden_act", "silu")  # None: the MLP's activation is the family's own
    act_read_as: tuple[tuple[str, str], ...] = ()  # legacy values the model replaces (Gemma's "gelu": tanh's)
    tied: bool = False  # tie_word_embeddings' default
    attention_bias: tuple[str, bool] | None = ("attention_bias", False)  # every projection's bias
    qkv_bias: tuple[str, bool] | bool = False  # q, k and v only: a flag, or always
    o_bias: tuple[str, bool] | None = None  # the output projection's own flag (Seed-OSS)
    mlp_bias: tuple[str, bool] | str | None = None  # a flag, or "attention": the attention's
    gated: bool = True
    qk_norm: bool | str | tuple[str, bool] = False  # per head (Qwen3), "full" (OLMo 2), or per head where a flag says
    sinks: bool = False  # a learned logit per head in every softmax (gpt-oss)
    # layers without rotary: where no_rope_layers says (SmolLM3), or the global ones beside windows (EXAONE 4)
    nope: str | None = None
    local: str = "window"  # a local layer's attention: a sliding window, or chunks (Llama 4)
    # "experts": intermediate_size is each expert's; "routed": moe_intermediate_size; "clamped": gpt-oss's experts
    moe: str | None = None
    shared_expert: bool = False  # and a gated shared expert of shared_expert_intermediate_size (Qwen2-MoE)
    windows: str | None = None  # which layers have a sliding window: a rule of SLIDING's, or none
    window: int | None = None  # transformers' sliding_window when the file leaves it out
    parallel: bool | str = False  # attention and MLP on one norm (Cohere), or when this flag says so (StableLM)
    post: bool = False  # each norm inside its branch's residual, after it (OLMo 2)
    post_norms: bool = False  # a norm after each branch too (Gemma 2 and 3)
    partial_rotary: float | None = None  # rotary on this part of each head unless the config says (StableLM)
    refuse: tuple[tuple[str, tuple, object], ...] = ()  # (field, values understood, default)
    notes: tuple[str, ...] = ()  # work not written (NOTES), named at the top of the spec
    read: tuple[str, ...] = ()  # fields read and not used (Gemma 1's hidden_activation beside hidden_act)
    unused: tuple[str, ...] = ()  # fields this family's transformers model never reads: listed as ignored
    defaults: tuple[tuple[str, int], ...] = ()  # its config class's sizes, for files that leave them out


def _granite_note(c: Config) -> str:
    scales = [k for k in ("embedding_multiplier", "residual_multiplier", "attention_multiplier", "logits_scaling")
              if c.get(k) is not None]
    return (f"Granite's scalar multipliers ({', '.join(scales)}) are not written: each is one elementwise multiply "
            "(no count under pytorch; a few per token under `full`); attention_multiplier replaces 1/sqrt(head_dim)")


def _logit_scale_note(c: Config) -> str:
    c.get("logit_scale")
    return "the logits are multiplied by logit_scale (one elementwise multiply per logit, not written: no count under pytorch)"


def _llama4_note(c: Config) -> str:
    said = ["its router's sigmoid of the chosen logits scales each expert's input (counted as the chosen logits' "
            "softmax under `full`: a FLOP a token more)"]
    if c.flag("use_qk_norm", True):
        said.append("its rotated layers' queries and keys are L2-normalised (no weights)")
    c.get("floor_scale"), c.get("attn_scale")  # the temperature's sizes: elementwise, read either way
    if c.flag("attn_temperature_tuning", True):
        said.append("its layers without rotary scale the queries by a log of the position (attn_temperature_tuning)")
    return "; ".join(said) + ": elementwise work, not written (no count under pytorch)"


# what a family computes that its spec does not write: a note at the top of the spec, or None
NOTES: dict[str, Callable[[Config], str | None]] = {
    "clip_qkv": lambda c: CLIPPED if c.get("clip_qkv") is not None else None,
    "embedding_scale": lambda c: SCALED.format(""),
    "logit_scale": _logit_scale_note,
    "granite": _granite_note,
    "llama4": _llama4_note,
}


GEMMA = dict(act=("hidden_activation", "gelu_pytorch_tanh"), tied=True, notes=("embedding_scale",),
             refuse=(("use_bidirectional_attention", (False, None), None),))


LAYERNORM = "layernorm: {dim: d_model}"


DECODERS: dict[str, Decoder] = {
    # LLaMA 1's converted files carry max_sequence_length, which LlamaConfig never reads (no position table)
    "llama": Decoder(mlp_bias=("mlp_bias", False), unused=("max_sequence_length",)),
    "mistral": Decoder(attention_bias=None, windows="optional", window=4096),
    "mixtral": Decoder(attention_bias=None, windows="optional", moe="experts"),
    "phi3": Decoder(attention_bias=None, windows="optional", unused=("attention_bias",)),  # Phi-3's files; bias=False
    "qwen2": Decoder(attention_bias=None, qkv_bias=True, windows="from_max_window_layers", window=4096),
    "qwen2_moe": Decoder(attention_bias=None, qkv_bias=("qkv_bias", True), windows="alternate_below_max_window_layers", window=4096,
                         moe="routed", shared_expert=True),
    "qwen3": Decoder(qk_norm=True, windows="from_max_window_layers", window=4096),
    # Qwen3-MoE's files carry max_window_layers, some qkv_bias, use_qk_norm and Qwen2-MoE's
    # shared_expert_intermediate_size (0) too: its transformers model reads none (its projections' bias is
    # attention_bias's; q and k are always normed; it has no shared expert)
    "qwen3_moe": Decoder(qk_norm=True, windows="use_sliding_window", window=4096, moe="routed",
                         unused=("max_window_layers", "qkv_bias", "use_qk_norm", "shared_expert_intermediate_size")),
    # Gemma 1's files say "gelu", which GemmaConfig replaces by the tanh approximation they were trained with
    "gemma": Decoder(**GEMMA | dict(act=("hidden_act", "gelu_pytorch_tanh"), act_read_as=(("gelu", "gelu_pytorch_tanh"),),
                                    read=("hidden_activation",))),
    # Gemma 2's and 3's published configs carry Gemma 1's hidden_act (their MLP reads hidden_activation) and,
    # early ones, sliding_window_size beside sliding_window: transformers reads neither
    "gemma2": Decoder(**GEMMA, windows="alternate", window=4096, post_norms=True, unused=("hidden_act", "sliding_window_size")),
    # Gemma 3's files with images give text_config only the sizes that differ from Gemma3TextConfig's
    "gemma3_text": Decoder(**GEMMA, windows="pattern", window=4096, post_norms=True, qk_norm=True,
                           unused=("hidden_act", "sliding_window_size"),
                           defaults=(("vocab_size", 262_208), ("hidden_size", 2304), ("intermediate_size", 9216),
                                     ("num_hidden_layers", 26), ("num_attention_heads", 8), ("num_key_value_heads", 4),
                                     ("head_dim", 256), ("max_position_embeddings", 131_072))),
    # StarCoder2's files carry its training code's switches (activation_function, mlp_type, norm_type); its
    # transformers model reads hidden_act and always builds LayerNorms and an ungated MLP
    "starcoder2": Decoder(norm=LAYERNORM, act=("hidden_act", "gelu_pytorch_tanh"), tied=True,
                          attention_bias=("use_bias", True), mlp_bias="attention", gated=False, windows="optional",
                          unused=("activation_function", "mlp_type", "norm_type")),
    "stablelm": Decoder(norm=LAYERNORM, attention_bias=None, qkv_bias=("use_qkv_bias", False),
                        parallel="use_parallel_residual", partial_rotary=0.25, refuse=(("qk_layernorm", (False,), False),)),
    "olmo": Decoder(norm="layernorm: {dim: d_model, affine: false}", notes=("clip_qkv",)),
    "olmo2": Decoder(qk_norm="full", post=True),
    # Seed-OSS: q, k and v biased by attention_bias, the output projection by its own flag
    "seed_oss": Decoder(attention_bias=None, qkv_bias=("attention_bias", True), o_bias=("attention_out_bias", False),
                        mlp_bias=("mlp_bias", False)),
    # SmolLM3: every no_rope_layer_interval-th layer without rotary (or as no_rope_layers says); its sliding
    # windows (on the NoPE layers, with use_sliding_window) are not read here: refused
    "smollm3": Decoder(tied=True, mlp_bias=("mlp_bias", False), nope="no_rope_layers",
                       refuse=(("use_sliding_window", (False,), False),), unused=("sliding_window", "layer_types")),
    "olmo3": Decoder(qk_norm="full", post=True, windows="three_then_global", window=4096),
    "olmoe": Decoder(qk_norm="full", moe="experts", notes=("clip_qkv",)),
    "granite": Decoder(mlp_bias=("mlp_bias", False), notes=("granite",)),
    "granitemoe": Decoder(moe="experts", notes=("granite",)),
    # gpt-oss's experts run their own clamped SwiGLU (swiglu_alpha, swiglu_limit), never hidden_act; its files
    # carry the original implementation's initial_context_length and experts_per_token, which GptOssConfig does not read
    "gpt_oss": Decoder(act=None, attention_bias=("attention_bias", True), sinks=True, windows="alternate", window=128,
                       moe="clamped", unused=("hidden_act", "initial_context_length", "experts_per_token")),
    # GLM-4.5: q, k and v biased, rotary on half of each head, Q/K norms where use_qk_norm says, dense layers then
    # MoE layers of routed and shared experts; its multi-token-prediction layers (num_nextn_predict_layers), which
    # transformers does not build, as DeepSeek-V3's, counted apart
    "glm4_moe": Decoder(attention_bias=None, qkv_bias=("attention_bias", False), qk_norm=("use_qk_norm", False),
                        partial_rotary=0.5, moe="dense_first"),
    # EXAONE 4: OLMo 2's norms after each branch with Q/K norms per head; where a window is set, three sliding layers
    # then a global one without rotary (sliding_window_pattern 4, or as layer_types say)
    "exaone4": Decoder(qk_norm=True, post=True, windows="every_pattern", window=4096, nope="global"),
    # Llama 4's text model: chunked attention with rotary in three layers of four and a global layer without
    # (no_rope_layers; layer_types), MoE layers (moe_layers, or every interleave_moe_layer_step-th) of routed experts
    # and one shared expert of intermediate_size, dense ones of intermediate_size_mlp
    "llama4_text": Decoder(nope="no_rope_layers", local="chunk", moe="interleaved", notes=("llama4",),
                           unused=("router_jitter_noise",)),
    # ERNIE 4.5 MoE: one bias switch for every projection, MoE layers from moe_layer_start_index on (dense before),
    # routed experts and shared ones; its multi-token-prediction layers (num_nextn_predict_layers), which
    # transformers does not build, counted apart as its checkpoints name them (see _decoder)
    "ernie4_5_moe": Decoder(attention_bias=("use_bias", False), mlp_bias=("use_bias", False), tied=True, moe="ranged",
                            refuse=(("use_bias", (False,), False),), read=("moe_norm_min",)),
    # Hunyuan-A13B: Q/K norms per head (after rotary: no count changes), every layer a MoE of experts and one shared
    # MLP of intermediate_size; num_experts and moe_topk one integer or one a layer
    "hunyuan_v1_moe": Decoder(moe="hunyuan", qk_norm=True),
    "cohere": Decoder(norm="layernorm: {dim: d_model, bias: false}", tied=True, parallel=True, notes=("logit_scale",),
                      refuse=(("use_qk_norm", (False,), False),)),  # a LayerNorm of (heads, head_dim): not written
}


def _decoder(c: Config, w: Writer, family: str) -> None:
    """Llama and its relatives: one template, read as DECODERS[family] says."""
    f = DECODERS[family]
    c.defaults.update(f.defaults)
    d = w.dim("d_model", c.int("hidden_size"), "hidden_size")
    w.dim("n_layers", c.int("num_hidden_layers"), "num_hidden_layers")
    heads = c.int("num_attention_heads")
    w.dim("n_heads", heads, "num_attention_heads")
    w.dim("n_kv_heads", c.int("num_key_value_heads", heads), "num_key_value_heads")
    head_dim = c.get("head_dim")
    if head_dim is None:
        w.dim("d_head", "d_model / n_heads", "head_dim unset: hidden_size / num_attention_heads")
    else:
        w.dim("d_head", c.int("head_dim"), "head_dim")
    w.dim("d_ff", c.int("intermediate_size"), "intermediate_size" + {
        "experts": " (each expert's)", "routed": " (unused by MoE layers)",
        "interleaved": " (each expert's and the shared one's)", "hunyuan": " (each expert's and the shared MLP's)"}
          .get(f.moe, ""))
    if f.moe == "interleaved":
        w.dim("d_ff_mlp", c.int("intermediate_size_mlp"), "intermediate_size_mlp (dense layers)")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    _capped_seq_len(c, w)  # a working length: not silently a 131,072-token pass
    w.dim("batch", 1, "sequences per pass")
    act = _act(c, *f.act, dict(f.act_read_as)) if f.act else None
    for key in f.read:
        c.get(key)
    c.unused.update(f.unused)
    for key, allowed, default in f.refuse:
        c.expect(key, allowed, default)
    for note in filter(None, (NOTES[n](c) for n in f.notes)):
        w.note(note)
    tied = c.flag("tie_word_embeddings", f.tied)

    attention = {"dim": d, "heads": "n_heads", "kv_heads": "n_kv_heads", "head_dim": "d_head", "causal": True}
    if f.attention_bias is not None:
        attention["bias"] = c.flag(*f.attention_bias)
    if f.qkv_bias:
        qkv = f.qkv_bias if f.qkv_bias is True else c.flag(*f.qkv_bias)
        attention |= {"q_bias": qkv, "k_bias": qkv, "v_bias": qkv}
    if f.o_bias:
        attention["o_bias"] = c.flag(*f.o_bias)
    qk_norm = c.flag(*f.qk_norm) if isinstance(f.qk_norm, tuple) else f.qk_norm
    if qk_norm:
        attention["qk_norm"] = qk_norm
    if f.sinks:
        attention["sinks"] = True
    mlp = {"dim": d, "hidden": "d_ff_mlp" if f.moe == "interleaved" else "d_ff", "activation": act, "gated": f.gated}
    if f.mlp_bias is not None:
        mlp["bias"] = attention["bias"] if f.mlp_bias == "attention" else c.flag(*f.mlp_bias)

    sliding = _sliding(c, f, w) if f.local == "window" else _chunked(c, f, w)
    norm = f.norm
    dense = f"mlp: {_flow(mlp)}"
    feed = dense if f.moe is None else f"moe: {_flow(_moe(c, f, w, act))}"
    post = [norm] if f.post_norms else []

    def block(a: dict, feed: str = feed) -> list[str]:
        if f.post:  # x + norm(attn(x)), then h + norm(mlp(h)): each norm inside its residual (no post-norm MoE family)
            return [f"residual: [{{attention: {_flow(dict(a, residual=False))}}}, {{{norm}}}]",
                    f"residual: [{{mlp: {_flow(dict(mlp, residual=False))}}}, {{{norm}}}]"]
        return [norm, f"attention: {_flow(a)}", *post, norm, feed, *post]

    w.layer(f"embedding: {{vocab: vocab, dim: {d}}}")
    if f.partial_rotary is not None:  # rotary on part of each head
        head_dim = c.int("hidden_size") // heads if head_dim is None else head_dim
        fraction = _rotary_fraction(c, "partial_rotary_factor", f.partial_rotary)
        w.dim("d_rot", int(head_dim * fraction), f"partial_rotary_factor {fraction} x head dim {head_dim}, rounded down")
        w.layer("rotary: {dim: d_rot}")
    else:
        w.layer("rotary: {dim: d_head}")
    # per layer: (local attention: a window or a chunk?, rotary?, a MoE?)
    kinds = list(zip(sliding, _rotated(c, f, sliding), _experts(c, f, len(sliding))))
    local = {"window": "window"} if f.local == "window" else {"chunk": "chunk"}

    def lines(kind) -> list[str]:
        a = attention | (local if kind[0] else {}) | ({} if kind[1] else {"rope": False})
        return block(a, feed if kind[2] else dense)

    varies = [len({kind[i] for kind in kinds}) > 1 for i in range(3)]
    words = (("with a sliding window" if f.local == "window" else "chunked", "global"),
             ("with rotary", "without rotary (NoPE)"), ("MoE", "dense"))

    def label(kind) -> str:
        return ", ".join(pair[0] if k else pair[1] for k, pair, shown in zip(kind, words, varies) if shown)

    n, m = len(kinds), _period(kinds)
    if f.moe == "dense_first":  # GLM-4.5: dense layers, then MoE ones
        if len(set(kinds)) > 1:
            raise c.error("layer_types", "windows or layers without rotary are not read for a dense-then-MoE family")
        w.block("repeat: n_dense   # first_k_dense_replace: dense layers first", block(attention, dense))
        w.block("repeat: n_layers - n_dense", block(attention))
    elif f.parallel is True or f.parallel and c.flag(f.parallel, False):
        a = dict(attention, residual=False)
        _parallel_block(w, norm, f"attention: {_flow(a)}", f"mlp: {_flow(dict(mlp, residual=False))}", separate=False)
    elif m == 1:  # every layer alike
        w.block("repeat: n_layers", lines(kinds[0]))
    elif m == 2 and n % 2 == 0:  # Gemma 2's
        w.block(f"repeat: n_layers / 2   # a layer {label(kinds[0])}, then one {label(kinds[1])}",
                lines(kinds[0]) + lines(kinds[1]))
    elif 2 * m <= n and len(set(kinds[:n % m])) <= 1:  # Gemma 3's, OLMo 3's, SmolLM3's, Llama 4's periods
        first, last = kinds[0], kinds[m - 1]
        what = (f"{m - 1} layers {label(first)}, then one {label(last)}" if kinds[:m - 1] == [first] * (m - 1)
                else "; ".join(label(kind) for kind in kinds[:m]))
        w.block(f"repeat: n_layers // {m}   # {what}", [line for kind in kinds[:m] for line in lines(kind)])
        if n % m:
            w.block(f"repeat: n_layers - {m} * (n_layers // {m})   # the last layers, {label(first)}", lines(first))
    else:  # any other pattern: a repeat per run of like layers, the last one taking what n_layers adds
        _runs(w, kinds, lines, label, "n_layers")
    w.layer(norm)
    _decoder_head(c, w, tied)
    if f.moe == "dense_first":
        w.nextn(c, "num_nextn_predict_layers", ("hnorm", "eh_proj", "enorm", "shared_head.norm"), block(attention))
    elif f.moe == "ranged" and c.get("num_nextn_predict_layers"):
        # ERNIE 4.5's, as its checkpoints hold them (model.mtp_hidden_norm.i, mtp_linear_proj.i, mtp_emb_norm.i,
        # mtp_block.i: a decoder layer at index i, dense below moe_layer_start_index), then the model's own final
        # norm and head
        depth = mtp_depth(c, w, "num_nextn_predict_layers")
        if len(set(kinds[:depth])) > 1:
            raise c.error("num_nextn_predict_layers", f"{depth} MTP modules whose layers are of different kinds "
                                                      "(dense and MoE) are not written")
        w.nextn(c, "num_nextn_predict_layers", ("mtp_hidden_norm", "mtp_linear_proj", "mtp_emb_norm", None),
                lines(kinds[0]) if depth else [])


def _period(kinds: list) -> int:
    """The smallest m with every layer of the kind of the layer m before it."""
    return next(m for m in range(1, len(kinds) + 1) if all(kinds[i] == kinds[i % m] for i in range(len(kinds))))


def _chunked(c: Config, f: Decoder, w: Writer) -> list[bool]:
    """Llama 4's chunked layers: as layer_types say, else the layers with rotary when attention_chunk_size is set
    (declaring the chunk's dim when any is)."""
    n = c.int("num_hidden_layers")
    size = c.get("attention_chunk_size")
    types = c.get("layer_types")
    if types is None:
        chunked = [rotated and size is not None for rotated in _rotated(c, f, [False] * n)]
    else:
        chunked = _layer_types(c, types, n, CHUNKED)
    if any(chunked):
        if size is None:
            raise c.error("layer_types", "names chunked layers, but attention_chunk_size is null")
        w.dim("chunk", c.int("attention_chunk_size"), "attention_chunk_size")
    return chunked


CHUNKED = {"chunked_attention": True, "full_attention": False}


def _layer_types(c: Config, types, n: int, kinds: dict[str, bool]) -> list[bool]:
    """The config's layer_types as one flag a layer (local or not, by `kinds`), or the one-line refusal."""
    if not isinstance(types, list) or len(types) != n or any(not isinstance(t, str) or t not in kinds for t in types):
        raise c.error("layer_types", f"expected {n} layer types, each one of {', '.join(kinds)}; got {types!r}")
    return [kinds[t] for t in types]


def _experts(c: Config, f: Decoder, n: int) -> list[bool]:
    """Which layers hold a MoE: all in a MoE family; Llama 4's moe_layers (every interleave_moe_layer_step-th
    layer where unset); ERNIE 4.5's every moe_layer_interval-th from moe_layer_start_index to moe_layer_end_index
    (-1: the last)."""
    if f.moe == "ranged":
        every = c.int("moe_layer_interval", 1)
        start, end = c.get("moe_layer_start_index", 1), c.get("moe_layer_end_index", -1)
        for key, value, least in (("moe_layer_start_index", start, 0), ("moe_layer_end_index", end, -1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise c.error(key, f"expected a layer index{', or -1 for the last' if least else ''}, got {value!r}")
        end = n - 1 if end == -1 else end
        return [(i + 1) % every == 0 and start <= i <= end for i in range(n)]
    if f.moe != "interleaved":
        return [f.moe is not None] * n
    given = c.get("moe_layers")
    if given is None:
        step = c.int("interleave_moe_layer_step", 1)
        return [i % step == step - 1 for i in range(n)]
    c.get("interleave_moe_layer_step")  # read only when moe_layers is unset
    moe = _layer_indices(c, "moe_layers", n)
    return [i in moe for i in range(n)]


def _rotated(c: Config, f: Decoder, sliding: list[bool]) -> list[bool]:
    """Which layers rotate their queries and keys: all; as SmolLM3's no_rope_layers say (1: rotary, 0: NoPE;
    unset, every no_rope_layer_interval-th layer without); or, EXAONE 4's, the sliding ones only where the
    config sets a window (every layer where it does not)."""
    n = len(sliding)
    if f.nope is None:
        return [True] * n
    if f.nope == "global":
        return sliding if c.get("sliding_window") is not None else [True] * n
    given = c.get("no_rope_layers")
    if given is None:
        every = c.int("no_rope_layer_interval", 4)
        return [(i + 1) % every > 0 for i in range(n)]
    if not isinstance(given, list) or len(given) != n or any(v not in (0, 1) or isinstance(v, bool) for v in given):
        raise c.error("no_rope_layers", f"expected {n} flags, each 0 (no rotary) or 1")
    c.get("no_rope_layer_interval")  # read only when no_rope_layers is unset
    return [v == 1 for v in given]


@dataclass(frozen=True)
class Sliding:
    """Which layers of a family have a sliding window, as its transformers config decides: the flag
    that turns windows on (none: always on), whether a null sliding_window turns them off (`sized`;
    else transformers builds windows of no size, and fails), whether it reads layer_types, and else
    the rule for layer i, given the config field it reads (max_window_layers, or Gemma 3's pattern)."""

    switch: str | None
    rule: Callable[[int, int | None], bool]
    field: str | None = None
    sized: bool = True
    layer_types: bool = True
    default: int = 6  # the pattern's when the file leaves it out (Gemma 3's)


SLIDING = {
    "optional": Sliding(None, lambda i, m: True, layer_types=False),  # Mistral: every layer
    "use_sliding_window": Sliding("use_sliding_window", lambda i, m: True, layer_types=False),  # Qwen3-MoE
    "from_max_window_layers": Sliding("use_sliding_window", lambda i, m: i >= m, "max_window_layers"),  # Qwen2, 3
    # Qwen2-MoE's rule, as transformers writes it: every other layer below max_window_layers
    "alternate_below_max_window_layers": Sliding("use_sliding_window", lambda i, m: i % 2 == 0 and i < m,
                                                 "max_window_layers", sized=False),
    "alternate": Sliding(None, lambda i, m: i % 2 == 0, sized=False),  # Gemma 2: local, then global
    "three_then_global": Sliding(None, lambda i, m: (i + 1) % 4 > 0),  # OLMo 3: three local, then global
    "pattern": Sliding(None, lambda i, m: (i + 1) % m > 0, "sliding_window_pattern", sized=False),  # Gemma 3
    "every_pattern": Sliding(None, lambda i, m: (i + 1) % m > 0, "sliding_window_pattern", default=4),  # EXAONE 4
}
LAYER_TYPES = {"sliding_attention": True, "full_attention": False}


def _rule_field(c: Config, s: Sliding, n: int) -> int:
    """The field a window rule reads: max_window_layers (a count of layers, 0 or more; all of them when
    unset) or a pattern's period (sliding_window_pattern, or its private name; the family's default when unset)."""
    key = s.field
    if key == "sliding_window_pattern":
        return c.int(_alias(c, "sliding_window_pattern", "_sliding_window_pattern"), s.default)
    value = c.get(key, n)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise c.error(key, f"expected a number of layers (an integer, 0 or more), got {value!r}")
    return value


def _sliding(c: Config, f: Decoder, w: Writer) -> list[bool]:
    """Which layers attend through a sliding window (declaring its dim when any does): the config's
    layer_types where the family reads them, else the family's rule (SLIDING[f.windows]); none when
    its switch is off or its window null. A file that leaves sliding_window out gets the family's
    default (f.window), as transformers' config does."""
    n = c.int("num_hidden_layers")
    if f.windows is None:
        return [False] * n
    s = SLIDING[f.windows]
    given = "sliding_window" in c.data
    null = c.get("sliding_window") is None if given else f.window is None
    switched = s.switch is None or c.flag(s.switch, False)
    on = switched and not (s.sized and null)
    types = c.get("layer_types") if s.layer_types else None
    if types is not None and s.field == "sliding_window_pattern":  # layer_types decide; the pattern made them
        c.read.update({"sliding_window_pattern", "_sliding_window_pattern"})
    at = _rule_field(c, s, n) if s.field and (types is None or s.field != "sliding_window_pattern") else None
    if types is not None:
        sliding = _layer_types(c, types, n, LAYER_TYPES)
        if any(sliding) and not on:
            why = "sliding_window is null" if switched else f"{s.switch} is false"
            raise c.error("layer_types", f"names sliding layers, but {why}: transformers gives them no window")
    else:
        sliding = [on and s.rule(i, at) for i in range(n)]
    if null and switched and not s.sized:
        raise c.error("sliding_window", "null, but this family's model builds sliding layers with it: a window "
                      "of no size, which transformers cannot build either")
    if any(sliding):  # (a switch that is off leaves the size unread: Qwen2-MoE's config writes 0 there)
        w.dim("window", *((c.int("sliding_window"), "sliding_window") if given else
                          (f.window, f"sliding_window unset: transformers' {f.window}")))
    return sliding


def _per_layer(c: Config, key: str, default: int) -> int:
    """A size a config gives as one integer or as one a layer (Hunyuan's num_experts and moe_topk): the integer,
    when every layer's is the same; layers of differing sizes are refused."""
    value = c.get(key, default)
    if isinstance(value, list):
        if not value or len(set(map(repr, value))) > 1 or isinstance(value[0], bool) or not isinstance(value[0], int) \
                or value[0] < 1:
            raise c.error(key, f"expected one positive integer, or the same one for every layer; got {value!r}")
        return value[0]
    return c.int(key, default)


def _moe(c: Config, f: Decoder, w: Writer, act: str) -> dict:
    if f.moe == "hunyuan":  # routed experts and one shared MLP, all of intermediate_size
        w.dim("n_experts", _per_layer(c, "num_experts", 1), "num_experts")
        w.dim("top_k", _per_layer(c, "moe_topk", 1), "moe_topk")
        return {"dim": "d_model", "experts": "n_experts", "top_k": "top_k", "activation": act, "gated": True,
                "hidden": "d_ff", "shared_experts": 1}
    experts_key = next((k for k in ("num_local_experts", "n_routed_experts", "moe_num_experts") if k in c.data),
                       "num_experts")
    w.dim("n_experts", c.int(experts_key), experts_key)
    c.read.update({"num_local_experts", "num_experts"})
    top_k = "moe_k" if "moe_k" in c.data else "num_experts_per_tok"
    w.dim("top_k", c.int(top_k), top_k)
    moe = {"dim": "d_model", "experts": "n_experts", "top_k": "top_k", "activation": act, "gated": True}
    if f.moe == "experts":
        return moe | {"hidden": "d_ff"}
    if f.moe == "interleaved":  # Llama 4: routed experts and one shared expert, both of intermediate_size
        return moe | {"hidden": "d_ff", "shared_experts": 1}
    if f.moe == "ranged":  # ERNIE 4.5: its router's score-correction bias (a parameter of E values in transformers,
        # added to the softmax before the choice) is written as the router's bias: the same parameters and FLOPs
        _dims(c, w, [("d_expert", "moe_intermediate_size")])
        moe |= {"hidden": "d_expert", "router_bias": True}
        if c.get("moe_num_shared_experts", 2):  # Ernie4_5_MoeConfig's 2 where the file leaves it out
            w.dim("n_shared", c.int("moe_num_shared_experts", 2), "moe_num_shared_experts: one MLP of n_shared x d_expert")
            moe |= {"shared_experts": 1, "shared_hidden": "n_shared * d_expert"}
        return moe
    if f.moe == "clamped":  # gpt-oss: act(gate) = gate·sigmoid(swiglu_alpha·gate), quick_gelu's form at 1.702
        c.expect("swiglu_alpha", (1.702,), 1.702)
        limit = c.positive("swiglu_limit", 7.0)
        exact = Fraction(str(limit))  # the decimal the file writes, as a spec's sizes are exact
        return moe | {"hidden": "d_ff", "activation": "quick_gelu", "bias": True, "router_bias": True,
                      "router_softmax": "top_k", "limit": str(exact)}
    if f.moe == "dense_first":  # GLM-4.5: DeepSeek's layout without MLA; its routing (sigmoid scores, groups,
        # a correction bias that is a buffer) changes no count
        w.dim("n_dense", c.int("first_k_dense_replace", 1), "first_k_dense_replace")
        _dims(c, w, [("d_expert", "moe_intermediate_size")])
        c.read.add("n_routed_experts")
        shared = c.get("n_shared_experts", 1)
        moe = moe | {"hidden": "d_expert"}
        if shared:
            w.dim("n_shared", c.int("n_shared_experts"), "n_shared_experts: one MLP of n_shared x d_expert")
            moe |= {"shared_experts": 1, "shared_hidden": "n_shared * d_expert"}
        return moe
    c.expect("decoder_sparse_step", (1,), 1)
    if c.get("mlp_only_layers", []):
        raise c.error("mlp_only_layers", "dense layers among the MoE ones are not supported by the importer")
    w.dim("d_expert", c.int("moe_intermediate_size"), "moe_intermediate_size")
    moe["hidden"] = "d_expert"
    if f.shared_expert:
        if c.get("shared_expert_intermediate_size") == 0:
            raise c.error("shared_expert_intermediate_size", "0: transformers still builds the shared expert's gate "
                          "(hidden_size weights) beside an expert of no width, which a spec cannot write; a MoE "
                          "without a shared expert is qwen3_moe's layout")
        w.dim("d_shared", c.int("shared_expert_intermediate_size"), "shared_expert_intermediate_size")
        moe |= {"shared_experts": 1, "shared_hidden": "d_shared", "shared_gate": True}
    return moe
