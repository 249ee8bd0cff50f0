"""hypothesis strategies the tests share (no test imports another test): sizes for each shipped
architecture, drawn small enough for PyTorch to build at every draw."""

from fractions import Fraction

from hypothesis import strategies as st


@st.composite
def heads_and_width(draw, even_head_dim=False):
    """(n_heads, n_kv_heads dividing it, head_dim, d_model = heads x head_dim)."""
    heads = draw(st.integers(1, 4))
    kv = draw(st.sampled_from([k for k in range(1, heads + 1) if heads % k == 0]))
    head_dim = draw(st.integers(1, 4)) * 2 if even_head_dim else draw(st.integers(1, 8))
    return heads, kv, head_dim, heads * head_dim

@st.composite
def transformer_sizes(draw):
    heads, _, _, d_model = draw(heads_and_width())
    seq_len = draw(st.integers(1, 10))
    sizes = dict(d_model=d_model, n_heads=heads, n_layers=draw(st.integers(1, 3)), vocab=draw(st.integers(1, 50)),
                 seq_len=seq_len, max_pos=seq_len + draw(st.integers(0, 5)), batch=draw(st.integers(1, 3)))
    if draw(st.booleans()):
        sizes["d_ff"] = draw(st.integers(1, 40))  # a derived dim, overridden
    return sizes

@st.composite
def megatron_sizes(draw):
    heads, _, _, d_model = draw(heads_and_width())
    seq_len = draw(st.integers(1, 10))
    return dict(d_model=d_model, n_heads=heads, n_layers=draw(st.integers(1, 3)), vocab=draw(st.integers(1, 50)),
                seq_len=seq_len, max_pos=seq_len + draw(st.integers(0, 5)), batch=draw(st.integers(1, 3)),
                dropout=draw(st.sampled_from([0, Fraction(1, 10), Fraction(1, 3), Fraction(9, 10)])))

@st.composite
def llama_sizes(draw):
    heads, kv, _, d_model = draw(heads_and_width(even_head_dim=True))  # rotary needs an even head dim
    return dict(d_model=d_model, n_heads=heads, n_kv_heads=kv, n_layers=draw(st.integers(1, 3)),
                d_ff=draw(st.integers(1, 40)), vocab=draw(st.integers(1, 50)), seq_len=draw(st.integers(1, 10)),
                batch=draw(st.integers(1, 3)))

@st.composite
def mixtral_sizes(draw):
    sizes = draw(llama_sizes())
    experts = draw(st.integers(1, 6))
    return sizes | dict(n_experts=experts, top_k=draw(st.integers(1, experts)))


@st.composite
def mistral_sizes(draw):
    return draw(llama_sizes()) | dict(window=draw(st.integers(1, 12)))


@st.composite
def deepseek_sizes(draw):
    experts = draw(st.integers(1, 6))
    n_layers = draw(st.integers(2, 4))
    return dict(
        d_model=draw(st.integers(1, 12)), n_heads=draw(st.integers(1, 3)), q_lora_rank=draw(st.integers(1, 6)),
        kv_lora_rank=draw(st.integers(1, 6)), qk_nope_dim=draw(st.integers(1, 4)),
        qk_rope_dim=2 * draw(st.integers(1, 3)), v_head_dim=draw(st.integers(1, 4)), d_ff=draw(st.integers(1, 12)),
        d_expert=draw(st.integers(1, 6)), n_experts=experts, top_k=draw(st.integers(1, experts)),
        n_shared=draw(st.integers(1, 2)), vocab=draw(st.integers(1, 20)), seq_len=draw(st.integers(1, 8)),
        batch=draw(st.integers(1, 2)), n_layers=n_layers, n_dense=draw(st.integers(1, n_layers - 1)),
    )


@st.composite
def deepseek_v4_sizes(draw):
    """DeepSeek-V4-Flash's 43 layers (window-only, CSA and HCA) over 1 to 3 streams, at tiny sizes: entries of 2 to 4
    tokens (CSA) and 3 to 5 (HCA), sequences closing none, one or several."""
    experts, heads = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    return dict(d_model=draw(st.integers(1, 6)), n_heads=heads, head_dim=4, rope_dim=2, q_lora_rank=draw(st.integers(1, 3)),
                window=draw(st.integers(2, 4)), o_groups=draw(st.sampled_from([1, 2])), o_lora_rank=draw(st.integers(1, 2)),
                n_index_heads=draw(st.integers(1, 2)), d_index=2, index_topk=draw(st.integers(1, 3)),
                n_hc=draw(st.integers(1, 3)), sinkhorn=draw(st.integers(1, 3)), d_expert=draw(st.integers(1, 3)),
                n_experts=experts, top_k=draw(st.integers(1, experts)), n_shared=1, vocab=draw(st.integers(1, 12)),
                csa_rate=draw(st.integers(2, 4)), hca_rate=draw(st.integers(3, 5)), seq_len=draw(st.integers(1, 9)),
                batch=draw(st.integers(1, 2)))


