"""import-hf: a Hugging Face `config.json` -> a symcost spec, with the config's values as
dims under symcost's names, so that a user starts from a real model and edits from there.

Reads only the JSON (no `transformers`, no downloads). Each family says which config
fields it understands; a field that could change the architecture and is not understood
— an unknown key, or a known key with a value the importer cannot express — is an error
naming the field, never a silently wrong spec. Fields that change no count (dropouts,
epsilons, rope scaling, token ids, router loss weights…) are data in hfneutral; they are
accepted and listed as ignored.

The nineteen Llama-like families are data: a `Decoder` each in DECODERS (which norm, which bias
flags, qk norms, MoE kind, window pattern, parallel or post-norm layout, notes), read by one
template; the others (GPT-2, BERT, T5, Falcon, Mamba, Whisper, …) have a writer each.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import SpecError
from .hfneutral import dropout, neutral

class Config:
    """A config's fields, remembering which were read, so that what was not can be refused."""

    def __init__(self, data: dict, source: str, places: dict | None = None, prefix: tuple[str, ...] = ()) -> None:
        self.data, self.source, self.read, self.places, self.prefix = data, source, set(), places or {}, prefix
        self.head = "lm"  # the model's head (see head_of)
        self.nested: list[Config] = []  # the objects `sub` opened, whose unread fields `unread` reports too
        self.unused: set[str] = set()  # fields the family's model never reads, whatever their value

    def error(self, key: str, message: str) -> SpecError:
        """An error at the field's line and column in the file, when the file's text was given
        (a nested field's: its top-level field's)."""
        line, column = self.places.get(self.prefix[0] if self.prefix else key, (None, None))
        return SpecError(message, file=self.source, line=line, column=column, path=self.prefix + (key,))

    def sub(self, key: str) -> Config:
        """A nested config object (DBRX's attn_config), read and refused field by field as this one."""
        value = self.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"expected an object, got {value!r}")
        self.nested.append(Config(value, self.source, self.places, self.prefix + (key,)))
        return self.nested[-1]

    def get(self, key: str, default=None):
        self.read.add(key)
        value = self.data.get(key, default)
        return default if value is None else value

    def int(self, key: str, default=None) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(key, f"expected a positive integer, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def expect(self, key: str, allowed, default=None):
        """A field whose value the importer must understand; anything else is refused."""
        value = self.get(key, default)
        try:
            known = value in allowed
        except TypeError:  # a list or an object, where a name or a number is expected
            known = False
        if not known:
            raise self.error(key, f"{value!r} is not supported by the importer (it understands {sorted(map(str, allowed))})")
        return value

    def unread(self) -> list[str]:
        """The fields not read that change no count (ignored), nested ones as `attn_config.attn_pdrop`;
        any other unread field is refused."""
        unread = sorted(k for k in self.data if k not in self.read)
        unknown = [k for k in unread if not neutral(k, self.data[k]) and k not in self.unused]
        if unknown:
            raise self.error(unknown[0], "a config field the importer does not understand; it may change the "
                             "architecture, so no spec is written (symcost never writes a silently wrong one)")
        return unread + [f"{n.prefix[-1]}.{k}" for n in self.nested for k in n.unread()]


CLIPPED = "q, k and v are clamped to clip_qkv (elementwise, not written: no count under pytorch)"
SCALED = ("the embeddings are multiplied by sqrt(d_model) ({}one elementwise multiply per token and feature, not "
          "written: no count under pytorch)")
ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_tanh",
               "quick_gelu": "quick_gelu",
               "gelu_fast": "gelu_tanh", "relu": "relu"}


class Writer:
    """Builds the YAML text: dims with the config field each came from, then layers."""

    def __init__(self, name: str, source: str, description: str) -> None:
        # strings written by YAML's own emitter, double-quoted: a `: ` or a newline in a
        # config's name cannot change the spec's structure
        self.head = [f"# Imported by `symcost import-hf` from {_quoted(source)}.", f"name: {_quoted(name)}",
                     f"description: {_quoted(description)}", f"source: {_quoted(source)}", "dims:"]
        self.dims: list[str] = []
        self.layers: list[str] = []
        self.keys: dict[str, str] = {}  # dim -> the config field its note starts with

    def note(self, text: str) -> None:
        """A line at the top of the spec: what the model computes that the spec does not write."""
        import textwrap

        self.head[1:1] = textwrap.wrap(text, 96, initial_indent="# NB: ", subsequent_indent="#     ")

    def dim(self, name: str, value, note: str) -> str:
        self.dims.append(f"  {name}: {value}".ljust(36) + f"  # {note}")
        self.keys[name] = re.match(r"\w*", note).group(0)
        return name

    def layer(self, line: str, indent: int = 1) -> None:
        self.layers.append("  " * indent + "- " + line)

    def block(self, head: str, lines, indent: int = 1, fields: tuple[str, ...] = ()) -> None:
        """A container (`repeat: n_layers`, `encoder: src_len`) with its other `fields`
        (`shared: true`), holding `lines` as its layers."""
        self.layer(head, indent)
        self.layers += ["  " * (indent + 1) + line for line in (*fields, "layers:")]
        for line in lines:
            self.layer(line, indent + 2)

    def text(self) -> str:
        return "\n".join(self.head + self.dims + ["layers:"] + self.layers) + "\n"


def _quoted(text: str) -> str:
    import yaml

    return yaml.safe_dump(text, default_style='"', allow_unicode=True, width=float("inf")).strip()


def _flow(fields: dict) -> str:
    return "{" + ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in fields.items()) + "}"


def _act(c: Config, key: str = "hidden_act", default: str = "silu", read_as: dict[str, str] | None = None) -> str:
    """The activation `key` names; `read_as` holds legacy values the family's model replaces."""
    value = c.expect(key, ACTIVATIONS, default)
    return ACTIVATIONS[(read_as or {}).get(value, value)]


# -- decoder-only families ----------------------------------------------------------------

