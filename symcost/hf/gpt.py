"""GPT-2's lineage: LayerNorms, ungated MLPs with biases, and learned, rotary or ALiBi positions
(GPT-2, GPTBigCode, GPT-NeoX, Phi-2, GPT-J, Falcon, BLOOM, OPT)."""

from __future__ import annotations

from dataclasses import dataclass

from .heads import _decoder_head, _labels
from .reader import Config, _act, _rotary_fraction
from .writer import Writer, _dims, _parallel_block, _trunk


def _gpt2(c: Config, w: Writer, family: str = "gpt2") -> None:
    """GPT-2, and GPTBigCode (StarCoder, SantaCoder): GPT-2 with multi-query attention."""
    w.dim("d_model", c.int("n_embd"), "n_embd")
    w.dim("n_layers", c.int("n_layer"), "n_layer")
    heads = c.int("n_head")
    w.dim("n_heads", heads, "n_head")
    attention = "{dim: d_model, heads: n_heads, causal: true, bias: true}"
    if family == "gpt_bigcode":
        kv = 1 if c.flag("multi_query", True) else heads
        if c.get("num_key_value_heads", kv) != kv:
            raise c.error("num_key_value_heads", f"{c.get('num_key_value_heads')!r} disagrees with multi_query "
                          f"({str(kv == 1).lower()}: {kv} key/value heads)")
        w.dim("n_kv_heads", kv, "multi_query: one key/value head shared by all" if kv == 1 else "multi_query false")
        # settings of BigCode's own inference runner in the first published files; transformers reads none
        c.unused.update({"runner_max_sequence_length", "inference_runner", "max_batch_size", "max_sequence_length",
                         "validate_runner_input"})
        attention = "{dim: d_model, heads: n_heads, kv_heads: n_kv_heads, causal: true, bias: true}"
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("max_pos", c.int("n_positions"), "n_positions")
    c.get("n_ctx")
    w.dim("seq_len", c.int("n_positions"), "n_positions: one full-context pass")
    w.dim("batch", 1, "sequences per pass")
    inner = c.get("n_inner")
    w.dim("d_ff", "4 * d_model" if inner is None else c.int("n_inner"), "n_inner" + (" unset: 4 x n_embd" if inner is None else ""))
    act = _act(c, "activation_function", "gelu_new" if family == "gpt2" else "gelu_pytorch_tanh")
    c.expect("add_cross_attention", (False,), False)
    tied = c.flag("tie_word_embeddings", True)
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("position_embedding: {max_len: max_pos, dim: d_model}")
    w.block("repeat: n_layers", ("layernorm: {dim: d_model}",
                                 f"attention: {attention}",
                                 "layernorm: {dim: d_model}",
                                 f"mlp: {{dim: d_model, hidden: d_ff, activation: {act}, bias: true}}"))
    w.layer("layernorm: {dim: d_model}")
    _decoder_head(c, w, tied)


@dataclass(frozen=True)
class Parallel:
    """A decoder whose attention and MLP read the same input, as data: where its config keeps each
    size, how much of each head rotary turns, and its switches (a flag is (config field, default))."""

    names: tuple[str, str, str, str, str]  # the width, depth, heads, MLP width and positions fields
    rotary: tuple[str, float] | str  # (the rotated fraction's field, its default), or a count of dims (GPT-J)
    act: tuple[str, str]
    bias: tuple[str, bool] | bool  # the attention projections': a flag, or fixed
    kv_heads: bool = False  # grouped key/value heads (num_key_value_heads)
    residual: str | None = None  # a flag: a norm per branch (true), or the usual two residual steps (false)
    head_bias: bool = True  # the LM head's
    refuse: tuple[tuple[str, tuple], ...] = ()  # (field, values understood)
    unused: tuple[str, ...] = ()  # fields the family's transformers model never reads