@st.composite
def gemma2_sizes(draw):
    heads, kv, head_dim, _ = draw(heads_and_width(even_head_dim=True))
    return dict(d_model=draw(st.integers(1, 12)), n_heads=heads, n_kv_heads=kv, d_head=head_dim,
                d_ff=draw(st.integers(1, 20)), vocab=draw(st.integers(1, 30)), n_layers=2 * draw(st.integers(1, 2)),
                window=draw(st.integers(1, 6)), seq_len=draw(st.integers(1, 10)), batch=draw(st.integers(1, 2)))


@st.composite
def local_moe_sizes(draw, local: str, period: int):
    """A MoE decoder whose local layers (`local`: its window or chunk dim) come in a period of `period`
    layers with a global one: gpt-oss (a window, 2), Llama 4 Scout (chunks, 4)."""
    heads, kv, head_dim, _ = draw(heads_and_width(even_head_dim=True))
    experts = draw(st.integers(1, 5))
    return {"d_model": draw(st.integers(1, 12)), "n_heads": heads, "n_kv_heads": kv, "d_head": head_dim,
            "d_ff": draw(st.integers(1, 12)), "n_experts": experts, "top_k": draw(st.integers(1, experts)),
            "vocab": draw(st.integers(1, 30)), "n_layers": period * draw(st.integers(1, 2)), local: draw(st.integers(1, 6)),
            "seq_len": draw(st.integers(1, 10)), "batch": draw(st.integers(1, 2))}


@st.composite
def qwen3_next_sizes(draw):
    """Qwen3-Next: Gated DeltaNet layers (key heads serving value heads, key size >= 2) and gated attention
    with rotary on part of each head, three to one, MoE layers with a shared expert; sequences of one to
    two chunks of 64."""
    heads, kv, head_dim, _ = draw(heads_and_width(even_head_dim=True))
    key_heads, experts = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    return {"d_model": draw(st.integers(1, 8)), "n_heads": heads, "n_kv_heads": kv, "d_head": head_dim,
            "d_rot": draw(st.sampled_from(range(2, head_dim + 1, 2))), "n_k_heads": key_heads,
            "n_v_heads": key_heads * draw(st.integers(1, 2)), "d_k": draw(st.integers(2, 3)), "d_v": draw(st.integers(1, 3)),
            "d_conv": draw(st.integers(1, 4)), "n_experts": experts, "top_k": draw(st.integers(1, experts)),
            "d_expert": draw(st.integers(1, 6)), "d_shared": draw(st.integers(1, 6)), "vocab": draw(st.integers(1, 20)),
            "n_layers": 4, "seq_len": draw(st.integers(1, 70)), "batch": draw(st.integers(1, 2))}


@st.composite
def kimi_linear_sizes(draw):
    """Kimi Linear: KDA layers (head size >= 2, chunks of 2 to 5 tokens) and latent attention without positions, a
    dense first layer then MoE layers with a shared expert; sequences of one to three chunks and a part."""
    experts = draw(st.integers(1, 4))
    return dict(d_model=draw(st.integers(1, 8)), n_heads=draw(st.integers(1, 2)), kv_lora_rank=draw(st.integers(1, 4)),
                qk_nope_dim=draw(st.integers(1, 3)), qk_rope_dim=draw(st.integers(1, 3)),
                v_head_dim=draw(st.integers(1, 3)), n_kda_heads=draw(st.integers(1, 2)), d_kda_head=draw(st.integers(2, 3)),
                d_conv=draw(st.integers(1, 4)), d_ff=draw(st.integers(1, 6)), d_expert=draw(st.integers(1, 4)),
                n_experts=experts, top_k=draw(st.integers(1, experts)), n_shared=draw(st.integers(1, 2)),
                n_groups=draw(st.integers(1, 2)), chunk=draw(st.integers(2, 5)), vocab=draw(st.integers(1, 20)),
                seq_len=draw(st.integers(1, 12)), batch=draw(st.integers(1, 2)))