@dataclass(frozen=True)
class Decoder:
    """A Llama-like family as data: what its config fields mean for the one template, _decoder.
    A flag is (config field, its default); every switch here is read from the config."""

    norm: str = "rmsnorm: {dim: d_model}"
    act: tuple[str, str] = ("hidden_act", "silu")
    act_read_as: tuple[tuple[str, str], ...] = ()  # legacy values the model replaces (Gemma's "gelu": tanh's)
    tied: bool = False  # tie_word_embeddings' default
    attention_bias: tuple[str, bool] | None = ("attention_bias", False)  # every projection's bias
    qkv_bias: tuple[str, bool] | bool = False  # q, k and v only: a flag, or always
    mlp_bias: tuple[str, bool] | str | None = None  # a flag, or "attention": the attention's
    gated: bool = True
    qk_norm: bool | str = False  # attention's qk_norm: per head (Qwen3), "full" (OLMo 2)
    moe: str | None = None  # "experts": intermediate_size is each expert's; "routed": moe_intermediate_size
    shared_expert: bool = False  # and a gated shared expert of shared_expert_intermediate_size (Qwen2-MoE)
    windows: str | None = None  # "optional": sliding_window when set; "never": use_sliding_window refused;
    # "alternate": Gemma 2's local and global layers; "five_one": Gemma 3's five local, then a global one
    parallel: bool | str = False  # attention and MLP on one norm (Cohere), or when this flag says so (StableLM)
    post: bool = False  # each norm inside its branch's residual, after it (OLMo 2)
    post_norms: bool = False  # a norm after each branch too (Gemma 2 and 3)
    partial_rotary: float | None = None  # rotary on this part of each head unless the config says (StableLM)
    refuse: tuple[tuple[str, tuple, object], ...] = ()  # (field, values understood, default)
    notes: tuple[str, ...] = ()  # work not written (NOTES), named at the top of the spec
    read: tuple[str, ...] = ()  # fields read and not used (Gemma 1's hidden_activation beside hidden_act)
    unused: tuple[str, ...] = ()  # fields this family's transformers model never reads: listed as ignored


def _granite_note(c: Config) -> str:
    scales = [k for k in ("embedding_multiplier", "residual_multiplier", "attention_multiplier", "logits_scaling")
              if c.get(k) is not None]
    return (f"Granite's scalar multipliers ({', '.join(scales)}) are not written: each is one elementwise multiply "
            "(no count under pytorch; a few per token under `full`); attention_multiplier replaces 1/sqrt(head_dim)")


def _logit_scale_note(c: Config) -> str:
    c.get("logit_scale")
    return "the logits are multiplied by logit_scale (one elementwise multiply per logit, not written: no count under pytorch)"


# what a family computes that its spec does not write: a note at the top of the spec, or None
NOTES: dict[str, Callable[[Config], str | None]] = {
    "clip_qkv": lambda c: CLIPPED if c.get("clip_qkv") is not None else None,
    "embedding_scale": lambda c: SCALED.format(""),
    "logit_scale": _logit_scale_note,
    "granite": _granite_note,
}
GEMMA = dict(act=("hidden_activation", "gelu_pytorch_tanh"), tied=True, notes=("embedding_scale",),
             refuse=(("use_bidirectional_attention", (False, None), None),))
LAYERNORM = "layernorm: {dim: d_model}"
DECODERS: dict[str, Decoder] = {
    "llama": Decoder(mlp_bias=("mlp_bias", False)),
    "mistral": Decoder(attention_bias=None, windows="optional"),
    "mixtral": Decoder(attention_bias=None, windows="optional", moe="experts"),
    "phi3": Decoder(attention_bias=None, windows="optional", unused=("attention_bias",)),  # Phi-3's files; bias=False
    "qwen2": Decoder(attention_bias=None, qkv_bias=True, windows="never"),
    "qwen2_moe": Decoder(attention_bias=None, qkv_bias=("qkv_bias", True), windows="never", moe="routed",
                         shared_expert=True),
    "qwen3": Decoder(qk_norm=True, windows="never"),
    "qwen3_moe": Decoder(qk_norm=True, windows="never", moe="routed"),
    # Gemma 1's files say "gelu", which GemmaConfig replaces by the tanh approximation they were trained with
    "gemma": Decoder(**GEMMA | dict(act=("hidden_act", "gelu_pytorch_tanh"), act_read_as=(("gelu", "gelu_pytorch_tanh"),),
                                    read=("hidden_activation",))),
    # Gemma 2's and 3's published configs carry Gemma 1's hidden_act (their MLP reads hidden_activation) and,
    # early ones, sliding_window_size beside sliding_window: transformers reads neither
    "gemma2": Decoder(**GEMMA, windows="alternate", post_norms=True, unused=("hidden_act", "sliding_window_size")),
    "gemma3_text": Decoder(**GEMMA, windows="five_one", post_norms=True, qk_norm=True,
                           unused=("hidden_act", "sliding_window_size")),
    # StarCoder2's files carry its training code's switches (activation_function, mlp_type, norm_type); its
    # transformers model reads hidden_act and always builds LayerNorms and an ungated MLP
    "starcoder2": Decoder(norm=LAYERNORM, act=("hidden_act", "gelu_pytorch_tanh"), tied=True,
                          attention_bias=("use_bias", True), mlp_bias="attention", gated=False, windows="optional",
                          unused=("activation_function", "mlp_type", "norm_type")),
    "stablelm": Decoder(norm=LAYERNORM, attention_bias=None, qkv_bias=("use_qkv_bias", False),
                        parallel="use_parallel_residual", partial_rotary=0.25, refuse=(("qk_layernorm", (False,), False),)),
    "olmo": Decoder(norm="layernorm: {dim: d_model, affine: false}", notes=("clip_qkv",)),
    "olmo2": Decoder(qk_norm="full", post=True),
    "olmoe": Decoder(qk_norm="full", moe="experts", notes=("clip_qkv",)),
    "granite": Decoder(mlp_bias=("mlp_bias", False), notes=("granite",)),
    "granitemoe": Decoder(moe="experts", notes=("granite",)),
    "cohere": Decoder(norm="layernorm: {dim: d_model, bias: false}", tied=True, parallel=True, notes=("logit_scale",),
                      refuse=(("use_qk_norm", (False,), False),)),  # a LayerNorm of (heads, head_dim): not written
}