HF_NAMES = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings")
PARALLEL = {
    # is_decoder: transformers' own flag, not the architecture's
    "gpt_neox": Parallel(HF_NAMES, ("rotary_pct", 0.25), ("hidden_act", "gelu"), ("attention_bias", True),
                         residual="use_parallel_residual", head_bias=False, refuse=(("is_decoder", (True, False, None)),)),
    "phi": Parallel(HF_NAMES, ("partial_rotary_factor", 0.5), ("hidden_act", "gelu_new"), True, kv_heads=True,
                    refuse=(("qk_layernorm", (False, None)),)),
    # gpt-j-6b's file says rotary: true; transformers' GPT-J always rotates
    "gptj": Parallel(("n_embd", "n_layer", "n_head", "n_inner", "n_positions"), "rotary_dim",
                     ("activation_function", "gelu_new"), False, unused=("rotary",)),
}


def _parallel(c: Config, w: Writer, family: str) -> None:
    """GPT-NeoX (Pythia), Phi-2 and GPT-J, as PARALLEL[family] says: attention and MLP read the same
    input and both add to the stream (x + attn(ln x) + mlp(ln x); NeoX with a norm each), written as a
    residual block around a residual block whose shortcut is the MLP. Rotary turns part of each head."""
    f = PARALLEL[family]
    hidden, layers, heads_key, inner, positions = f.names
    w.dim("d_model", c.int(hidden), hidden)
    w.dim("n_layers", c.int(layers), layers)
    heads = c.int(heads_key)
    w.dim("n_heads", heads, heads_key)
    if f.kv_heads:
        w.dim("n_kv_heads", c.int("num_key_value_heads", heads), "num_key_value_heads")
    d_ff = c.get(inner)
    w.dim("d_ff", "4 * d_model" if d_ff is None else c.int(inner), inner + (" unset: 4 x hidden" if d_ff is None else ""))
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("seq_len", c.int(positions, 2048), f"{positions}: one full-context pass")
    w.dim("batch", 1, "sequences per pass")
    head_dim = c.int(hidden) // heads
    if isinstance(f.rotary, str):  # a count of dims, all of each head when unset
        rot = c.int(f.rotary, head_dim) if c.get(f.rotary) is not None else head_dim
        note = f.rotary
    else:
        key, default = f.rotary
        fraction = _rotary_fraction(c, key, default)
        rot, note = int(head_dim * fraction), f"{key} {fraction} x head dim {head_dim}, rounded down"
    c.unused.update(f.unused)
    w.dim("d_rot", rot, note)
    act = _act(c, *f.act)
    bias = f.bias if isinstance(f.bias, bool) else c.flag(*f.bias)
    for key, allowed in f.refuse:
        c.expect(key, allowed)
    separate = f.residual is not None and c.flag(f.residual, True)
    sequential = f.residual is not None and not separate
    tied = c.flag("tie_word_embeddings", False)
    kv = ", kv_heads: n_kv_heads" if f.kv_heads else ""
    attention = f"attention: {{dim: d_model, heads: n_heads{kv}, causal: true, bias: {str(bias).lower()}%s}}"
    mlp = f"mlp: {{dim: d_model, hidden: d_ff, activation: {act}, bias: true%s}}"
    norm = "layernorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("rotary: {dim: d_rot}")
    if sequential:  # GPT-NeoX without parallel residual: the usual two residual steps
        w.block("repeat: n_layers", (norm, attention % "", norm, mlp % ""))
    else:
        _parallel_block(w, norm, attention % ", residual: false", mlp % ", residual: false", separate)
    w.layer(norm)
    if c.head == "lm":
        w.layer(f"lm_head: {{dim: d_model, vocab: vocab, tied: {str(tied).lower()}, bias: {str(f.head_bias).lower()}}}")
    elif c.head == "classifier":
        w.layer(f"linear: {{dim: d_model, out: {_labels(c, w)}}}   # score: logits of every token")


