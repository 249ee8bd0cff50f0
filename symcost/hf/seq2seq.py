"""Encoder-decoders: T5, BART and Whisper (its encoder over log-mel frames)."""

from __future__ import annotations

from .heads import LAST_EOS, _encoder_head, _target_len
from .reader import Config, _act
from .writer import SCALED, Writer, _dims, _encoder


def _t5(c: Config, w: Writer) -> None:
    """T5ForConditionalGeneration: a shared table, encoder and decoder stacks with relative
    position biases, RMS norms (T5LayerNorm), no biases."""
    _dims(c, w, [("d_model", "d_model"), ("n_layers", "num_layers", "num_layers (encoder)")])
    _dims(c, w, [("n_dec_layers", "num_decoder_layers", None, c.int("num_layers")), ("n_heads", "num_heads"),
                 ("d_kv", "d_kv", "d_kv: per-head size"), ("d_ff", "d_ff"), ("vocab", "vocab_size"),
                 ("buckets", "relative_attention_num_buckets")])
    w.dim("src_len", 512, "source tokens (T5 was trained with 512)")
    _target_len(c, w, 512, "target tokens")
    w.dim("batch", 1, "sequences per pass")
    c.get("n_positions")  # a legacy length: T5 has no position table
    proj = c.expect("feed_forward_proj", ("relu", "gated-gelu", "gated-silu"), "relu")
    c.get("is_gated_act"), c.get("dense_act_fn")
    c.expect("is_decoder", (False, None))
    gated = proj.startswith("gated")
    act = {"relu": "relu", "gated-gelu": "gelu_new", "gated-silu": "silu"}[proj]
    tied = c.flag("tie_word_embeddings", True)
    attn = "{dim: d_model, heads: n_heads, head_dim: d_kv%s}"
    mlp = f"mlp: {{dim: d_model, hidden: d_ff, activation: {act}, gated: {str(gated).lower()}}}"
    _encoder(w, ("embedding: {vocab: vocab, dim: d_model}", "relative_position_bias: {buckets: buckets, heads: n_heads}"))
    w.block("repeat: n_layers", ("rmsnorm: {dim: d_model}", "attention: " + attn % "", "rmsnorm: {dim: d_model}", mlp), 3)
    w.layer("rmsnorm: {dim: d_model}", 3)
    w.layer("embedding: {vocab: vocab, dim: d_model, shared: true}")
    w.layer("relative_position_bias: {buckets: buckets, heads: n_heads}")
    w.block("repeat: n_dec_layers", ("rmsnorm: {dim: d_model}", "attention: " + attn % ", causal: true",
                                     "rmsnorm: {dim: d_model}", "cross_attention: " + attn % "",
                                     "rmsnorm: {dim: d_model}", mlp))
    w.layer("rmsnorm: {dim: d_model}")
    if c.head == "lm":
        w.layer(f"lm_head: {{dim: d_model, vocab: vocab, tied: {str(tied).lower()}}}")
    elif c.head == "classifier":
        _encoder_head(c, w, act, pool=LAST_EOS)


def _stacks(c: Config, w: Writer) -> str:
    """An encoder-decoder's two stacks as BART and Whisper configure them: width, depth, heads and
    MLP width of each (the layerdrop of neither), the embedding scale noted; their activation."""
    w.dim("d_model", c.int("d_model"), "d_model")
    for name, key in (("n_layers", "encoder_layers"), ("n_dec_layers", "decoder_layers"),
                      ("n_heads", "encoder_attention_heads"), ("n_dec_heads", "decoder_attention_heads"),
                      ("d_ff", "encoder_ffn_dim"), ("d_dec_ff", "decoder_ffn_dim")):
        w.dim(name, c.int(key), key)
    # names in the config's attribute_map, which transformers 4 saved beside the encoder's fields
    for alias, key in (("num_hidden_layers", "encoder_layers"), ("num_attention_heads", "encoder_attention_heads"),
                       ("hidden_size", "d_model")):
        if c.get(alias, c.data[key]) != c.data[key]:
            raise c.error(alias, f"{c.data[alias]!r} differs from {key} {c.data[key]!r}: transformers' config keeps "
                          "one value for both (its attribute_map), so the file is ambiguous")
    for key in ("encoder_layerdrop", "decoder_layerdrop"):  # skipping layers at random in training
        c.expect(key, (0, 0.0), 0.0)
    if c.flag("scale_embedding", False):
        w.note(SCALED.format("scale_embedding: "))
    return _act(c, "activation_function", "gelu")