def _decoder(c: Config, family: str, w: Writer) -> None:
    """Llama and its relatives: one template, read as DECODERS[family] says."""
    f = DECODERS[family]
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
        "experts": " (each expert's)", "routed": " (unused by MoE layers)"}.get(f.moe, ""))
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("seq_len", c.int("max_position_embeddings", 4096), "max_position_embeddings: one full-context pass")
    w.dim("batch", 1, "sequences per pass")
    act = _act(c, *f.act, dict(f.act_read_as))
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
    if f.qk_norm:
        attention["qk_norm"] = f.qk_norm
    mlp = {"dim": d, "hidden": "d_ff", "activation": act, "gated": f.gated}
    if f.mlp_bias is not None:
        mlp["bias"] = attention["bias"] if f.mlp_bias == "attention" else c.flag(*f.mlp_bias)

    windows = _windows(c, f.windows, w)
    norm = f.norm
    feed = f"mlp: {_flow(mlp)}" if f.moe is None else f"moe: {_flow(_moe(c, f, w, act))}"
    post = [norm] if f.post_norms else []

    def block(a: dict) -> list[str]:
        return [norm, f"attention: {_flow(a)}", *post, norm, feed, *post]

    w.layer(f"embedding: {{vocab: vocab, dim: {d}}}")
    if f.partial_rotary is not None:  # rotary on part of each head
        head_dim = c.int("hidden_size") // heads if head_dim is None else head_dim
        fraction = _rotary_fraction(c, "partial_rotary_factor", f.partial_rotary)
        w.dim("d_rot", int(head_dim * fraction), f"partial_rotary_factor {fraction} x head dim {head_dim}, rounded down")
        w.layer("rotary: {dim: d_rot}")
    else:
        w.layer("rotary: {dim: d_head}")
    if f.parallel is True or f.parallel and c.flag(f.parallel, False):
        a = dict(attention, residual=False)
        _parallel_block(w, norm, f"attention: {_flow(a)}", f"mlp: {_flow(dict(mlp, residual=False))}", separate=False)
    elif f.windows == "alternate":  # local, then global
        w.block("repeat: n_layers / 2   # a local (sliding-window) layer, then a global one",
                block(attention | {"window": "window"}) + block(attention))
    elif f.post:  # x + norm(attn(x)), then h + norm(mlp(h)): each norm inside its residual
        w.block("repeat: n_layers", ())
        w.layers += ["      " + line for line in (
            "- residual:", f"    - attention: {_flow(dict(attention, residual=False))}", f"    - {norm}",
            "- residual:", f"    - mlp: {_flow(dict(mlp, residual=False))}", f"    - {norm}")]
    elif f.windows == "five_one":  # five local layers, then a global one; the layers left over are local
        local = block(attention | {"window": "window"})
        w.block("repeat: n_layers // 6   # five local (sliding-window) layers, then a global one",
                local * 5 + block(attention))
        if c.int("num_hidden_layers") % 6:
            w.block("repeat: n_layers - 6 * (n_layers // 6)   # the local layers after the last global one", local)
    else:
        w.block("repeat: n_layers", block(attention | ({"window": "window"} if windows else {})))
    w.layer(norm)
    _decoder_head(c, w, tied)


def _windows(c: Config, kind: str | None, w: Writer) -> bool:
    """Whether layers use a sliding window (and declare its dim), as Decoder.windows says."""
    if kind == "never":
        if c.flag("use_sliding_window", False):
            raise c.error("use_sliding_window", "per-layer sliding windows (max_window_layers) are not supported by the importer")
        c.get("sliding_window"), c.get("max_window_layers"), c.get("layer_types")
        return False
    if kind == "alternate":
        types = c.get("layer_types")
        expected = ["sliding_attention", "full_attention"] * (c.int("num_hidden_layers") // 2)
        if types is not None and list(types) != expected:
            raise c.error("layer_types", "only alternating sliding/full layers, starting with sliding, are supported")
        if c.int("num_hidden_layers") % 2:
            raise c.error("num_hidden_layers", "alternating layers need an even number of layers")
        w.dim("window", c.int("sliding_window", 4096), "sliding_window")
        return True
    if kind == "five_one":
        n = c.int("num_hidden_layers")
        expected = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(n)]
        types = c.get("layer_types")
        if types is not None and list(types) != expected:
            raise c.error("layer_types", "only Gemma 3's pattern, five sliding layers then a full one, is supported")
        c.expect("sliding_window_pattern", (6, None)), c.expect("_sliding_window_pattern", (6, None))
        w.dim("window", c.int("sliding_window", 4096), "sliding_window")
        return True
    if kind == "optional" and c.get("sliding_window") is not None:
        w.dim("window", c.int("sliding_window"), "sliding_window")
        return True
    return False


def _moe(c: Config, f: Decoder, w: Writer, act: str) -> dict:
    experts_key = "num_local_experts" if "num_local_experts" in c.data else "num_experts"
    w.dim("n_experts", c.int(experts_key), experts_key)
    c.read.update({"num_local_experts", "num_experts"})
    w.dim("top_k", c.int("num_experts_per_tok"), "num_experts_per_tok")
    moe = {"dim": "d_model", "experts": "n_experts", "top_k": "top_k", "activation": act, "gated": True}
    if f.moe == "experts":
        return moe | {"hidden": "d_ff"}
    c.expect("decoder_sparse_step", (1,), 1)
    if c.get("mlp_only_layers", []):
        raise c.error("mlp_only_layers", "dense layers among the MoE ones are not supported by the importer")
    w.dim("d_expert", c.int("moe_intermediate_size"), "moe_intermediate_size")
    moe["hidden"] = "d_expert"
    if f.shared_expert:
        w.dim("d_shared", c.int("shared_expert_intermediate_size"), "shared_expert_intermediate_size")
        moe |= {"shared_experts": 1, "shared_hidden": "d_shared", "shared_gate": True}
    return moe


