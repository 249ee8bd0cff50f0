"""The Hugging Face route: build the `transformers` model from its config (random weights,
meta device, no downloads) and let PyTorch count it — the strongest check there is,
against an implementation nobody on this team wrote.

Attention runs in eager mode (explicit matmuls the counter sees) and MoE experts through
`batched_mm` (the default grouped_mm kernel has no counter formula: every expert would
count 0; the eager path cannot run on meta). Whatever the library computes that a spec
does not describe is listed by module, with its size and why — never absorbed by a
tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import SpecError
from ..hf import ENCODERS, EOS_CLASSIFIERS, SEQ2SEQ, Config, head_of
from ..hfneutral import dropout

# FLOPs the libraries spend outside the architecture proper, by module name suffix.
EXPLAINED = {
    "rotary_emb": "rotary helper: inv_freq @ positions, an outer product written as a matmul "
    "(2 x batch x rotary_dim/2 x seq_len, once per forward)",
}


@dataclass
class HFCounts:
    model: str
    params: int
    active: int  # the parameters a token runs: all but the experts its router does not pick
    forward: int | None  # None: built on meta and not run (parameters only)
    explained: dict[str, tuple[int, str]] = field(default_factory=dict)  # module -> (FLOPs, why)
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # symcost layer type -> (params, FLOPs)


# The symcost layer type of a transformers module, by the module's attribute name (then its
# class name), for verify --hf's per-type rows. A module inside one already typed counts with it.
NAMES = {
    "embedding": ("embed_tokens", "wte", "word_embeddings", "embed_in", "embeddings"),
    "position_embedding": ("wpe", "embed_positions", "position_embeddings"),
    "cross_attention": ("encoder_attn", "crossattention", "EncDecAttention"),
    "attention": ("self_attn", "attn", "self_attention", "attention", "SelfAttention"),
    "mlp": ("mlp", "feed_forward", "ffn", "shared_mlp", "mlps"),
    "lm_head": ("lm_head", "proj_out", "embed_out", "head"),
    "linear": ("linear",),  # Zamba2's hybrid layers' own
}
# module classes a kind is found by, by the end of the class name
CLASSES = (("Mamba2Mixer", "mamba2"), ("GatedDeltaNet", "gated_deltanet"), ("NemotronHAttention", "attention"),
           ("NemotronHMLP", "mlp"), ("Lfm2ShortConv", "short_conv"), ("DeltaAttention", "kda"),
           ("LightningAttention", "lightning_attention"), ("RecurrentBlock", "rg_lru"),
           ("RecurrentGemmaAttention", "attention"), ("RecurrentGemmaMlp", "mlp"),
           ("RwkvSelfAttention", "rwkv_time_mix"), ("RwkvFeedForward", "rwkv_channel_mix"), ("BambaMixer", "mamba2"),
           ("FalconH1Mixer", "mamba2"), ("HybridMambaLayer", "mamba2"), ("Zamba2MambaMixer", "mamba2"),
           ("MambaMixer", "mamba"), ("MoeBlock", "moe"), ("MoE", "moe"), ("Moe", "moe"), ("RMSNorm", "rmsnorm"),
           ("LayerNorm", "layernorm"),
           ("RotaryEmbedding", "rotary"), ("DeepseekV4Attention", "compressed_attention"),
           ("HyperConnection", "hyper_connection"), ("HyperHead", "hyper_head"), ("xLSTMLayer", "mlstm"))


# experts modules that run every expert on every token, each row weighted 0 where the router did not pick it
DENSE_EXPERTS = ("Llama4TextExperts",)


def dense_experts(model, counts, root: str) -> dict[str, tuple[int, str]]:
    """The share of such a module's FLOPs that runs the experts a token's router did not pick: (E - k) / E
    of it, which the spec (top-k routing, as a real engine runs) does not count."""
    out = {}
    for name, module in model.named_modules():
        if type(module).__name__ in DENSE_EXPERTS and (flops := sum(counts.get(f"{root}.{name}", {}).values())):
            E, k = module.num_experts, model.config.get_text_config().num_experts_per_tok
            out[name] = (flops * (E - k) // E, f"transformers' {type(module).__name__} runs all {E} experts on every "
                         f"token (weight 0 where its router did not pick it); a token runs {k}")
    return out


def is_experts(module) -> bool:
    """transformers' module holding a MoE layer's experts (MixtralExperts, …), by its class name."""
    return type(module).__name__.endswith("Experts")


def active_params(model, cfg) -> int:
    """The model's parameters less, in each MoE layer, the experts top_k does not run: of the
    experts module's parameters, (experts - top_k) / experts (top_k as the config names it:
    num_experts_per_tok, or DBRX's ffn_config.moe_top_k)."""
    top_k = getattr(cfg, "num_experts_per_tok", None) or getattr(getattr(cfg, "ffn_config", None), "moe_top_k", None)
    if isinstance(top_k, list):  # one a layer (Hunyuan's moe_topk), the same for each where the importer reads it
        top_k = top_k[0]
    active = sum(p.numel() for p in model.parameters())
    for m in model.modules():
        if is_experts(m) and getattr(m, "num_experts", None):
            held = sum(p.numel() for p in m.parameters())
            active -= held - top_k * held // m.num_experts
    return active