def _falcon(c: Config, w: Writer) -> None:
    """Falcon: multi-query (7B) or grouped (new_decoder_architecture: 40B, 180B) attention with
    one fused qkv projection; attention and MLP in parallel on one LayerNorm (7B) or one each
    (num_ln_in_parallel_attn 2), or in sequence (parallel_attn false); rotary, or ALiBi."""
    heads = _trunk(c, w, ("hidden_size", "n_embed"), ("num_hidden_layers", "n_layer"), ("num_attention_heads", "n_head"))
    # the first published files carry BLOOM's apply_residual_connection_post_layernorm, which
    # transformers' Falcon never reads
    c.unused.add("apply_residual_connection_post_layernorm")
    new = c.flag("new_decoder_architecture", False)
    multi_query, parallel = c.flag("multi_query", True), c.flag("parallel_attn", True)
    kv_heads = _falcon_kv_heads(c, heads, new, multi_query)
    w.dim("n_kv_heads", kv_heads, "num_kv_heads (new_decoder_architecture)" if new else
          "multi_query: one key/value head" if multi_query else "multi_query false: a key/value head per head")
    ffn = c.get("ffn_hidden_size")
    w.dim("d_ff", "4 * d_model" if ffn is None else c.int("ffn_hidden_size"),
          "ffn_hidden_size" + (" unset: 4 x hidden_size" if ffn is None else ""))
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("seq_len", c.int("max_position_embeddings", 2048), "max_position_embeddings: one full-context pass")
    w.dim("batch", 1, "sequences per pass")
    if new and not parallel:
        raise c.error("parallel_attn", "new_decoder_architecture with parallel_attn false is not a model transformers "
                      "builds (its layer reads the parallel norms)")
    norms = c.expect("num_ln_in_parallel_attn", (None, 1, 2))
    separate = new and norms in (None, 2)
    bias = str(c.flag("bias", False)).lower()
    act = _act(c, "activation", "gelu")
    alibi = c.flag("alibi", False)
    tied = c.flag("tie_word_embeddings", True)
    attention = f"attention: {{dim: d_model, heads: n_heads, kv_heads: n_kv_heads, causal: true, bias: {bias}%s}}"
    mlp = f"mlp: {{dim: d_model, hidden: d_ff, activation: {act}, bias: {bias}%s}}"
    norm = "layernorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("alibi: {heads: n_heads}" if alibi else "rotary: {dim: d_model / n_heads}")
    if parallel:
        _parallel_block(w, norm, attention % ", residual: false", mlp % ", residual: false", separate)
    else:
        w.block("repeat: n_layers", (norm, attention % "", norm, mlp % ""))
    w.layer(norm)
    _decoder_head(c, w, tied)


def _falcon_kv_heads(c: Config, heads: int, new: bool, multi_query: bool) -> int:
    """Falcon's key/value heads, as transformers' FalconAttention reads them: num_kv_heads (its
    default: one per head) in the new architecture, one under multi_query, else one per head. The
    num_key_value_heads that transformers 5.25 writes beside them is derived from these three, and
    read back by nothing; a file whose value contradicts them is refused instead of one of the two
    being believed."""
    stated = c.int("num_kv_heads", heads)
    if not new and not multi_query and stated != heads:
        # its fused projection holds a key and value per head, and its attention groups them by num_kv_heads
        raise c.error("num_kv_heads", f"{stated} key/value heads beside multi_query false and the old decoder "
                      f"architecture, whose fused projection holds one per head ({heads}): transformers builds no "
                      "model that runs")
    kv_heads = stated if new else 1 if multi_query else heads
    written = c.get("num_key_value_heads")
    if written is not None and written != kv_heads:
        raise c.error("num_key_value_heads", f"{written!r} contradicts num_kv_heads {stated}, multi_query "
                      f"{str(multi_query).lower()} and new_decoder_architecture {str(new).lower()}, which give "
                      f"{kv_heads} key/value heads")
    return kv_heads