def _deepseek(c: Config, w: Writer) -> None:
    """DeepSeek-V2 and V3: multi-head latent attention, dense layers first, then MoE layers with
    shared experts (V2-Lite without a query LoRA)."""
    w.dim("d_model", c.int("hidden_size"), "hidden_size")
    w.dim("n_layers", c.int("num_hidden_layers"), "num_hidden_layers")
    w.dim("n_dense", c.int("first_k_dense_replace"), "first_k_dense_replace: dense layers first")
    heads = c.int("num_attention_heads")
    w.dim("n_heads", heads, "num_attention_heads")
    c.expect("num_key_value_heads", (heads, None))  # MLA: every head has its own keys
    for key, name in (("kv_lora_rank", "kv_lora_rank"), ("qk_nope_head_dim", "qk_nope_dim"),
                      ("qk_rope_head_dim", "qk_rope_dim"), ("v_head_dim", "v_head_dim")):
        w.dim(name, c.int(key), key)
    c.get("qk_head_dim"), c.get("head_dim")  # derived in the config: nope + rope, and rope
    q_lora = c.get("q_lora_rank")
    if q_lora is not None:
        w.dim("q_lora_rank", c.int("q_lora_rank"), "q_lora_rank")
    w.dim("d_ff", c.int("intermediate_size"), "intermediate_size (dense layers)")
    w.dim("d_expert", c.int("moe_intermediate_size"), "moe_intermediate_size")
    w.dim("n_experts", c.int("n_routed_experts"), "n_routed_experts")
    w.dim("top_k", c.int("num_experts_per_tok"), "num_experts_per_tok")
    w.dim("n_shared", c.int("n_shared_experts"), "n_shared_experts: one MLP of n_shared x d_expert")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("seq_len", min(c.int("max_position_embeddings", 4096), 4096), "a 4096-token pass (max_position_embeddings is larger)")
    w.dim("batch", 1, "sequences per pass")
    c.expect("moe_layer_freq", (1, None))
    c.expect("mlp_bias", (False, None))  # DeepSeek-V2's configs say so
    act = _act(c)
    bias = c.flag("attention_bias", False)
    mla = {"dim": "d_model", "heads": "n_heads", "kv_lora_rank": "kv_lora_rank", "qk_nope_dim": "qk_nope_dim",
           "qk_rope_dim": "qk_rope_dim", "v_head_dim": "v_head_dim", "bias": bias, "causal": True}
    if q_lora is not None:
        mla["q_lora_rank"] = "q_lora_rank"
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


def _rotary_fraction(c: Config, key: str, default: float) -> float:
    """The part of each head that rotary rotates: `key` at the top level (older configs), else
    `partial_rotary_factor` inside rope_parameters or rope_scaling (transformers 5)."""
    if key in c.data:
        value = c.get(key)
    else:
        nested = [c.data[k]["partial_rotary_factor"] for k in ("rope_parameters", "rope_scaling")
                  if isinstance(c.data.get(k), dict) and "partial_rotary_factor" in c.data[k]]
        value = nested[0] if nested else default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise c.error(key if key in c.data else "rope_parameters", f"expected a fraction in (0, 1], got {value!r}")
    return value


def _parallel_block(w: Writer, norm: str, attention: str, mlp: str, separate: bool) -> None:
    """`repeat: n_layers` of x + attn(ln x) + mlp(ln x) (or, `separate`, a norm per branch): a
    residual block around a residual block whose shortcut is the MLP."""
    branches = ([norm] * separate + [attention], [norm] * separate + [mlp])
    w.block("repeat: n_layers", ())
    w.layers += ["      " + line for line in (
        "- residual:", *([f"    - {norm}   # one norm read by both branches"] * (not separate)),
        "    - residual:", *(f"        - {x}" for x in branches[0]),
        "      shortcut:", *(f"        - {x}" for x in branches[1]))]