def kind_of(name: str, module) -> str | None:
    if type(module).__name__ == "ModuleList":  # a list of sublayers (LongCat-Flash's two attentions): its items
        return None
    path = name.split(".")
    # an item of a list goes by the list's name (self_attn.0)
    attribute, cls = path[-2] if path[-1].isdigit() and len(path) > 1 else path[-1], type(module).__name__
    kind = next((k for k, names in NAMES.items() if attribute in names), None)
    by_class = next((k for end, k in CLASSES if cls.endswith(end)), None)
    if kind == "mlp" and (by_class == "moe" or any(is_experts(m) for m in module.modules())):
        return "moe"  # a MoE block where a layer's MLP sits
    if kind in ("attention", "mlp") and by_class is not None:
        return by_class  # a layer of its own kind where attention or an MLP sits (Kimi Linear's KDA, RWKV's mixing)
    return kind or by_class


def by_kind(model, counter=None) -> dict[str, tuple[int, int]]:
    """Parameters (each tensor once, where it is first named) and forward FLOPs (0 without a
    counter) per symcost layer type, over the outermost modules kind_of types."""
    typed: dict[str, str] = {}
    for name, module in model.named_modules():
        if name and not any(name.startswith(t + ".") for t in typed) and (kind := kind_of(name, module)):
            typed[name] = kind
    owner = lambda name: next((t for t in typed if name == t or name.startswith(t + ".")), None)
    out: dict[str, list[int]] = {}
    for name, p in model.named_parameters():
        if (t := owner(name)) is not None:
            out.setdefault(typed[t], [0, 0])[0] += p.numel()
    root = type(model).__name__
    for name, ops in counter.get_flop_counts().items() if counter else ():
        if name.startswith(root + ".") and name[len(root) + 1:] in typed:
            out.setdefault(typed[name[len(root) + 1:]], [0, 0])[1] += sum(ops.values())
    return {k: (v[0], v[1]) for k, v in out.items()}


# the auto class for each head import-hf writes (hf.head_of)
AUTO = {"lm": "AutoModelForCausalLM", "mlm": "AutoModelForMaskedLM", "classifier": "AutoModelForSequenceClassification",
        "none": "AutoModel"}