@st.composite
def transformer_base_sizes(draw):
    heads, _, _, d_model = draw(heads_and_width())
    return dict(d_model=d_model, n_heads=heads, n_layers=draw(st.integers(1, 2)), d_ff=draw(st.integers(1, 20)),
                vocab=draw(st.integers(1, 30)), src_len=draw(st.integers(1, 9)), seq_len=draw(st.integers(1, 9)),
                batch=draw(st.integers(1, 2)))


@st.composite
def resnet_sizes(draw):
    return dict(image_size=draw(st.integers(1, 70)), w=draw(st.integers(1, 4)), classes=draw(st.integers(1, 9)),
                batch=draw(st.integers(1, 2)), **{f"n{i}": draw(st.integers(2, 3)) for i in range(1, 5)})


@st.composite
def vit_sizes(draw):
    heads, _, _, d_model = draw(heads_and_width())
    patch = draw(st.integers(1, 8))
    return dict(image_size=draw(st.integers(patch, 40)), patch=patch, d_model=d_model, n_heads=heads,
                n_layers=draw(st.integers(1, 2)), d_ff=draw(st.integers(1, 20)), classes=draw(st.integers(1, 9)),
                batch=draw(st.integers(1, 2)))


@st.composite
def lstm_sizes(draw):
    return dict(vocab=draw(st.integers(1, 30)), d_embed=draw(st.integers(1, 8)), hidden=draw(st.integers(1, 8)),
                n_layers=draw(st.integers(1, 3)), seq_len=draw(st.integers(1, 8)), batch=draw(st.integers(1, 3)))


@st.composite
def mlp_sizes(draw):
    return dict(d_in=draw(st.integers(1, 30)), hidden=draw(st.integers(1, 20)), n_hidden=draw(st.integers(2, 4)),
                classes=draw(st.integers(1, 10)), batch=draw(st.integers(1, 8)), seq_len=draw(st.integers(1, 3)))


@st.composite
def mamba_sizes(draw):
    return dict(d_model=draw(st.integers(1, 8)), n_layers=draw(st.integers(1, 2)), d_inner=draw(st.integers(1, 8)),
                d_state=draw(st.integers(1, 4)), d_conv=draw(st.integers(1, 4)), dt_rank=draw(st.integers(1, 3)),
                vocab=draw(st.integers(1, 20)), seq_len=draw(st.integers(1, 6)), batch=draw(st.integers(1, 2)))


@st.composite
def mamba2_sizes(draw):
    d = draw(st.integers(1, 6))
    return dict(d_model=d, n_layers=draw(st.integers(1, 2)), d_head=draw(st.sampled_from([h for h in range(1, 2 * d + 1)
                                                                                        if 2 * d % h == 0])),
                d_state=draw(st.integers(2, 4)), d_conv=draw(st.integers(1, 4)), chunk=draw(st.integers(2, 5)),
                vocab=draw(st.integers(1, 20)), seq_len=draw(st.integers(1, 12)), batch=draw(st.integers(1, 2)))


@st.composite
def zamba2_sizes(draw):
    """Zamba2-2.7B's layout (54 layers, its shared blocks at fixed places, so the last Mamba-2 run is n_layers less
    52): the shared attention's heads dividing 2 x d_model, kv heads dividing them, Mamba-2 heads dividing
    d_inner and groups dividing those."""
    d = draw(st.integers(1, 4))
    divisors = lambda n: [k for k in range(1, n + 1) if n % k == 0]
    heads, mamba = draw(st.sampled_from(divisors(2 * d))), draw(st.sampled_from(divisors(2 * d)))
    return dict(d_model=d, n_heads=heads, n_kv_heads=draw(st.sampled_from(divisors(heads))),
                d_ff=draw(st.integers(1, 6)), adapter_rank=draw(st.integers(1, 3)), n_mamba_heads=mamba,
                n_groups=draw(st.sampled_from(divisors(mamba))), d_state=draw(st.integers(2, 3)),
                d_conv=draw(st.integers(1, 4)), chunk=draw(st.integers(2, 5)), vocab=draw(st.integers(1, 20)),
                n_layers=draw(st.integers(53, 55)), seq_len=draw(st.integers(1, 10)), batch=draw(st.integers(1, 2)))