def _parallel(c: Config, w: Writer, family: str) -> None:
    """GPT-NeoX (Pythia), Phi-2 and GPT-J: attention and MLP read the same input and both add to
    the stream (x + attn(ln x) + mlp(ln x); NeoX with a norm each), written as a residual block
    around a residual block whose shortcut is the MLP. Rotary turns part of each head."""
    names = {"gptj": ("n_embd", "n_layer", "n_head", "n_inner", "n_positions")}.get(
        family, ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings"))
    hidden, layers, heads_key, inner, positions = names
    w.dim("d_model", c.int(hidden), hidden)
    w.dim("n_layers", c.int(layers), layers)
    heads = c.int(heads_key)
    w.dim("n_heads", heads, heads_key)
    if family == "phi":
        w.dim("n_kv_heads", c.int("num_key_value_heads", heads), "num_key_value_heads")
    d_ff = c.get(inner)
    w.dim("d_ff", "4 * d_model" if d_ff is None else c.int(inner), inner + (" unset: 4 x hidden" if d_ff is None else ""))
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("seq_len", c.int(positions, 2048), f"{positions}: one full-context pass")
    w.dim("batch", 1, "sequences per pass")
    head_dim = c.int(hidden) // heads
    if family == "gptj":
        rot = c.int("rotary_dim", head_dim) if c.get("rotary_dim") is not None else head_dim
        note = "rotary_dim"
        c.unused.add("rotary")  # gpt-j-6b's file says rotary: true; transformers' GPT-J always rotates
    else:
        key = "rotary_pct" if family == "gpt_neox" else "partial_rotary_factor"
        fraction = _rotary_fraction(c, key, 0.25 if family == "gpt_neox" else 0.5)
        rot, note = int(head_dim * fraction), f"{key} {fraction} x head dim {head_dim}, rounded down"
    w.dim("d_rot", rot, note)
    act = _act(c, "activation_function" if family == "gptj" else "hidden_act", "gelu" if family == "gpt_neox" else "gelu_new")
    bias = {"gpt_neox": c.flag("attention_bias", True), "phi": True, "gptj": False}[family]
    if family == "phi":
        c.expect("qk_layernorm", (False, None))
    if family == "gpt_neox":
        c.expect("is_decoder", (True, False, None))  # transformers' own flag, not the architecture's
    separate = family == "gpt_neox" and c.flag("use_parallel_residual", True)
    sequential = family == "gpt_neox" and not separate
    tied = c.flag("tie_word_embeddings", False)
    kv = ", kv_heads: n_kv_heads" if family == "phi" else ""
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
        w.layer(f"lm_head: {{dim: d_model, vocab: vocab, tied: {str(tied).lower()}, bias: {str(family != 'gpt_neox').lower()}}}")
    elif c.head == "classifier":
        w.layer(f"linear: {{dim: d_model, out: {_labels(c, w)}}}   # score: logits of every token")


def _alias(c: Config, *keys: str) -> str:
    """The first of a field's names (current, then legacy) that the config uses; the others are read too."""
    c.read.update(keys)
    return next((k for k in keys if c.data.get(k) is not None), keys[0])


def _trunk(c: Config, w: Writer, hidden: tuple[str, ...], layers: tuple[str, ...], heads: tuple[str, ...]) -> int:
    """d_model, n_layers and n_heads from the first of each field's names the config uses (_alias); the heads."""
    sizes = {}
    for name, keys in (("d_model", hidden), ("n_layers", layers), ("n_heads", heads)):
        key = _alias(c, *keys)
        sizes[name] = c.int(key)
        w.dim(name, sizes[name], key)
    return sizes["n_heads"]


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
    if new:
        w.dim("n_kv_heads", c.int("num_kv_heads", heads), "num_kv_heads (new_decoder_architecture)")
    else:
        c.get("num_kv_heads")  # read by the new architecture only
        w.dim("n_kv_heads", 1 if multi_query else heads, "multi_query: one key/value head" if multi_query
              else "multi_query false: a key/value head per head")
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
    w.dim("d_model", c.int("hidden_size"), "hidden_size")
    w.dim("n_layers", c.int("num_hidden_layers"), "num_hidden_layers")
    w.dim("n_heads", c.int("num_attention_heads"), "num_attention_heads")
    w.dim("d_ff", c.int("ffn_dim"), "ffn_dim")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("max_pos", c.int("max_position_embeddings"), "max_position_embeddings (the table has 2 more rows)")
    w.dim("seq_len", c.int("max_position_embeddings"), "max_position_embeddings: one full-context pass")
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


CLS = "pool_tokens: {mode: first}   # the first token ([CLS])"


def _encoder_head(c: Config, w: Writer, mlm_act: str, table: str = "d_model", pool_act: str = "tanh",
                  bare_pooler: bool = True, pool: str = CLS) -> None:
    """A BERT-like model's head: the masked-LM one (a transform to the token table's width, its norm,
    the tied decoder with its own bias; no pooler), else the `pool`ed token through a dense layer and
    pool_act (BERT's pooler, which the bare model has too; DistilBERT's pre-classifier, which only
    its classifier has; BART's and T5's classification heads, on the last <eos>), then the
    classifier of num_labels."""
    if c.head == "mlm":
        for line in (f"linear: {{dim: d_model, out: {table}, bias: true}}", f"activation: {{function: {mlm_act}}}",
                     f"layernorm: {{dim: {table}}}", f"lm_head: {{dim: {table}, vocab: vocab, tied: true, bias: true}}"):
            w.layer(line)
        return
    if c.head == "none" and not bare_pooler:
        return
    for line in (pool, "linear: {dim: d_model, out: d_model, bias: true}", f"activation: {{function: {pool_act}}}"):
        w.layer(line)
    if c.head == "classifier":
        w.layer(f"linear: {{dim: d_model, out: {_labels(c, w)}, bias: true}}")


def _dims(c: Config, w: Writer, rows) -> None:
    """Dims read from positive integer config fields: (dim, field[, note]), the note the field by default."""
    for name, key, *note in rows:
        w.dim(name, c.int(key), note[0] if note else key)


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
    for line in ("embedding: {vocab: vocab, dim: d_embed}", "position_embedding: {max_len: max_pos, dim: d_embed}",
                 "token_type_embedding: {types: types, dim: d_embed}", "layernorm: {dim: d_embed}",
                 "linear: {dim: d_embed, out: d_model, bias: true}   # embedding_hidden_mapping_in"):
        w.layer(line)
    w.block("repeat: n_layers", _encoder_layer(act), fields=("shared: true",))
    _encoder_head(c, w, act, table="d_embed")


def _vit(c: Config, w: Writer) -> None:
    """ViT: a patch convolution, a class token and learned positions, pre-LN blocks, a final norm;
    ViTModel's pooler (dense + tanh on the class token) or ViTForImageClassification's classifier."""
    w.dim("image_size", c.int("image_size"), "image_size")
    w.dim("patch", c.int("patch_size"), "patch_size")
    w.dim("channels", c.int("num_channels", 3), "num_channels")
    w.dim("d_model", c.int("hidden_size"), "hidden_size")
    w.dim("n_layers", c.int("num_hidden_layers"), "num_hidden_layers")
    w.dim("n_heads", c.int("num_attention_heads"), "num_attention_heads")
    w.dim("d_ff", c.int("intermediate_size"), "intermediate_size")
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
    _decoder(text, "gemma3_text", w)
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


def _t5(c: Config, w: Writer) -> None:
    """T5ForConditionalGeneration: a shared table, encoder and decoder stacks with relative
    position biases, RMS norms (T5LayerNorm), no biases."""
    w.dim("d_model", c.int("d_model"), "d_model")
    w.dim("n_layers", c.int("num_layers"), "num_layers (encoder)")
    w.dim("n_dec_layers", c.int("num_decoder_layers", c.int("num_layers")), "num_decoder_layers")
    w.dim("n_heads", c.int("num_heads"), "num_heads")
    w.dim("d_kv", c.int("d_kv"), "d_kv: per-head size")
    w.dim("d_ff", c.int("d_ff"), "d_ff")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("buckets", c.int("relative_attention_num_buckets"), "relative_attention_num_buckets")
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


def _dbrx(c: Config, w: Writer) -> None:
    """DBRX: fused qkv with grouped kv heads, bias-free LayerNorms, 16 experts (top-4) of gated
    SiLU MLPs; attention and expert settings in the nested attn_config and ffn_config."""
    attn, ffn = c.sub("attn_config"), c.sub("ffn_config")
    w.dim("d_model", c.int("d_model"), "d_model")
    w.dim("n_layers", c.int("n_layers"), "n_layers")
    w.dim("n_heads", c.int("n_heads"), "n_heads")
    w.dim("n_kv_heads", attn.int("kv_n_heads", 1), "attn_config.kv_n_heads")
    c.get("num_key_value_heads")  # transformers' copy of kv_n_heads
    w.dim("d_ff", ffn.int("ffn_hidden_size"), "ffn_config.ffn_hidden_size: each expert's")
    w.dim("n_experts", ffn.int("moe_num_experts"), "ffn_config.moe_num_experts")
    w.dim("top_k", ffn.int("moe_top_k"), "ffn_config.moe_top_k")
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
    norm, first = "rmsnorm: {dim: d_model}", 0
    for is_attention, run in itertools.groupby(attention_at):
        count = len(list(run))
        where = f"layer {first}" if count == 1 else f"layers {first} to {first + count - 1}"
        w.block(f"repeat: {count}   # {where}: {'attention' if is_attention else 'Mamba-2'}",
                (norm, attention if is_attention else mixer, norm, feed))
        first += count
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
    positions = c.int("max_position_embeddings", 4096)
    w.dim("seq_len", min(positions, 4096), "a 4096-token pass" if positions > 4096
          else "max_position_embeddings: one full-context pass")
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
    attn = c.get("attn_layer_indices") or []
    if not isinstance(attn, list) or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < layers
                                         for i in attn):
        raise c.error("attn_layer_indices", f"expected a list of layer indices from 0 to {layers - 1}, got {attn!r}")
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
    import math

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
    w.dim("seq_len", min(c.int("max_position_embeddings", 4096), 4096), "a 4096-token pass (no position table)")
    w.dim("batch", 1, "sequences per pass")
    act = _act(c)
    if act != "silu":
        raise c.error("hidden_act", f"{c.get('hidden_act')!r}: Jamba's Mamba layers are written with silu")
    for key in ("use_mamba_kernels", "use_mambapy", "use_associative_scan"):
        c.get(key)  # which implementation runs the same scan
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