def config_object(family: str, config: dict):
    """transformers' config class read from `config`. A config written by transformers 4.x may
    hold an integer where transformers 5 checks for a float (`initializer_factor: 1`): such a
    field is read as that float, the same number; its dtype is left out (the build sets its own);
    anything else it refuses is one SpecError."""
    import re

    import transformers
    from huggingface_hub.errors import StrictDataclassError

    def floats(value, key):  # `key`'s integer values, at any depth, as floats
        if isinstance(value, dict):
            return {k: float(v) if k == key and type(v) is int else floats(v, key) for k, v in value.items()}
        return value

    def has_int(value, key) -> bool:
        return isinstance(value, dict) and any((k == key and type(v) is int) or has_int(v, key) for k, v in value.items())

    def without_dtype(value):  # a dtype changes no count, and 4.x wrote it as "torch.float32", which 5 cannot read
        if isinstance(value, dict):
            return {k: without_dtype(v) for k, v in value.items() if k not in ("torch_dtype", "dtype")}
        return value

    data = without_dtype({k: v for k, v in config.items() if k != "model_type"})
    for _ in range(100):
        try:
            return transformers.CONFIG_MAPPING[family].from_dict(data)
        except StrictDataclassError as e:
            found = re.search(r"Field '(\w+)' expected float, got int", str(e))
            if found is None or not has_int(data, found[1]):
                raise SpecError(f"transformers {transformers.__version__} cannot read this config: "
                                f"{str(e).splitlines()[0]}") from None
            data = floats(data, found[1])
    raise SpecError("transformers cannot read this config: too many fields it checks otherwise")


def build(config: dict, device: str = "meta", cfg=None):
    """The model with the head the config's `architectures` names, as import-hf reads it (from
    `cfg`, transformers' config object, when given)."""
    import transformers

    family = config.get("model_type")
    head = head_of(Config(config, "config"), family)
    cfg = cfg or config_object(family, config)
    if head == "classifier" and hasattr(cfg, "pad_token_id") and cfg.pad_token_id is None:
        cfg.pad_token_id = 0  # it finds each sequence's last token by its padding (a batch needs one); no count changes
    seq2seq = "AutoModelForSpeechSeq2Seq" if family == "whisper" else "AutoModelForSeq2SeqLM"
    name = (seq2seq if family in SEQ2SEQ and head == "lm" else None) or (
        "AutoModelForImageClassification" if family == "vit" and head == "classifier" else AUTO[head])
    auto = getattr(transformers, name)
    options = {"attn_implementation": "eager"}
    with torch.device(device):
        try:
            return auto.from_config(cfg, experts_implementation="batched_mm", **options)
        except TypeError:  # a model without experts takes no experts_implementation
            return auto.from_config(cfg, **options)


def _counted(config: dict, device: str):
    """The model built on `device`, and its counts before any run: parameters and active ones."""
    cfg = config_object(config.get("model_type"), config)
    model = build(config, device, cfg)
    return model, HFCounts(type(model).__name__, sum(p.numel() for p in model.parameters()),
                           active_params(model, cfg), None)


def parameters(config: dict) -> HFCounts:
    """The model built on meta and not run: its parameters, active ones and per layer type."""
    model, counts = _counted(config, "meta")
    return replace(counts, by_kind=by_kind(model))


# families whose linear layers read a 2-d attention mask's values (transformers' create_recurrent_attention_mask):
# measured with the causal mask written out, which they pass by
MASKED_4D = ("deepseek_v4", "qwen3_next", "qwen3_5_text", "qwen3_5_moe_text", "nemotron_h", "lfm2", "falcon_h1",
             "kimi_linear", "minimax", "zamba2")


