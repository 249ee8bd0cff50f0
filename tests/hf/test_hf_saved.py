"""Saved-for-backward bytes of an imported family against transformers' own model: a small instance with every layer
kind the family mixes, one training forward with its loss (symcost.measure.hf.saved_bytes: eager attention, real CPU
tensors), in fp32 and bf16. The spec's rules are the reference build's (tests/memory, tests/components); where
transformers' code keeps a tensor otherwise, the difference is named here with its bytes, term by term, and the
sum of the terms must close the gap exactly. The same small instances prefill and take a decode step through
transformers' model as the formulas say (their caches and FLOPs)."""

from dataclasses import dataclass
from pathlib import Path

import pytest

import symcost
from symcost.evaluate import dim_values
from symcost.memory import saved_bytes
from symcost.symbols import ACT

torch = pytest.importorskip("torch")
T = pytest.importorskip("transformers")

PAGE = Path(__file__).resolve().parents[2] / "docs" / "memory.md"  # its table of these figures
SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
             vocab_size=500, max_position_embeddings=256)


@dataclass(frozen=True)
class At:
    """The pass the terms are priced at."""

    cfg: dict
    batch: int
    seq_len: int
    act: int  # bytes of an activation: 4 (fp32) or 2 (bf16)

    @property
    def tokens(self) -> int:
        return self.batch * self.seq_len

    @property
    def layers(self) -> int:
        return next(self.cfg[k] for k in ("num_hidden_layers", "n_layer", "num_layers") if self.cfg.get(k))

    @property
    def head(self) -> int:
        return self.cfg.get("head_dim") or self.cfg["hidden_size"] // self.cfg["num_attention_heads"]


# the terms: each a {reason: transformers' bytes minus the reference's}

def mask(x: At, layers: int) -> dict:
    return {"its eager attention adds a float mask, which keeps nothing; the reference keeps one boolean "
            "seq_len x seq_len mask per causal layer": -layers * x.seq_len**2}


def rotary(x: At, width: int, kept: int | None = None, per_sequence: bool = False) -> dict:
    """cos and sin over `width` channels a token, once (or once a sequence), in `kept` bytes (the activations'
    dtype unless given); the reference keeps half of that width each, once, in the activations' dtype."""
    kept, copies = kept or x.act, x.batch if per_sequence else 1
    where = ("fp32" if kept == 4 and x.act == 2 else "its dtype") + (", one pair a sequence" if per_sequence else "")
    return {f"its rotary cos and sin span {width} channels ({where}); the reference's half of them each":
            x.seq_len * width * (2 * copies * kept - x.act)}


def softmax_fp32(x: At, layers: int, heads: int | None = None) -> dict:
    if x.act == 4:  # in fp32 the cast is a no-op
        return {}
    heads = heads or x.cfg["num_attention_heads"]
    return {"its softmax runs in fp32 and keeps those probabilities too": layers * 4 * x.batch * heads * x.seq_len**2}


def norm_cast(x: At, values: int) -> dict:
    """RMSNorms that keep their normalised values cast back to bf16 (for the weight's gradient), `values` a token
    over all of them; nn.RMSNorm, as the reference, keeps them in fp32."""
    if x.act == 4:
        return {}
    return {"its RMSNorm keeps the normalised values cast back to bf16 for the weight's gradient; nn.RMSNorm keeps "
            "them in fp32": -values * x.tokens * 2}


def router(x: At, layers: int, k: int, experts: int, rows_fp32: bool = True) -> dict:
    """Mixtral's router, as Qwen-MoE's and others copy it; `rows_fp32`: each routed row's weight stays fp32."""
    weights = "its router's probabilities and each routed row's weight are fp32" if rows_fp32 else (
        "its router's probabilities are fp32")
    return {"its router renormalises the top-k weights in fp32 (a sum and a copy kept), sorts the routed rows (a third "
            "int64 index per row) and keeps int32 offsets per expert":
            layers * (8 * x.tokens * k + 4 * x.tokens * (1 + k) + 4 * experts),
            weights: layers * (4 - x.act) * x.tokens * (experts + (k if rows_fp32 else 0))}


def llama_like(x: At) -> dict:
    """Llama's attention and norms: every layer causal, rotary over the rotated part of the head (the whole head
    unless a partial factor says less) in the activations' dtype."""
    L, d = x.layers, x.cfg["hidden_size"]
    rotated = int(x.head * (x.cfg.get("rope_parameters") or {}).get("partial_rotary_factor", 1))
    return {**mask(x, L), **rotary(x, rotated), **softmax_fp32(x, L), **norm_cast(x, (2 * L + 1) * d)}