def _stacks(c: Config, w: Writer) -> str:
    """An encoder-decoder's two stacks as BART and Whisper configure them: width, depth, heads and
    MLP width of each (the layerdrop of neither), the embedding scale noted; their activation."""
    w.dim("d_model", c.int("d_model"), "d_model")
    for name, key in (("n_layers", "encoder_layers"), ("n_dec_layers", "decoder_layers"),
                      ("n_heads", "encoder_attention_heads"), ("n_dec_heads", "decoder_attention_heads"),
                      ("d_ff", "encoder_ffn_dim"), ("d_dec_ff", "decoder_ffn_dim")):
        w.dim(name, c.int(key), key)
    for key in ("encoder_layerdrop", "decoder_layerdrop"):  # skipping layers at random in training
        c.expect(key, (0, 0.0), 0.0)
    if c.flag("scale_embedding", False):
        w.note(SCALED.format("scale_embedding: "))
    return _act(c, "activation_function", "gelu")


def _encoder(w: Writer, lines, source: str = "src_len", image: bool = False) -> None:
    """`encoder: src_len` (or, over images, `encoder: image_size` with `image: true`) and the
    layers before its repeat."""
    w.layer(f"encoder: {source}")
    w.layers += ["    image: true"] * image + ["    layers:"]
    for line in lines:
        w.layer(line, 3)


def _whisper(c: Config, w: Writer) -> None:
    """Whisper: an encoder over log-mel frames (two convolutions, the second of stride 2, then
    a position table of max_source_positions rows) and a decoder over tokens, pre-LN layers with
    biases on every projection but the keys', a final LayerNorm in each stack, the head tied to
    the decoder's table. The encoder reads 2 x max_source_positions frames (30 s of audio)."""
    act = _stacks(c, w)
    w.dim("n_mels", c.int("num_mel_bins"), "num_mel_bins")
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("max_src", c.int("max_source_positions"), "max_source_positions: the encoder's position table")
    w.dim("max_tgt", c.int("max_target_positions"), "max_target_positions: the decoder's position table")
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
    w.dim("vocab", c.int("vocab_size"), "vocab_size")
    w.dim("max_pos", c.int("max_position_embeddings"), "max_position_embeddings (each table has 2 more rows)")
    w.dim("src_len", c.int("max_position_embeddings"), "source tokens: max_position_embeddings")
    _target_len(c, w, c.int("max_position_embeddings"), "target tokens: max_position_embeddings")
    w.dim("batch", 1, "sequences per pass")
    c.expect("is_decoder", (False, None))
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


# BART's and T5's …ForSequenceClassification: dense, tanh and out_proj on each sequence's last <eos>
LAST_EOS = "pool_tokens: {mode: last}   # the last <eos> token (the source ends in one)"