def measure(config: dict, batch: int, seq_len: int | None, src_len: int | None = None, device: str = "meta",
            image_size: int | None = None) -> HFCounts:
    model, counts = _counted(config, device)
    # no parameter asks for gradients: a view of one taken by the model's forward (DBRX's experts)
    # would otherwise require grad without a grad_fn, which FlopCounterMode's module tracker refuses
    model.eval().requires_grad_(False)
    ids = lambda n: torch.zeros(batch, n, dtype=torch.long, device=device)
    family = config.get("model_type")
    vision = config.get("vision_config") or config  # CLIP's image tower, else the image model itself
    pixels = lambda: torch.zeros(batch, vision.get("num_channels", 3), image_size, image_size, device=device)
    if family == "clip":  # a text and an image per pair
        inputs = {"input_ids": ids(seq_len), "pixel_values": pixels()}
    elif family == "gemma3":  # a prompt whose first mm_tokens_per_image tokens are the image's
        prompt = ids(seq_len)
        prompt[:, :config.get("mm_tokens_per_image", 256)] = config.get("image_token_index", 262144)
        inputs = {"input_ids": prompt, "pixel_values": pixels(), "use_cache": False,
                  "attention_mask": torch.ones(batch, seq_len, dtype=torch.long, device=device)}
    elif image_size is not None:
        inputs = {"pixel_values": pixels()}
    elif family in EOS_CLASSIFIERS and head_of(Config(config, "config"), family) == "classifier":
        source = ids(src_len)  # its head reads each sequence's last <eos>, found by value
        source[:, -1] = config.get("eos_token_id", 2 if family == "bart" else 1)
        # the decoder's input is the source shifted right: as long as the source, whatever it holds
        inputs = {"input_ids": source, "decoder_input_ids": ids(src_len), "use_cache": False}
    elif family == "whisper":  # log-mel frames
        inputs = {"input_features": torch.zeros(batch, config.get("num_mel_bins", 80), src_len, device=device),
                  "decoder_input_ids": ids(seq_len), "use_cache": False,  # a mask: else it reads positions' values
                  "decoder_attention_mask": torch.ones(batch, seq_len, dtype=torch.long, device=device)}
    elif family in SEQ2SEQ:
        inputs = {"input_ids": ids(src_len), "decoder_input_ids": ids(seq_len), "use_cache": False}
    elif family in ENCODERS:
        inputs = {"input_ids": ids(seq_len)}
    elif family in MASKED_4D:  # a 2-d mask is read by value (to skip the linear layers' padding); a 4-d one is not
        mask = torch.ones(batch, 1, seq_len, seq_len, dtype=torch.bool, device=device).tril()
        inputs = {"input_ids": ids(seq_len), "attention_mask": mask, "use_cache": False}
    elif family == "mamba2":  # no attention to mask; given a mask, transformers checks whether it is all ones
        inputs = {"input_ids": ids(seq_len), "use_cache": False}
    else:  # with no attention mask, transformers looks for packed sequences, reading values (not on meta)
        mask = torch.ones(batch, seq_len, dtype=torch.long, device=device)
        inputs = {"input_ids": ids(seq_len), "attention_mask": mask, "use_cache": False}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    root = type(model).__name__
    by_module = counter.get_flop_counts()
    explained = {
        name[len(root) + 1:]: (sum(ops.values()), why)
        for name, ops in by_module.items()
        for suffix, why in EXPLAINED.items()
        if name.endswith("." + suffix) and sum(ops.values())
    }
    explained |= dense_experts(model, by_module, root)
    return replace(counts, forward=counter.get_total_flops(), explained=explained, by_kind=by_kind(model, counter))


def saved_bytes(config: dict, batch: int, seq_len: int, *, dtype=torch.float32, seed: int = 0) -> dict[str, int]:
    """Bytes the `transformers` model keeps for backward in one training forward with `labels`
    (real CPU tensors, eager attention, every dropout probability 0), each storage once,
    parameters and buffers excluded; by the model's top-level module (embed_tokens, layers.0, …)."""
    import transformers

    from .saved import Ledger

    torch.manual_seed(seed)
    config = {**config, **{k: 0.0 for k in config if dropout(k)}}
    cfg = config_object(config["model_type"], config)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").to(dtype).train()
    ledger = Ledger(model)
    where: list[str] = []

    def pack(t):
        ledger.add(t, where[-1] if where else "loss")
        return t

    hooks = []
    for name, module in model.named_modules():
        depth = name.split(".")
        if name and (len(depth) == 2 or (len(depth) == 3 and depth[1] in ("layers", "h"))):  # model.layers.0
            hooks.append(module.register_forward_pre_hook(lambda m, a, name=name: where.append(name) and None))
            hooks.append(module.register_forward_hook(lambda m, a, o: where.pop() and None))
    ids = torch.randint(0, cfg.vocab_size, (batch, seq_len))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(input_ids=ids, labels=ids, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return dict(ledger.per_path)