def _mixtral(x):
    return {**llama_like(x), **router(x, x.layers, x.cfg["num_experts_per_tok"], x.cfg["num_local_experts"])}


def _gpt2(x):
    return mask(x, x.layers)


def _qwen3_5_text(x):
    """Masks and cos/sin on its attention layers only (Qwen3.5's multimodal rotary: a pair for each sequence's
    positions); its own norms. Its Gated DeltaNet layers keep what the rule says (test_gated_deltanet.py, against
    its own layer)."""
    cfg, L = x.cfg, x.layers
    full, head = cfg["layer_types"].count("full_attention"), cfg["head_dim"]
    rotated = int(head * cfg["rope_parameters"]["partial_rotary_factor"])
    return {**mask(x, full), **rotary(x, rotated, per_sequence=cfg["model_type"] != "qwen3_next"),
            "its RMSNorms scale by 1 + weight, keeping that sum in fp32 (the hidden norms' and the Q/K norms')":
                4 * ((2 * L + 1) * cfg["hidden_size"] + 2 * full * head),
            **softmax_fp32(x, full)}


def _qwen3_next(x):
    """Qwen3.5's attention and norms, and a router."""
    L, k, experts = x.layers, x.cfg["num_experts_per_tok"], x.cfg["num_experts"]
    return {**_qwen3_5_text(x), **router(x, L, k, experts, rows_fp32=False)}


def _gpt_oss(x):
    """Its rotary cos and sin are half a head, as the reference's; its norms and softmax keep its dtype."""
    L, k, experts = x.layers, x.cfg["num_experts_per_tok"], x.cfg["num_local_experts"]
    return {**mask(x, L),
            "its softmax first subtracts each row's maximum, keeping the int64 index of it":
                L * 8 * x.batch * x.cfg["num_attention_heads"] * x.seq_len,
            "its experts (grouped_mm) sort the routed rows, keeping two int64 indices more per row and int32 offsets "
            "per expert": L * (16 * x.tokens * k + 4 * experts)}


def _olmo3(x):
    """Its norms (Q/K over the whole projection, post-sublayer) keep fp32, as the reference's; cos and sin fp32."""
    L = x.layers
    return {**mask(x, L), **rotary(x, x.head, kept=4), **softmax_fp32(x, L)}


def _exaone4(x):
    """Per-head Q/K norms and post-sublayer norms that cast back to bf16, Llama's rotary."""
    L, d, kv = x.layers, x.cfg["hidden_size"], x.cfg["num_key_value_heads"]
    qk = (x.cfg["num_attention_heads"] + kv) * x.head
    return {**mask(x, L), **rotary(x, x.head), **softmax_fp32(x, L), **norm_cast(x, (2 * L + 1) * d + L * qk)}


def grouped_experts(x: At, layers: int, k: int, experts: int) -> dict:
    return {"its experts sort the routed rows (an int64 index more per row) and keep int32 offsets per expert":
            layers * (8 * x.tokens * k + 4 * experts)}


def group_router(x: At, layers: int, k: int, experts: int, groups: int, chosen: int) -> dict:
    """DeepSeek-V3's router as GLM-4.5 and others copy it: sigmoid scores, the best groups, the top-k in them."""
    return {"its group-limited router keeps each group's top-2 indices and the chosen groups (int64), the expert mask "
            "(bool), and renormalises the chosen weights in fp32 (their sum and the weights)":
            layers * x.tokens * (16 * groups + 8 * chosen + experts + 4 + 4 * k),
            **fp32_router(x, layers, experts),
            "each routed row's weight is fp32": layers * (4 - x.act) * x.tokens * k}


def fp32_router(x: At, layers: int, experts: int) -> dict:
    cast = 4 if x.act == 2 else 0  # an fp32 copy is a new tensor under bf16 only
    return {"its router runs in fp32: under bf16, fp32 copies of its weight and of the hidden states, and its scores "
            "in fp32": layers * (cast * (experts + x.tokens) * x.cfg["hidden_size"] + (4 - x.act) * x.tokens * experts)}