def _bloom(c: Config, w: Writer) -> None:
    """BLOOM: ALiBi instead of positions, a LayerNorm on the embeddings, fused qkv with biases,
    a GELU MLP of 4 x hidden, the head tied to the table."""
    _trunk(c, w, ("hidden_size", "n_embed"), ("n_layer", "num_hidden_layers"), ("n_head", "num_attention_heads"))
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("seq_len", 2048, "a 2048-token pass (BLOOM was trained on 2048; ALiBi has no table that bounds it)")
    w.dim("batch", 1, "sequences per pass")
    # the residual taken after the norm instead of before: the same counts, another model
    c.expect("apply_residual_connection_post_layernorm", (False,), False)
    c.get("pretraining_tp"), c.get("slow_but_exact")  # how the dense matmul was split in training: the same sums
    # Megatron-DeepSpeed's training switches, in the published files and read by no transformers code
    c.unused.update({"masked_softmax_fusion", "bias_dropout_fusion", "skip_bias_add", "skip_bias_add_qkv",
                     "offset_alibi", "n_inner"})
    tied = c.flag("tie_word_embeddings", True)
    norm = "layernorm: {dim: d_model}"
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer(f"{norm}   # word_embeddings_layernorm")
    w.layer("alibi: {heads: n_heads}")
    w.block("repeat: n_layers", (norm, "attention: {dim: d_model, heads: n_heads, causal: true, bias: true}", norm,
                                 "mlp: {dim: d_model, hidden: 4 * d_model, activation: gelu_new, bias: true}"))
    w.layer(norm)
    _decoder_head(c, w, tied)


def _opt(c: Config, w: Writer) -> None:
    """OPT: learned positions with an offset of 2 rows, LayerNorms, ReLU MLP, biases on every
    projection; word_embed_proj_dim narrower than the hidden size adds project_in and project_out."""
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads"),
                 ("d_ff", "ffn_dim"), ("vocab", "vocab_size"),
                 ("max_pos", "max_position_embeddings", "max_position_embeddings (the table has 2 more rows)"),
                 ("seq_len", "max_position_embeddings", "max_position_embeddings: one full-context pass")])
    w.dim("batch", 1, "sequences per pass")
    hidden = c.int("hidden_size")
    proj = c.int("word_embed_proj_dim", hidden)
    if proj != hidden:
        w.dim("d_embed", proj, "word_embed_proj_dim")
    embed = "d_embed" if proj != hidden else "d_model"
    act = _act(c, "activation_function", "relu")
    bias = str(c.flag("enable_bias", True)).lower()
    c.expect("layer_norm_elementwise_affine", (True,), True)
    c.expect("layerdrop", (0, 0.0), 0.0)
    pre_norm, removed = c.flag("do_layer_norm_before", True), c.flag("_remove_final_layer_norm", False)
    final_norm = pre_norm and not removed  # a post-LN model (opt-350m) has no final norm
    tied = c.flag("tie_word_embeddings", True)
    w.layer(f"embedding: {{vocab: vocab, dim: {embed}}}")
    if proj != hidden:
        w.layer("linear: {dim: d_embed, out: d_model}   # project_in")
    w.layer("position_embedding: {max_len: max_pos + 2, dim: d_model}   # positions start at row 2")
    w.block("repeat: n_layers", ("layernorm: {dim: d_model}",
                                 f"attention: {{dim: d_model, heads: n_heads, causal: true, bias: {bias}}}",
                                 "layernorm: {dim: d_model}",
                                 f"mlp: {{dim: d_model, hidden: d_ff, activation: {act}, bias: {bias}}}"))
    if final_norm:
        w.layer("layernorm: {dim: d_model}")
    if proj != hidden:
        w.layer("linear: {dim: d_model, out: d_embed}   # project_out")
    if c.head == "lm":
        w.layer(f"lm_head: {{dim: {embed}, vocab: vocab, tied: {str(tied).lower()}}}")
    elif c.head == "classifier":
        w.layer(f"linear: {{dim: {embed}, out: {_labels(c, w)}}}   # score: logits of every token")