def _target_len(c: Config, w: Writer, tokens, note: str) -> None:
    """An encoder-decoder's target tokens; a sequence classifier's decoder reads the source shifted right."""
    if c.head == "classifier":
        w.dim("seq_len", "src_len", "target tokens: the source, shifted right (a classifier's decoder input)")
    else:
        w.dim("seq_len", tokens, note)


def _labels(c: Config, w: Writer) -> str:
    labels = c.get("num_labels")
    if labels is None:
        labels = len(c.get("id2label", {})) or 2  # transformers' own default: two labels
        c.read.add("num_labels")
    if isinstance(labels, bool) or not isinstance(labels, int) or labels <= 0:
        raise c.error("num_labels" if "num_labels" in c.data else "id2label", f"expected a positive number of labels, got {labels!r}")
    return w.dim("n_labels", labels, "num_labels" if "num_labels" in c.data else "id2label: its labels")


def _decoder_head(c: Config, w: Writer, tied: bool) -> None:
    """After the final norm: the LM head, a classifier (…ForSequenceClassification's `score`, on
    every token; the last one's logits are kept), or nothing (the bare …Model)."""
    if c.head == "lm":
        w.layer(f"lm_head: {{dim: d_model, vocab: vocab, tied: {str(tied).lower()}}}")
    elif c.head == "classifier":
        w.layer(f"linear: {{dim: d_model, out: {_labels(c, w)}}}   # score: logits of every token")


# the head a class in `architectures` asks for, by the end of its name (longest first)
HEADS = {"LMHeadModel": "lm", "ForCausalLM": "lm", "ForConditionalGeneration": "lm", "ForMaskedLM": "mlm",
         "ForSequenceClassification": "classifier", "ForImageClassification": "classifier",
         "EncoderModel": "encoder", "Model": "none"}  # T5EncoderModel: the encoder stack alone (none imports it)
HEAD_NAMES = {"lm": "a language-model head", "mlm": "a masked-LM head", "classifier": "a sequence classifier",
              "none": "no head", "encoder": "the encoder alone"}
ENCODERS = ("bert", "roberta", "xlm-roberta", "distilbert", "albert")  # BERT-like: token ids in, no causal mask
SEQ2SEQ = ("t5", "bart", "whisper")  # encoder-decoder: a source (token ids; Whisper's mel frames) and target ids
EOS_CLASSIFIERS = ("bart", "t5")  # their …ForSequenceClassification reads each sequence's last <eos>
FAMILY_HEADS = {**{f: ("none", "mlm", "classifier") for f in ENCODERS},
                "t5": ("lm", "none", "classifier"), "bart": ("lm", "none", "classifier"), "whisper": ("lm", "none"),
                "vit": ("none", "classifier"), "clip": ("none",)}  # the first is the default
DECODER_HEADS = ("lm", "classifier", "none")


def head_of(c: Config, family: str, override: str | None = None) -> str:
    """The head to write: --head, else the one `architectures` names, else the family's default."""
    allowed = FAMILY_HEADS.get(family, DECODER_HEADS)
    if override is not None:
        if override not in allowed:
            raise SpecError(f"--head {override}: {family} models are imported with {', '.join(allowed)}")
        c.get("architectures")
        return override
    classes = c.get("architectures")
    if not classes:
        return allowed[0]
    if not isinstance(classes, list) or not all(isinstance(x, str) for x in classes) or len(set(classes)) > 1:
        raise c.error("architectures", f"expected one class name, got {classes!r}")
    cls = classes[0]
    head = next((h for end, h in HEADS.items() if cls.endswith(end)), None)
    if head is None:
        raise c.error("architectures", f"{cls!r}: a head the importer does not know (it knows class names ending in "
                      f"{', '.join(HEADS)}); give --head")
    if head not in allowed:
        raise c.error("architectures", f"{cls!r} asks for {HEAD_NAMES[head]}, which the importer does not write for "
                      f"{family} ({', '.join(allowed)}); give --head")
    return head


FAMILIES: dict[str, Callable] = {
    "gpt2": _gpt2,
    "gpt_bigcode": lambda c, w: _gpt2(c, w, "gpt_bigcode"),
    "bert": _bert,
    "roberta": lambda c, w: _bert(c, w, "roberta"),
    "xlm-roberta": lambda c, w: _bert(c, w, "xlm-roberta"),
    "distilbert": _distilbert,
    "albert": _albert,
    "opt": _opt,
    "vit": _vit,
    "clip": _clip,
    "gemma3": _gemma3,
    **{f: (lambda family: lambda c, w: _parallel(c, w, family))(f) for f in ("gpt_neox", "phi", "gptj")},
    "t5": _t5,
    "bart": _bart,
    "whisper": _whisper,
    "dbrx": _dbrx,
    "mamba": _mamba,
    "mamba2": _mamba2,
    "bamba": _bamba,
    "granitemoehybrid": _granitemoehybrid,
    "jamba": _jamba,
    "falcon": _falcon,
    "bloom": _bloom,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    **{f: (lambda family: lambda c, w: _decoder(c, family, w))(f) for f in DECODERS},
}


PARTIAL_ROTARY = ("gpt_neox", "phi", "stablelm", "bamba")  # families whose writers read partial_rotary_factor


@dataclass(frozen=True)
class Imported:
    text: str  # the spec
    ignored: list[str]  # the config's fields that change no count, not read


def import_config(data: dict, source: str = "config.json", name: str | None = None, text: str | None = None,
                  head: str | None = None) -> str:
    """The spec text for a config's architecture (see convert)."""
    return convert(data, source, name, text, head).text