def _glm4_moe(x):
    cfg = x.cfg
    moe = x.layers - cfg["first_k_dense_replace"]
    k, experts = cfg["num_experts_per_tok"], cfg["n_routed_experts"]
    return {**llama_like(x), **group_router(x, moe, k, experts, cfg["n_group"], cfg["topk_group"]),
            **grouped_experts(x, moe, k, experts)}


def _ernie4_5_moe(x):
    """Its rotary interleaved (each attention layer repeats cos and sin pairwise over the head, its own copy); a
    softmax router that renormalises the chosen weights in fp32 (their sum clamped)."""
    cfg, L = x.cfg, x.layers
    moe = L - cfg["moe_layer_start_index"]
    k, experts, n, head = cfg["moe_k"], cfg["moe_num_experts"], x.seq_len, x.head
    return {**mask(x, L), **softmax_fp32(x, L), **norm_cast(x, (2 * L + 1) * cfg["hidden_size"]),
            "its rotary is interleaved: each attention layer keeps its own cos and sin repeated pairwise over the "
            "head; the reference keeps half a head of each once": 2 * n * head * L * 4 - n * head * x.act,
            "its router renormalises the top-k weights in fp32 (a sum, its clamp, the weights)":
                moe * x.tokens * (8 + 4 * k),
            **fp32_router(x, moe, experts),
            **grouped_experts(x, moe, k, experts)}


def _minimax(x):
    """Llama's attention on its full layers only; its lightning layers keep what the rule says, their output norm's
    bf16 cast included (test_lightning_attention.py, against its own layer); Mixtral's router."""
    cfg, L = x.cfg, x.layers
    full, d = cfg["layer_types"].count("full_attention"), cfg["hidden_size"]
    return {**mask(x, full), **rotary(x, x.head), **softmax_fp32(x, full), **norm_cast(x, (2 * L + 1) * d),
            **router(x, L, cfg["num_experts_per_tok"], cfg["num_local_experts"])}


def _hunyuan_v1_moe(x):
    """Llama's layers with per-head Q/K norms that cast back to bf16; Mixtral's router, its routed rows' weights in
    the activations' dtype."""
    cfg, L = x.cfg, x.layers
    qk = (cfg["num_attention_heads"] + cfg["num_key_value_heads"]) * x.head
    return {**mask(x, L), **rotary(x, x.head), **softmax_fp32(x, L),
            **norm_cast(x, (2 * L + 1) * cfg["hidden_size"] + L * qk),
            **router(x, L, cfg["moe_topk"], cfg["num_experts"], rows_fp32=False)}


