"""Encoders over tokens and images: BERT, RoBERTa, XLM-R, DistilBERT, ALBERT (one layer shared
by every layer) and ViT."""

from __future__ import annotations

from .heads import _encoder_head, _labels
from .reader import Config, _act
from .writer import Writer, _dims


def _bert(c: Config, w: Writer, family: str = "bert") -> None:
    """BertModel: embeddings, encoder and pooler; BertForSequenceClassification adds a classifier on
    the pooled vector; BertForMaskedLM has no pooler, and a transform and tied decoder instead.
    RoBERTa and XLM-R are the same layers: their classifier's dense + tanh on the first token holds
    what BERT's pooler does, and their positions start after the padding row."""
    _dims(c, w, [("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads"),
                 ("d_ff", "intermediate_size"), ("vocab", "vocab_size"), ("max_pos", "max_position_embeddings"),
                 ("types", "type_vocab_size")])
    if family == "bert":
        w.dim("seq_len", c.int("max_position_embeddings"), "max_position_embeddings: one full-length pass")
    else:  # position ids run from pad_token_id + 1
        pad = c.get("pad_token_id", 1)
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise c.error("pad_token_id", f"expected a token id (a non-negative integer), got {pad!r}")
        w.dim("seq_len", c.int("max_position_embeddings") - pad - 1,
              f"max_position_embeddings - pad_token_id - 1: positions start after the padding row {pad}")
    w.dim("batch", 1, "sequences per pass")
    act = _act(c, "hidden_act", "gelu")
    c.expect("position_embedding_type", ("absolute", None))
    c.expect("is_decoder", (False, None))
    c.expect("add_cross_attention", (False, None))
    c.get("tie_word_embeddings")  # no head in BertModel
    for line in ("embedding: {vocab: vocab, dim: d_model}", "position_embedding: {max_len: max_pos, dim: d_model}",
                 "token_type_embedding: {types: types, dim: d_model}", "layernorm: {dim: d_model}"):
        w.layer(line)
    w.block("repeat: n_layers", _encoder_layer(act))
    _encoder_head(c, w, act if family == "bert" else "gelu")  # RobertaLMHead calls gelu itself


def _encoder_layer(act: str) -> tuple[str, ...]:
    """A BERT layer: attention and MLP with biases, each followed by its norm."""
    return ("attention: {dim: d_model, heads: n_heads, bias: true}", "layernorm: {dim: d_model}",
            f"mlp: {{dim: d_model, hidden: d_ff, activation: {act}, bias: true}}", "layernorm: {dim: d_model}")


def _distilbert(c: Config, w: Writer) -> None:
    """DistilBERT: BERT's layers without token types or pooler; its masked-LM head is BERT's, its
    classifier a dense + ReLU on the first token, then the projection."""
    _dims(c, w, [("d_model", "dim"), ("n_layers", "n_layers"), ("n_heads", "n_heads"), ("d_ff", "hidden_dim"),
                 ("vocab", "vocab_size"), ("max_pos", "max_position_embeddings"),
                 ("seq_len", "max_position_embeddings", "max_position_embeddings: one full-length pass")])
    w.dim("batch", 1, "sequences per pass")
    act = _act(c, "activation", "gelu")
    c.flag("sinusoidal_pos_embds", False)  # a fixed table is still a table of the same size
    c.get("tie_word_embeddings")
    c.unused.add("tie_weights_")  # transformers 3's name for tying the MLM head, in files it saved; 4 and 5 read none
    for line in ("embedding: {vocab: vocab, dim: d_model}", "position_embedding: {max_len: max_pos, dim: d_model}",
                 "layernorm: {dim: d_model}"):
        w.layer(line)
    w.block("repeat: n_layers", _encoder_layer(act))
    _encoder_head(c, w, act, pool_act="relu", bare_pooler=False)