def _whisper(c: Config, w: Writer) -> None:
    """Whisper: an encoder over log-mel frames (two convolutions, the second of stride 2, then
    a position table of max_source_positions rows) and a decoder over tokens, pre-LN layers with
    biases on every projection but the keys', a final LayerNorm in each stack, the head tied to
    the decoder's table. The encoder reads 2 x max_source_positions frames (30 s of audio)."""
    act = _stacks(c, w)
    _dims(c, w, [("n_mels", "num_mel_bins"), ("vocab", "vocab_size"),
                 ("max_src", "max_source_positions", "max_source_positions: the encoder's position table"),
                 ("max_tgt", "max_target_positions", "max_target_positions: the decoder's position table")])
    w.dim("src_len", "2 * max_src", "mel frames: transformers reads exactly 2 x max_source_positions")
    w.dim("seq_len", c.int("max_target_positions"), "target tokens: max_target_positions")
    w.dim("batch", 1, "utterances per pass")
    if c.flag("use_weighted_layer_sum", False):
        raise c.error("use_weighted_layer_sum", "the audio classifier's weighted layer sum is not written by the importer")
    c.get("classifier_proj_size")  # the audio classifier's, which a ForConditionalGeneration does not build
    for key in ("apply_spec_augment", "mask_time_prob", "mask_time_length", "mask_time_min_masks", "mask_feature_prob",
                "mask_feature_length", "mask_feature_min_masks", "median_filter_width"):
        c.get(key)  # training-time masking of the features, and a filter for word timestamps: no count
    tied = c.flag("tie_word_embeddings", True)
    norm, mlp = "layernorm: {dim: d_model}", "mlp: {dim: d_model, hidden: %s, activation: " + act + ", bias: true}"
    attention = "{dim: d_model, heads: %s, bias: true, k_bias: false%s}"
    _encoder(w, ("conv1d: {dim: n_mels, out: d_model, kernel: 3, padding: 1}", f"activation: {{function: {act}}}",
                 "conv1d: {dim: d_model, out: d_model, kernel: 3, stride: 2, padding: 1}",
                 f"activation: {{function: {act}}}", "position_embedding: {max_len: max_src, dim: d_model}"))
    w.block("repeat: n_layers", (norm, "attention: " + attention % ("n_heads", ""), norm, mlp % "d_ff"), 3)
    w.layer(norm, 3)
    w.layer("embedding: {vocab: vocab, dim: d_model}")
    w.layer("position_embedding: {max_len: max_tgt, dim: d_model}")
    w.block("repeat: n_dec_layers", (norm, "attention: " + attention % ("n_dec_heads", ", causal: true"), norm,
                                     "cross_attention: " + attention % ("n_dec_heads", ""), norm, mlp % "d_dec_ff"))
    w.layer(norm)
    if c.head == "lm":
        w.layer(f"lm_head: {{dim: d_model, vocab: vocab, tied: {str(tied).lower()}}}   # proj_out")


def _bart(c: Config, w: Writer) -> None:
    """BART: encoder and decoder stacks of post-LN layers (a layer's residual add, then its
    LayerNorm), learned positions with an offset of 2 rows, a LayerNorm on the embeddings,
    biases on every projection, one table shared by both stacks and the tied head."""
    act = _stacks(c, w)
    _dims(c, w, [("vocab", "vocab_size"),
                 ("max_pos", "max_position_embeddings", "max_position_embeddings (each table has 2 more rows)"),
                 ("src_len", "max_position_embeddings", "source tokens: max_position_embeddings")])
    _target_len(c, w, c.int("max_position_embeddings"), "target tokens: max_position_embeddings")
    w.dim("batch", 1, "sequences per pass")
    c.expect("is_decoder", (False, None))
    # transformers 3's BART switches, in files it saved: 4 and 5 read none and build the layers above
    c.unused.update({"add_bias_logits", "add_final_layer_norm", "do_blenderbot_90_layernorm", "extra_pos_embeddings",
                     "normalize_before", "normalize_embedding", "static_position_embeddings"})
    tied = c.flag("tie_word_embeddings", True)
    norm, mlp = "layernorm: {dim: d_model}", "mlp: {dim: d_model, hidden: %s, activation: " + act + ", bias: true}"
    attention = "{dim: d_model, heads: %s, bias: true%s}"
    _encoder(w, ("embedding: {vocab: vocab, dim: d_model}", "position_embedding: {max_len: max_pos + 2, dim: d_model}",
                 f"{norm}   # layernorm_embedding"))
    w.block("repeat: n_layers", ("attention: " + attention % ("n_heads", ""), norm, mlp % "d_ff", norm), 3)
    w.layer("embedding: {vocab: vocab, dim: d_model, shared: true}")
    w.layer("position_embedding: {max_len: max_pos + 2, dim: d_model}")
    w.layer(f"{norm}   # layernorm_embedding")
    w.block("repeat: n_dec_layers", ("attention: " + attention % ("n_dec_heads", ", causal: true"), norm,
                                     "cross_attention: " + attention % ("n_dec_heads", ""), norm, mlp % "d_dec_ff", norm))
    if c.head == "lm":
        w.layer(f"lm_head: {{dim: d_model, vocab: vocab, tied: {str(tied).lower()}}}   # final_logits_bias: a buffer")
    elif c.head == "classifier":
        _encoder_head(c, w, act, pool=LAST_EOS)