def _llama4_text(x):
    """Every layer rotated (two layers: its no-rope layers come every fourth), Llama's norms; its rotary a complex
    table; its queries and keys L2-normalised, which the spec does not write (no weights, no count under pytorch);
    its softmax in its dtype; its experts dense."""
    cfg, L, n, T, a = x.cfg, x.layers, x.seq_len, x.tokens, x.act
    d, f, E, k = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_local_experts"], cfg["num_experts_per_tok"]
    qk = (cfg["num_attention_heads"] + cfg["num_key_value_heads"]) * x.head
    return {**mask(x, L), **norm_cast(x, (2 * L + 1) * d),
            "its rotary is one complex64 table (half a head of pairs) where the reference keeps cos and sin in the "
            "activations' dtype": n * x.head * (4 - a),
            "its rotated layers L2-normalise queries and keys in fp32 (weightless, not written): their inputs and the "
            "reciprocal norms": L * T * (qk + qk // x.head) * 4,
            "its router's scores are fp32": L * T * E * (4 - a),
            "its experts run every token, each input scaled by its router score (zero where not chosen): the scores, "
            "the repeated and the scaled inputs, and every expert's gate, up and their product, for E rows a token "
            "where the reference keeps k (their indices, inputs, four hidden tensors, weights and outputs)":
                L * (T * E * a + 2 * T * E * d * a + 4 * T * E * f * a - T * k * (16 + 2 * d * a + 4 * f * a + a))}


def _recurrent_gemma(x):
    """Griffin: RG-LRU blocks (test_rg_lru.py checks the layer against transformers' own), local attention every
    third layer over a partial rotary; Gemma's norms; a soft-capped head."""
    cfg, L, n, T = x.cfg, x.layers, x.seq_len, x.tokens
    d, attention = cfg["hidden_size"], cfg["block_types"][:L].count("attention")
    rotated = int(x.head * cfg["rope_parameters"]["partial_rotary_factor"])
    return {**mask(x, attention), **rotary(x, rotated), **softmax_fp32(x, attention),
            "its RMSNorms scale by 1 + weight, keeping that sum in fp32": (2 * L + 1) * d * 4,
            "its recurrent layers' reset mask is one row of positions shared by the batch; the reference keeps one a "
            "sequence": -2 * (L - attention) * (x.batch - 1) * n,
            "its logits' soft cap keeps the tanh output (tokens x vocab), which the spec's head does not write":
                T * cfg["vocab_size"] * x.act}


def _lfm2(x):
    """Its short convolutions keep what the rule says; Llama's attention and norms where its attention layers are,
    their per-head Q/K norms cast back to bf16 too."""
    cfg, L = x.cfg, x.layers
    full = cfg["layer_types"].count("full_attention")
    qk = (cfg["num_attention_heads"] + cfg["num_key_value_heads"]) * x.head
    return {**mask(x, full), **rotary(x, x.head), **softmax_fp32(x, full),
            **norm_cast(x, (2 * L + 1) * cfg["hidden_size"] + full * qk)}


def _kimi_linear(x):
    """Its KDA layers keep what the rule says (test_kda.py); its MLA layers take no positions; DeepSeek-V3's
    router on its sparse layers."""
    cfg = x.cfg
    full, sparse = cfg["layer_types"].count("full_attention"), cfg["mlp_layer_types"].count("sparse")
    k, experts = cfg["num_experts_per_token"], cfg["num_experts"]
    norms = (2 * x.layers + 1) * cfg["hidden_size"] + full * cfg["kv_lora_rank"]  # its MLA's latent norm too
    return {**mask(x, full), **softmax_fp32(x, full), **norm_cast(x, norms),
            **group_router(x, sparse, k, experts, cfg["num_expert_group"], cfg["topk_group"]),
            **grouped_experts(x, sparse, k, experts)}


def _deepseek_v32(x):
    """MLA whose reference keeps the indexer's choice as a boolean mask a sequence; DeepSeek-V3's router."""
    cfg, L = x.cfg, x.layers
    moe, k, experts = L - cfg["first_k_dense_replace"], cfg["num_experts_per_tok"], cfg["n_routed_experts"]
    norms = (2 * L + 1) * cfg["hidden_size"] + L * (cfg["q_lora_rank"] + cfg["kv_lora_rank"])
    return {"its eager attention adds a float mask, which keeps nothing; the reference keeps the indexer's choice, "
            "one boolean seq_len x seq_len mask a sequence per layer": -L * x.batch * x.seq_len**2,
            **rotary(x, cfg["qk_rope_head_dim"]), **softmax_fp32(x, L), **norm_cast(x, norms),
            **group_router(x, moe, k, experts, cfg["n_group"], cfg["topk_group"]),
            **grouped_experts(x, moe, k, experts)}


def _longcat_flash(x):
    """Two MLA sublayers and two MLPs a layer, the MoE beside them on a shortcut; zero-computation experts."""
    cfg, L = x.cfg, x.layers
    norms = (4 * L + 1) * cfg["hidden_size"] + 2 * L * (cfg["q_lora_rank"] + cfg["kv_lora_rank"])
    return {**mask(x, 2 * L), **rotary(x, cfg["qk_rope_head_dim"]), **softmax_fp32(x, 2 * L), **norm_cast(x, norms),
            "its shortcut MoE reads the normed stream the first MLP reads; the reference's shortcut keeps its own "
            "copy of it": -L * x.tokens * cfg["hidden_size"] * x.act,
            **fp32_router(x, L, cfg["n_routed_experts"] + cfg["zero_expert_num"]),
            "the zero-computation experts' summed weight and each routed row's weight stay fp32":
                L * x.tokens * (1 + cfg["moe_topk"]) * (4 - x.act),
            **grouped_experts(x, L, cfg["moe_topk"], cfg["n_routed_experts"])}


def _deepseek_v4(x):
    """Hyper-connected streams and compressed attention keep what the rules say (test_hyper.py,
    test_compressed_attention.py); its rotations read tables the batch shares; its router's score function; under
    bf16 its softmax stays in bf16 and its hyper-connections cast their weights to fp32."""
    cfg, L, n, T, a = x.cfg, x.layers, x.seq_len, x.tokens, x.act
    k, experts, hc = cfg["num_experts_per_tok"], cfg["n_routed_experts"], cfg["hc_mult"]
    csa = cfg["layer_types"].count("compressed_sparse_attention")
    rope = int(cfg["head_dim"] * cfg["partial_rotary_factor"])
    tables = 6 * L + 2 * csa  # cos and sin of each rotation: queries, keys, the output's; a CSA indexer's queries
    terms = {"its rotations read cos and sin tables of one row of positions the batch shares; the reference's keep "
             "one a sequence": -(x.batch - 1) * n * rope * x.act * tables,
             "its CSA indexer's causal mask over the compressed entries is shared by the batch too":
                 -(x.batch - 1) * n * (n // cfg["compress_rates"]["compressed_sparse_attention"]) * csa,
             "its router's score function (the root of a softplus) keeps its input and output, and it renormalises "
             "the chosen weights (their sum and the weights)": L * T * (experts + 1 + k) * a,
             **grouped_experts(x, L, k, experts)}
    if a == 4:
        return terms
    # each layer's keys a query scores: the sequence, and a compressed layer's entries too
    rates = cfg["compress_rates"]
    keys = [n + (n // rates[kind] if kind in rates else 0) for kind in cfg["layer_types"]]
    return {**terms,
            "its softmax over the keys and the sink runs in bf16; the reference's in fp32, keeping those probabilities "
            "and their bf16 cast without the sink":
                -sum(x.batch * cfg["num_attention_heads"] * n * ((w + 1) * (4 - a) + w * a) for w in keys),
            "its hyper-connections cast their mixing weights (and the head's, with its scale) to fp32, a copy kept for "
            "the matmul at each of a layer's two sites": (2 * L * (2 + hc) * hc + hc) * hc * cfg["hidden_size"] * 4 + 4}


def ssd(x: At, layers: int, heads: int, chunk: int, inner: int, groups: int, state: int, gated_norm: bool) -> dict:
    """transformers' torch path of the Mamba-2 mixer (Falcon-H1's and Nemotron-H's copies of it) against the
    reference's SSD (test_mamba2.py): its carry and A, and under bf16 its SSD core and gated norm in fp32."""
    b, n, a, h = x.batch, x.seq_len, x.act, heads
    c = -(-n // chunk)
    padded, blocks, head_dim, conv = b * c * chunk, b * c * h, inner // h, inner + 2 * groups * state
    carried = b * h * (c + 1) ** 2
    per_block = 5 * chunk * state + 3 * chunk * head_dim + 3 * chunk**2 + state * head_dim + 2 * chunk
    terms = {"its inter-chunk decay, exp of a segment sum over c + 1 chunk ends a sequence and head, is kept once; "
             "the reference keeps a copy for the carry's matmul too": -layers * carried * a,
             "its A = -exp(A_log) is fp32, kept three times (exp's output, its negation, A·dt's operand); the "
             "reference's twice in the activations' dtype": layers * h * (12 - 2 * a)}
    if a == 4:
        return terms
    core = 2 * padded * inner + b * n * h + blocks * per_block + carried + b * h * (c + 1) * head_dim * state
    return {**terms,
            "its SSD core runs in fp32 (x padded for the skip, dt, the chunks' products, states and decays, the "
            "output y), twice the bytes of the reference's in the activations' dtype": layers * (4 - a) * core,
            "its fp32 casts are copies: x·dt reads an fp32 x where the reference reads the convolution's output (x, B "
            "and C) in place, and A·dt an fp32 dt": layers * (b * n * (4 * inner - a * conv) + 4 * b * n * h),
            **({"its gated norm runs in fp32 from an fp32 copy of z (silu's input and output, y·silu(z), 1/rms a "
                "group, the normalised values)": layers * ((4 - a) * b * n * (3 * inner + groups) + 4 * b * n * inner)}
               if gated_norm else {})}


def _falcon_h1(x):
    """Attention and a Mamba-2 mixer side by side on one norm, each reading it through its own µP multiplier."""
    cfg, L = x.cfg, x.layers
    return {**mask(x, L), **rotary(x, x.head), **softmax_fp32(x, L), **norm_cast(x, (2 * L + 1) * cfg["hidden_size"]),
            **ssd(x, L, cfg["mamba_n_heads"], cfg["mamba_chunk_size"], cfg["mamba_d_ssm"], cfg["mamba_n_groups"],
                   cfg["mamba_d_state"], cfg["mamba_rms_norm"]),
            "its mixer and its attention each scale the normed stream by a multiplier (ssm_in_multiplier, "
            "attention_in_multiplier), keeping two scaled copies where the reference's share the one":
                L * x.tokens * cfg["hidden_size"] * x.act}


def _nemotron_h(x):
    """One block a layer (Mamba-2, attention without positions, a squared-ReLU MLP or a MoE), each on its norm;
    DeepSeek-V3's router on its MoE blocks."""
    cfg, blocks = x.cfg, x.cfg["layers_block_type"]
    k, experts = cfg["num_experts_per_tok"], cfg["n_routed_experts"]
    moe, attention = blocks.count("moe"), blocks.count("full_attention")
    return {**mask(x, attention), **softmax_fp32(x, attention),
            **({"its RMSNorms multiply by an fp32 copy of their weight, kept (a value a channel)":
                (len(blocks) + 1) * cfg["hidden_size"] * 4} if x.act == 2 else {}),
            **ssd(x, blocks.count("linear_attention"), cfg["mamba_num_heads"], cfg["chunk_size"],
                   cfg["mamba_num_heads"] * cfg["mamba_head_dim"], cfg["n_groups"], cfg["ssm_state_size"], True),
            **group_router(x, moe, k, experts, cfg["n_group"], cfg["topk_group"]),
            **grouped_experts(x, moe, k, experts)}

def _zamba2(x):
    """Mamba-2 layers (transformers' torch path of the mixer, as Nemotron-H's); at the hybrid layers its shared
    blocks' causal attention with rotary over the whole head (use_mem_rope) and their RMSNorms, over 2 x d_model
    (the block's input) and d_model (before its MLP). Its adapters, the [h, e] concatenation and the embedding's
    clone keep what the reference's do."""
    cfg, types = x.cfg, x.cfg["layers_block_type"]
    hybrid, d = types.count("hybrid"), cfg["hidden_size"]
    return {**mask(x, hybrid), **(rotary(x, 2 * d // cfg["num_attention_heads"]) if cfg["use_mem_rope"] else {}),
            **softmax_fp32(x, hybrid), **norm_cast(x, (len(types) + 1) * d + hybrid * 3 * d),
            **ssd(x, len(types), cfg["n_mamba_heads"], cfg["chunk_size"], cfg["mamba_expand"] * d,
                  cfg["mamba_ngroups"], cfg["mamba_d_state"], True)}


# DeepSeek's sparse attention over MLA, a dense layer then a MoE one
DSA = SMALL | dict(num_key_value_heads=4, first_k_dense_replace=1, q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=16,
                   qk_rope_head_dim=8, v_head_dim=16, index_n_heads=2, index_head_dim=16, index_topk=8,
                   moe_intermediate_size=32, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, n_group=1,
                   topk_group=1)
FAMILIES = {
    "llama": (lambda: T.LlamaConfig(**SMALL), llama_like),
    "qwen2": (lambda: T.Qwen2Config(**SMALL, tie_word_embeddings=False), llama_like),
    "mistral": (lambda: T.MistralConfig(**SMALL, sliding_window=8), llama_like),
    "mixtral": (lambda: T.MixtralConfig(**SMALL, num_local_experts=4, num_experts_per_tok=2), _mixtral),
    "gpt2": (lambda: T.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=500, n_positions=256), _gpt2),
    "qwen3_next": (lambda: T.Qwen3NextConfig(**SMALL | {"num_hidden_layers": 4}, head_dim=16, linear_num_key_heads=2,
                                            linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=8,
                                            moe_intermediate_size=32, shared_expert_intermediate_size=48,
                                            num_experts=4, num_experts_per_tok=2), _qwen3_next),
    "gpt_oss": (lambda: T.GptOssConfig(**SMALL, head_dim=16, num_local_experts=4, num_experts_per_tok=2,
                                       sliding_window=8), _gpt_oss),
    "olmo3": (lambda: T.Olmo3Config(**SMALL), _olmo3),
    "exaone4": (lambda: T.Exaone4Config(**SMALL), _exaone4),
    "seed_oss": (lambda: T.SeedOssConfig(**SMALL), llama_like),
    "ernie4_5_moe": (lambda: T.Ernie4_5_MoeConfig(**SMALL, moe_num_experts=4, moe_k=2, moe_intermediate_size=32),
                     _ernie4_5_moe),
    "minimax": (lambda: T.MiniMaxConfig(**SMALL, num_local_experts=4, num_experts_per_tok=2, head_dim=16), _minimax),
    "smollm3": (lambda: T.SmolLM3Config(**SMALL, pad_token_id=None), llama_like),
    "hunyuan_v1_moe": (lambda: T.HunYuanMoEV1Config(**SMALL, num_experts=4, moe_topk=2, head_dim=16,
                                                   rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
                       _hunyuan_v1_moe),
    "llama4_text": (lambda: T.Llama4TextConfig(**SMALL, intermediate_size_mlp=96, num_local_experts=4,
                                               num_experts_per_tok=1, head_dim=16), _llama4_text),
    "recurrent_gemma": (lambda: T.RecurrentGemmaConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                                       num_key_value_heads=1, intermediate_size=96, vocab_size=500,
                                                       lru_width=64, attention_window_size=16, head_dim=16),
                        _recurrent_gemma),
    "lfm2": (lambda: T.Lfm2Config(**SMALL | {"num_hidden_layers": 3}, layer_types=["conv", "full_attention", "conv"],
                                  block_multiple_of=8, conv_L_cache=3), _lfm2),
    "kimi_linear": (lambda: T.KimiLinearConfig(**SMALL | {"num_key_value_heads": 4}, kv_lora_rank=16,
                                               qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                                               moe_intermediate_size=32, num_experts=4, num_experts_per_token=2,
                                               linear_num_heads=4, linear_head_dim=16, pad_token_id=0,
                                               bos_token_id=1, eos_token_id=2,
                                               layer_types=["linear_attention", "full_attention"],
                                               mlp_layer_types=["dense", "sparse"]), _kimi_linear),
    "rwkv": (lambda: T.RwkvConfig(hidden_size=64, num_hidden_layers=2, intermediate_size=96, vocab_size=500,
                                  context_length=256), lambda x: {}),  # nothing differs
    "qwen3_5_text": (lambda: T.Qwen3_5TextConfig(**SMALL | {"num_hidden_layers": 4}, head_dim=16,
                                                 linear_num_key_heads=2, linear_num_value_heads=4,
                                                 linear_key_head_dim=8, linear_value_head_dim=8), _qwen3_5_text),
    "qwen3_5_moe_text": (lambda: T.Qwen3_5MoeTextConfig(**SMALL | {"num_hidden_layers": 4}, head_dim=16,
                                                        linear_num_key_heads=2, linear_num_value_heads=4,
                                                        linear_key_head_dim=8, linear_value_head_dim=8,
                                                        moe_intermediate_size=32, shared_expert_intermediate_size=48,
                                                        num_experts=4, num_experts_per_tok=2), _qwen3_next),
    "deepseek_v32": (lambda: T.DeepseekV32Config(**DSA), _deepseek_v32),
    "glm_moe_dsa": (lambda: T.GlmMoeDsaConfig(**DSA), _deepseek_v32),  # GLM-5: DeepSeek-V3.2's layers
    "longcat_flash": (lambda: T.LongcatFlashConfig(hidden_size=64, num_layers=2, num_attention_heads=4, q_lora_rank=16,
                                                   kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8,
                                                   v_head_dim=16, head_dim=8, ffn_hidden_size=96,
                                                   expert_ffn_hidden_size=32, n_routed_experts=4, zero_expert_num=2,
                                                   moe_topk=2, vocab_size=500), _longcat_flash),
    "deepseek_v4": (lambda: T.DeepseekV4Config(
        vocab_size=500, hidden_size=64, moe_intermediate_size=32, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=1, head_dim=16, q_lora_rank=16, o_groups=2, o_lora_rank=16, n_routed_experts=4,
        n_shared_experts=1, num_experts_per_tok=2, hc_mult=2, hc_sinkhorn_iters=3, sliding_window=8, index_n_heads=2,
        index_head_dim=8, index_topk=4, num_hash_layers=1, partial_rotary_factor=0.5, pad_token_id=0,
        layer_types=["sliding_attention", "compressed_sparse_attention", "heavily_compressed_attention"],
        compress_rates={"compressed_sparse_attention": 4, "heavily_compressed_attention": 8}), _deepseek_v4),
    "falcon_h1": (lambda: T.FalconH1Config(**SMALL, head_dim=16, mamba_d_ssm=128, mamba_n_heads=8, mamba_n_groups=2,
                                           mamba_d_state=8, mamba_chunk_size=16, mamba_d_conv=3), _falcon_h1),
    "nemotron_h": (lambda: T.NemotronHConfig(**SMALL | {"num_hidden_layers": 4}, hybrid_override_pattern="M*-E",
                                             head_dim=16, mamba_num_heads=8, mamba_head_dim=16, n_groups=2,
                                             ssm_state_size=8, chunk_size=16, conv_kernel=3, n_routed_experts=4,
                                             num_experts_per_tok=2, moe_intermediate_size=32), _nemotron_h),
    "glm4_moe": (lambda: T.Glm4MoeConfig(**SMALL, n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                                         first_k_dense_replace=1, n_group=1, topk_group=1), _glm4_moe),
    "zamba2": (lambda: T.Zamba2Config(**SMALL | {"num_hidden_layers": 3, "num_key_value_heads": 4},
                                      layers_block_type=["mamba", "hybrid", "hybrid"], num_mem_blocks=2,
                                      adapter_rank=8, n_mamba_heads=8, mamba_d_state=8, mamba_ngroups=2,
                                      chunk_size=16, use_shared_attention_adapter=True, use_mem_rope=True), _zamba2),
}


# the families whose transformers code keeps more than 2 % more, and why (each term named above)
BEYOND_2_PERCENT = {"llama4_text": "every expert runs every token", "recurrent_gemma": "its logits' soft cap"}


QUICK = {"llama", "qwen2", "mistral", "mixtral", "gpt2", "qwen3_next", "gpt_oss"}  # the rest in the full suite


@pytest.mark.parametrize("family", [f if f in QUICK else pytest.param(f, marks=pytest.mark.slow)
                                    for f in sorted(FAMILIES)])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_a_family_saves_what_transformers_saves_every_difference_named(family, dtype):
    from symcost.hf import import_config
    from symcost.measure.hf import saved_bytes as hf_saved

    build, named = FAMILIES[family]
    cfg = build().to_dict()
    x = At(cfg, 2, 32, {"fp32": 4, "bf16": 2}[dtype])
    d = symcost.derive(symcost.loads(import_config(cfg, f"{family}.json")))
    values = dim_values(d, {"batch": x.batch, "seq_len": x.seq_len})
    ours = int(sum(saved_bytes(d, "eager", "none").values()).xreplace(values).xreplace({ACT: x.act}))
    theirs = sum(hf_saved(cfg, x.batch, x.seq_len, dtype={"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
                          ).values())
    if dtype == "fp32" and family not in BEYOND_2_PERCENT:  # within 2 %: the first issue's bound, kept
        assert abs(ours - theirs) <= 0.02 * theirs
    assert theirs == ours + sum(named(x).values())
    row = next(r for r in PAGE.read_text().split("\n") if r.startswith(f"| {family} |")).split(" | ")
    shown = row[1:4] if dtype == "fp32" else row[4:7]
    assert shown[:2] == [f"{ours:,}", f"{theirs:,}"], "docs/memory.md's table"


# the families whose prompt and decode step are checked elsewhere, where what their model does besides is told apart
STEPPED_ELSEWHERE = {
    "recurrent_gemma": "tests/components/test_rg_lru.py: its recurrent states sit on its modules, not in the cache",
    "rwkv": "tests/components/test_rwkv.py: its step broadcasts the kept token of one sequence",
    "llama4_text": "tests/memory/test_memory_inference.py: its experts modules run every expert, listed apart"}


@pytest.mark.parametrize("family", [f if f in QUICK else pytest.param(f, marks=pytest.mark.slow)
                                    for f in sorted(FAMILIES.keys() - STEPPED_ELSEWHERE)])
def test_a_family_prefills_and_steps_as_transformers(family):
    """The same small instance, every layer kind the family mixes, through transformers' model on the CPU: after a
    prompt of 9 tokens and after one decode step its cache holds exactly the bytes the spec's formulas say, and
    FlopCounterMode's counts of both equal the spec's forward FLOPs."""
    from conftest import assert_prefill_and_step_match
    from symcost.hf import import_config
    from symcost.measure.hf import build

    cfg = FAMILIES[family][0]().to_dict()
    model = build(cfg, "cpu").eval().requires_grad_(False)
    assert_prefill_and_step_match(model, symcost.loads(import_config(cfg, f"{family}.json")), 2, 9, 500)