def _albert(c: Config, w: Writer) -> None:
    """ALBERT: BERT with a factorised embedding (vocab x embedding_size, then a projection to the
    hidden size) and one layer's weights shared by every layer; heads as BERT's, the masked-LM
    one projecting back to embedding_size for the tied decoder."""
    _dims(c, w, [("d_embed", "embedding_size"), ("d_model", "hidden_size"),
                 ("n_layers", "num_hidden_layers", "num_hidden_layers: passes of the one shared layer"),
                 ("n_heads", "num_attention_heads"), ("d_ff", "intermediate_size"), ("vocab", "vocab_size"),
                 ("max_pos", "max_position_embeddings"), ("types", "type_vocab_size"),
                 ("seq_len", "max_position_embeddings", "max_position_embeddings: one full-length pass")])
    w.dim("batch", 1, "sequences per pass")
    act = _act(c, "hidden_act", "gelu_new")
    c.expect("num_hidden_groups", (1,), 1)  # groups of layers with their own weights: not written yet
    c.expect("inner_group_num", (1,), 1)
    c.expect("position_embedding_type", ("absolute", None))
    c.get("tie_word_embeddings")  # the masked-LM decoder is tied to the token table
    # the original TensorFlow ALBERT's switches, in Google's converted files: AlbertConfig reads none
    c.unused.update({"down_scale_factor", "gap_size", "net_structure_type", "num_memory_blocks", "layers_to_keep"})
    for line in ("embedding: {vocab: vocab, dim: d_embed}", "position_embedding: {max_len: max_pos, dim: d_embed}",
                 "token_type_embedding: {types: types, dim: d_embed}", "layernorm: {dim: d_embed}",
                 "linear: {dim: d_embed, out: d_model, bias: true}   # embedding_hidden_mapping_in"):
        w.layer(line)
    w.block("repeat: n_layers", _encoder_layer(act), fields=("shared: true",))
    _encoder_head(c, w, act, table="d_embed")


def _vit(c: Config, w: Writer) -> None:
    """ViT: a patch convolution, a class token and learned positions, pre-LN blocks, a final norm;
    ViTModel's pooler (dense + tanh on the class token) or ViTForImageClassification's classifier."""
    _dims(c, w, [("image_size", "image_size"), ("patch", "patch_size"), ("channels", "num_channels", None, 3),
                 ("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads"),
                 ("d_ff", "intermediate_size")])
    w.dim("batch", 1, "images per pass")
    w.dim("n_tokens", "(image_size // patch) ** 2 + 1", "patches and the class token")
    act = _act(c, "hidden_act", "gelu")
    bias = str(c.flag("qkv_bias", True)).lower()
    c.get("encoder_stride")  # the masked-image-modelling decoder's, not the encoder's
    for line in ("patch_embedding: {channels: channels, dim: d_model, patch: patch}", "class_token: {dim: d_model}",
                 "position_embedding: {max_len: n_tokens, dim: d_model}"):
        w.layer(line)
    w.block("repeat: n_layers", ("layernorm: {dim: d_model}",
                                 f"attention: {{dim: d_model, heads: n_heads, q_bias: {bias}, k_bias: {bias}, "
                                 f"v_bias: {bias}, o_bias: true}}",
                                 "layernorm: {dim: d_model}",
                                 f"mlp: {{dim: d_model, hidden: d_ff, activation: {act}, bias: true}}"))
    w.layer("layernorm: {dim: d_model}")
    w.layer("pool_tokens: {mode: first}   # the class token")
    pooled = c.get("pooler_output_size")  # the pooler's, read either way: the classifier has none
    c.expect("pooler_act", ("tanh", None))
    if c.head == "classifier":
        w.layer(f"linear: {{dim: d_model, out: {_labels(c, w)}, bias: true}}")
        return
    if pooled is not None and pooled != c.int("hidden_size"):
        w.dim("d_pool", c.int("pooler_output_size"), "pooler_output_size")
    w.layer(f"linear: {{dim: d_model, out: {'d_pool' if 'd_pool' in w.keys else 'd_model'}, bias: true}}   # pooler")
    w.layer("activation: {function: tanh}")