@st.composite
def clip_sizes(draw):
    text_heads, _, _, d_text = draw(heads_and_width())
    vision_heads, _, _, d_vision = draw(heads_and_width())
    patch = draw(st.integers(1, 6))
    return dict(d_text=d_text, n_text_heads=text_heads, n_text_layers=draw(st.integers(1, 2)),
                d_text_ff=draw(st.integers(1, 12)), vocab=draw(st.integers(1, 30)), seq_len=(n := draw(st.integers(1, 8))),
                max_text=draw(st.integers(n, 10)),
                d_vision=d_vision, n_vision_heads=vision_heads, n_vision_layers=draw(st.integers(1, 2)),
                d_vision_ff=draw(st.integers(1, 12)), image_size=draw(st.integers(patch, 20)), patch=patch,
                proj=draw(st.integers(1, 8)), batch=draw(st.integers(1, 3)))


# One strategy per shipped architecture; test_every_architecture_has_a_strategy keeps it so.
STRATEGIES = {
    "transformer": transformer_sizes(),
    "megatron_gpt": megatron_sizes(),
    "llama": llama_sizes(),
    "mixtral": mixtral_sizes(),
    "mistral": mistral_sizes(),
    "deepseek_v3": deepseek_sizes(),
    "deepseek_v4_flash": deepseek_v4_sizes(),
    "gemma2": gemma2_sizes(),
    "gpt_oss": local_moe_sizes("window", 2),
    "llama4_scout": local_moe_sizes("chunk", 4),
    "qwen3_next": qwen3_next_sizes(),
    "kimi_linear": kimi_linear_sizes(),
    "transformer_base": transformer_base_sizes(),
    "resnet50": resnet_sizes(),
    "vit_b16": vit_sizes(),
    "clip": clip_sizes(),
    "lstm": lstm_sizes(),
    "mlp": mlp_sizes(),
    "mamba": mamba_sizes(),
    "mamba2": mamba2_sizes(),
    "zamba2": zamba2_sizes(),
}


# Numbers an attacker or a careless user writes where a positive finite number belongs: each must
# be refused in one line or give a finite answer
HOSTILE_NUMBERS = st.one_of(
    st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -1.0, 0, 0.0, True, False, "80", "1e3", None,
                     10**30, -(10**30), 1e-300, [], {}]),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**40), 10**40),
)


# fine-tunes of architectures/llama.yaml (finetune.py): LoRA on drawn targets with dropout and extra trainable
# kinds, freeze with drawn trainable kinds, DoRA, QLoRA in both 4-bit formats (with or without a compute dtype)
# and LLM.int8
FINETUNES = st.one_of(
    st.builds(lambda r, targets, p, extra: {"method": "lora", "rank": r, "targets": targets, "trainable": extra,
                                            **({"dropout": p} if p else {})},
              st.integers(1, 8),
              st.one_of(st.just("all-linear"), st.lists(st.sampled_from(
                  ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]),
                  min_size=1, max_size=4, unique=True)),
              st.sampled_from([0, 0.1]),
              st.lists(st.sampled_from(["embedding", "rmsnorm", "lm_head"]), max_size=2, unique=True)),
    st.builds(lambda extra: {"method": "freeze", "trainable": extra},
              st.lists(st.sampled_from(["embedding", "rmsnorm", "attention", "mlp", "lm_head"]), min_size=1, max_size=3,
                       unique=True)),
    st.builds(lambda r: {"method": "dora", "rank": r}, st.integers(1, 8)),
    st.builds(lambda r, targets, quant, double, compute: {"method": "qlora", "rank": r, "targets": targets,
                                                          "quant": quant, "double_quant": double,
                                                          **({"compute_dtype": compute} if compute and quant != "int8"
                                                             else {})},
              st.integers(1, 8), st.sampled_from(["all-linear", ["q_proj", "v_proj"], ["down_proj", "lm_head"]]),
              st.sampled_from(["nf4", "fp4", "int8"]), st.booleans(), st.sampled_from([None, "bf16"])),
)


def rotates_with_a_gradient(finetune: dict, layers: int) -> bool:
    """Whether some rotated query or key of architectures/llama.yaml with `layers` layers needs a gradient:
    where none does, PyTorch keeps no rotary tables, which symcost still counts (components/rotary.py:
    a known over-count)."""
    trains = set(finetune.get("trainable", []))
    targets = "" if finetune["method"] == "freeze" else finetune.get("targets", "all-linear")
    adapted = {"q_proj", "k_proj", "v_proj"} if targets == "all-linear" else set(targets) - {"lm_head"}
    if trains & {"embedding", "rmsnorm", "attention"} or adapted & {"q_proj", "k_proj"}:
        return True
    return layers >= 2 and bool(adapted or "mlp" in trains)  # the next layer's attention passes a gradient back