def convert(data: dict, source: str = "config.json", name: str | None = None, text: str | None = None,
            head: str | None = None) -> Imported:
    """The spec for a config's architecture (see module doc) with the head `architectures` names
    (or `head`: lm, mlm, classifier, none), and the fields it ignored; with the file's `text`,
    errors name the field's line and column."""
    if not isinstance(data, dict):
        raise SpecError("expected a JSON object (a Hugging Face config.json)", file=source)
    c = Config(data, source, key_places(text) if text is not None else None)
    family = data.get("model_type")
    if not isinstance(family, str) or family not in FAMILIES:
        raise c.error("model_type", f"{family!r} is not supported; supported: {', '.join(sorted(FAMILIES))}")
    w = Writer(name or str(data.get("_name_or_path") or family).replace("/", "-") or family, source,
               f"{family} architecture from its Hugging Face config")
    c.read.update({"model_type", "_name_or_path"})  # read above
    for key in ("rope_parameters", "rope_scaling"):  # frequencies only, unless they rotate part of each head
        factor = data[key].get("partial_rotary_factor") if isinstance(data.get(key), dict) else None
        if family not in PARTIAL_ROTARY and factor not in (None, 1, 1.0):
            raise c.error(key, f"partial_rotary_factor {factor!r}: rotating part of each head is not supported by the "
                          "importer for this family")
    c.head = head_of(c, family, head)
    FAMILIES[family](c, w)
    ignored = c.unread()
    _check_sizes(c, w)
    # (summary_first_dropout is the double-heads models' summary, which no imported head has)
    if trained := [f"{k} {v}" for k in ignored if dropout(k.split(".")[-1]) and not k.startswith("summary_")
                   and _positive(v := _at(data, k))]:
        w.note(f"the config's dropout ({', '.join(trained)}) is not written: activation memory here is that of "
               "p = 0, without dropout's one-byte masks (to count them, add a {rate: …} dim and the layers' "
               "dropout fields, as architectures/megatron_gpt.yaml does)")
    return Imported(w.text(), ignored)


def _at(data: dict, path: str):
    """The value at a dotted path the importer lists (`attn_config.attn_pdrop`)."""
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _positive(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _check_sizes(c: Config, w: Writer) -> None:
    """The spec must hold at its own sizes (heads dividing the width, …) before anyone sees it;
    where it does not, the error is at the config fields the failing constraint is made of."""
    import sympy

    from . import api
    from .evaluate import site_checks

    why = "the config's sizes do not make a valid model: "
    try:
        spec = api.loads(w.text(), name="<import-hf>")
        derivation = api.derive(spec)
    except SpecError as e:
        raise SpecError(why + e.reason, file=c.source) from None
    try:
        api.evaluate(derivation)
    except SpecError as e:
        reason = why + e.reason
        dims = spec.dimset
        checks = [(("dims", d.name), dims.check(d)) for d in dims.items if d.definition is not None]
        checks += [(where + (check.field,), check) for where, check in site_checks(derivation)]
        at = [check for path, check in checks if path == e.path]
        if len(at) > 1:  # a field's own domain and its constraints: the one that fails at these sizes
            values = dims.values()
            at = [check for check in at if check.failure(lambda x: sympy.sympify(x).xreplace(values)) is not None]
        used = at[0].deps(dims.substitution()) if at else []
        keys = sorted({w.keys[d] for d in used if w.keys.get(d) in c.data},  # in the file's order, else by name
                      key=lambda k: (c.places.get(k, (0, 0)), k))
        if not keys:
            raise SpecError(reason, file=c.source) from None
        raise c.error(keys[0], f"{reason} (from {', '.join(keys)})") from None


def locate(config: str | None, model_id: str | None) -> Path:
    """The config.json to read: CONFIG itself, CONFIG/config.json for a model directory, or the
    one in the local Hugging Face cache for --model-id (the snapshot refs/main names, else the
    newest). Nothing is downloaded."""
    import os

    if (config is None) == (model_id is None):
        raise SpecError("give a config.json or a model directory, or --model-id ORG/NAME (one of them)")
    if config is not None:
        path = Path(config)
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise SpecError("a model directory without config.json", file=config)
            return path / "config.json"
        return path
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", model_id) or ".." in model_id:
        raise SpecError(f"--model-id {model_id!r}: expected ORG/NAME, as on the Hub")
    root = Path(os.environ.get("HF_HUB_CACHE") or Path(
        os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
        / "hub")
    repo = root / ("models--" + model_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    snapshots = [repo / "snapshots" / ref.read_text().strip()] if ref.is_file() else []
    snapshots += sorted((repo / "snapshots").glob("*"), key=lambda d: d.stat().st_mtime, reverse=True) if (
        repo / "snapshots").is_dir() else []
    for snapshot in snapshots:
        if (snapshot / "config.json").is_file():
            return snapshot / "config.json"
    raise SpecError(f"--model-id {model_id}: no config.json for it in the local Hugging Face cache ({root}); "
                    "symcost does not download: pass the config.json or the model directory")


def read_config(path: str | Path) -> tuple[dict, str]:
    """A config.json's data and its text."""
    from .source import read_bytes

    try:
        text = read_bytes(path, "a JSON config", "configs").decode("utf-8")
        return json.loads(text), text
    except UnicodeDecodeError as e:
        raise SpecError(f"cannot read: {e}", file=str(path)) from None
    except json.JSONDecodeError as e:
        raise SpecError(f"not JSON: {e.msg}", file=str(path), line=e.lineno, column=e.colno) from None
    except RecursionError:
        raise SpecError("JSON nested too deeply", file=str(path)) from None


def key_places(text: str) -> dict[str, tuple[int, int]]:
    """(line, column) of each key of the top-level JSON object, where it is first written."""
    places: dict[str, tuple[int, int]] = {}
    depth, line, start, i, key_next = 0, 1, 0, 0, False
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line, start = line + 1, i + 1
        elif ch == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if depth == 1 and key_next:
                places.setdefault(json.loads(text[i:j + 1]), (line, i - start + 1))
            key_next, i = False, j
        elif ch in "{[":
            depth += 1
            key_next = ch == "{" and depth == 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 1:
            key_next = True
        i += 1
    return places
