"""Models of two towers: CLIP (an image and a text encoder, projected and scored) and Gemma 3 with
images (a SigLIP encoder whose pooled tokens join Gemma 3's text model)."""

from __future__ import annotations

import math

from .llama import _decoder
from .reader import Config, _act
from .writer import Writer, _encoder


def _vision_dims(vision: Config, w: Writer, patch: int) -> None:
    """An image tower's dims from its nested vision_config (CLIP's and SigLIP's defaults but the patch)."""
    for dim, key, default in (("d_vision", "hidden_size", 768), ("n_vision_layers", "num_hidden_layers", 12),
                              ("n_vision_heads", "num_attention_heads", 12), ("d_vision_ff", "intermediate_size", 3072),
                              ("channels", "num_channels", 3), ("image_size", "image_size", 224),
                              ("patch", "patch_size", patch)):
        w.dim(dim, vision.int(key, default), f"vision_config.{key}")


def _tower_layer(d: str, heads: str, ff: str, act: str, causal: bool = False) -> tuple[str, ...]:
    """A pre-LN transformer layer with biases, as CLIP's and SigLIP's towers have."""
    return (f"layernorm: {{dim: {d}}}", f"attention: {{dim: {d}, heads: {heads}, {'causal: true, ' if causal else ''}"
            "bias: true}", f"layernorm: {{dim: {d}}}", f"mlp: {{dim: {d}, hidden: {ff}, activation: {act}, bias: true}}")


def _clip(c: Config, w: Writer) -> None:
    """CLIPModel: a ViT image encoder (class token, pre- and post-LayerNorm, no patch bias) and a
    causal text stream, each pooled (the class token; the end-of-text token, the last of a full
    context) and projected without bias to projection_dim, scored by the contrastive head."""
    text, vision = c.sub("text_config"), c.sub("vision_config")
    text.expect("model_type", ("clip_text_model", None))
    vision.expect("model_type", ("clip_vision_model", None))
    w.dim("d_text", text.int("hidden_size", 512), "text_config.hidden_size")
    w.dim("n_text_layers", text.int("num_hidden_layers", 12), "text_config.num_hidden_layers")
    w.dim("n_text_heads", text.int("num_attention_heads", 8), "text_config.num_attention_heads")
    w.dim("d_text_ff", text.int("intermediate_size", 2048), "text_config.intermediate_size")
    w.dim("vocab", text.int("vocab_size", 49408), "text_config.vocab_size")
    w.dim("max_text", text.int("max_position_embeddings", 77), "text_config.max_position_embeddings")
    w.dim("seq_len", text.int("max_position_embeddings", 77), "text tokens: a full context")
    _vision_dims(vision, w, patch=32)
    w.dim("proj", c.int("projection_dim", 512), "projection_dim: both towers' embeddings")
    w.dim("batch", 1, "text-image pairs per pass")
    w.dim("n_patches", "(image_size // patch) ** 2 + 1", "patches and the class token")
    for tower in (text, vision):
        tower.expect("projection_dim", (c.int("projection_dim", 512), None))  # transformers' copy of it
    c.get("logit_scale_init_value")  # the temperature's initial value: one parameter either way
    for config in (c, text, vision):
        config.flag("tie_word_embeddings", True)  # CLIP has no head whose weights could be tied
    text_act, vision_act = _act(text, "hidden_act", "quick_gelu"), _act(vision, "hidden_act", "quick_gelu")

    _encoder(w, ("patch_embedding: {channels: channels, dim: d_vision, patch: patch, bias: false}",
                 "class_token: {dim: d_vision}", "position_embedding: {max_len: n_patches, dim: d_vision}",
                 "layernorm: {dim: d_vision}   # pre_layrnorm"), "image_size", image=True)
    w.block("repeat: n_vision_layers", _tower_layer("d_vision", "n_vision_heads", "d_vision_ff", vision_act), 3)
    for line in ("pool_tokens: {mode: first}   # the class token", "layernorm: {dim: d_vision}   # post_layernorm",
                 "linear: {dim: d_vision, out: proj}   # visual_projection"):
        w.layer(line, 3)
    w.layer("embedding: {vocab: vocab, dim: d_text}")
    w.layer("position_embedding: {max_len: max_text, dim: d_text}")
    w.block("repeat: n_text_layers", _tower_layer("d_text", "n_text_heads", "d_text_ff", text_act, causal=True))
    for line in ("layernorm: {dim: d_text}   # final_layer_norm", "pool_tokens: {mode: last}   # the end-of-text token",
                 "linear: {dim: d_text, out: proj}   # text_projection", "contrastive: {dim: proj}"):
        w.layer(line)


def _gemma3(c: Config, w: Writer) -> None:
    """Gemma 3 with images (Gemma3ForConditionalGeneration): a SigLIP encoder (patch convolution
    with bias, learned positions, pre-LN layers, a final LayerNorm) whose patch grid is averaged
    to mm_tokens_per_image tokens, RMS-normed and projected to the text width, then put in place
    of as many image tokens of the prompt; the text model is gemma3_text's."""
    text, vision = c.sub("text_config"), c.sub("vision_config")
    text.expect("model_type", ("gemma3_text", None))
    vision.expect("model_type", ("siglip_vision_model", None))
    vision.expect("vision_use_head", (False,), True)  # SigLIP's attention-pooling head: Gemma 3 has none
    text.head = c.head
    _decoder(text, w, "gemma3_text")
    if c.flag("tie_word_embeddings", True) != text.data.get("tie_word_embeddings", True):
        raise c.error("tie_word_embeddings", "differs from text_config.tie_word_embeddings; the importer does not "
                      "know which one the model follows")
    _vision_dims(vision, w, patch=16)
    tokens = c.int("mm_tokens_per_image", 256)
    side = math.isqrt(tokens)
    patches = vision.int("image_size", 224) // vision.int("patch_size", 16)
    if side * side != tokens or patches % side:
        raise c.error("mm_tokens_per_image", f"{tokens} tokens are not a square grid that {patches} x {patches} "
                      "patches pool to evenly")
    w.dim("image_side", side, f"sqrt(mm_tokens_per_image {tokens}): image tokens per side")
    w.dim("n_patches", "(image_size // patch) ** 2", "patches per image")
    for key in ("boi_token_index", "eoi_token_index", "image_token_index"):
        c.get(key)  # token ids
    w.note("an image's tokens attend to each other both ways (a bidirectional block in the causal mask): no count "
           "changes under pytorch, which multiplies the whole score matrix; under `full` the spec counts that block "
           "as causal")
    act = _act(vision, "hidden_act", "gelu_pytorch_tanh")
    text_layers, w.layers = w.layers, []
    _encoder(w, ("patch_embedding: {channels: channels, dim: d_vision, patch: patch}",
                 "position_embedding: {max_len: n_patches, dim: d_vision}"), "image_size", image=True)
    w.block("repeat: n_vision_layers", _tower_layer("d_vision", "n_vision_heads", "d_vision_ff", act), 3)
    for line in ("layernorm: {dim: d_vision}   # post_layernorm",
                 "pool_grid: {kernel: (image_size // patch) // image_side}   # to mm_tokens_per_image",
                 "rmsnorm: {dim: d_vision}   # mm_soft_emb_norm",
                 "linear: {dim: d_vision, out: d_model}   # mm_input_projection_weight"):
        w.layer(line, 3)
    after = next(i for i, line in enumerate(text_layers) if line.startswith("  - embedding:")) + 1
    text_layers[after:after] = ["  - insert_encoder: {dim: d_model}   # the image tokens of the prompt"]
    w.layers += text_layers
