"""Kimi Delta Attention (Kimi Linear's linear layers): parameters, FLOPs forward and backward and the bytes
saved for backward equal PyTorch's on the reference build at drawn sizes (chunks even or not, one token,
one head); the same counts equal transformers' own KimiLinearDeltaAttention; the `kernel` convention adds
FLA's matmuls, by hand at two sizes; Kimi Linear imports exactly, its published file on meta and drawn
layer mixes on the CPU, with its caches and decode steps."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch, block_spec, kernel_minus_pytorch, measured_layer
from symcost.errors import SpecError
from symcost.evaluate import dim_values
from symcost.hf import import_config
from symcost.memory import saved_bytes
from symcost.symbols import ACT

torch = pytest.importorskip("torch")  # the reference build and transformers' layer
T = pytest.importorskip("transformers")


def spec(d, h, D, k, Q, n, b):
    return block_spec(d, n, b, f"kda: {{dim: {d}, heads: {h}, head_dim: {D}, kernel: {k}, chunk: {Q}}}")


@settings(max_examples=10, deadline=None, derandomize=True)
@given(d=st.integers(1, 6), h=st.integers(1, 3), D=st.integers(2, 4), k=st.integers(1, 4), Q=st.integers(2, 5),
       n=st.integers(1, 12), b=st.integers(1, 2))
def test_counts_and_saved_bytes_equal_pytorch_at_drawn_sizes(d, h, D, k, Q, n, b):
    s = spec(d, h, D, k, Q, n, b)
    report = symcost.verify(s, backward=True, device="cpu")
    assert report.match, [(row.path, row.symbolic, row.measured) for row in report.rows]
    row = next(row for row in report.rows if row.kind == "kda")
    # q, k, v; the conv over them; f_a, f_b, dt_bias, A_log; b_proj; g_a, g_b; the norm's weight; o_proj
    assert row.symbolic["params"] == (3 * d * h * D + 3 * h * D * k + d * D + D * h * D + h * D + h + d * h
                                      + d * D + D * h * D + D + h * D * d)
    for dtype in ("fp32", "bf16"):
        assert symcost.verify_memory(s, dtype=dtype).match


def test_one_token_keeps_the_views_it_takes():
    """In fp32 one one-token sequence keeps the conv's whole output where q's and k's copies would be (two
    sequences or more are copied): the rule follows (else 16 bytes off at the first size)."""
    for n, b, h in ((1, 1, 2), (1, 2, 1), (2, 1, 1)):
        assert symcost.verify_memory(spec(3, h, 2, 2, 4, n, b), dtype="fp32").match


@pytest.mark.slow  # the quick half keeps the reference build's tests; these in the full suite
@settings(max_examples=6, deadline=None, derandomize=True)
@given(d=st.integers(1, 8), h=st.integers(1, 3), D=st.integers(2, 4), k=st.integers(1, 4), n=st.integers(1, 12),
       b=st.integers(1, 2), bf16=st.booleans())
def test_equal_to_transformers_kimi_delta_attention(d, h, D, k, n, b, bf16):
    """Its own layer, its torch path, at chunk 64 (transformers' fixed size): the sequences drawn up to two
    chunks and a part; saved bytes in fp32 and bf16."""
    n = n * 11 if n > 1 else 1  # one token, or 22 to 132: one, two or three chunks of 64
    config = T.KimiLinearConfig(hidden_size=d, linear_num_heads=h, linear_head_dim=D, linear_conv_kernel_dim=k,
                                num_hidden_layers=1, layer_types=["linear_attention"], mlp_layer_types=["dense"])
    dtype = torch.bfloat16 if bf16 else torch.float32
    from transformers.models.kimi_linear.modeling_kimi_linear import KimiLinearDeltaAttention

    x = torch.randn(b, n, d, dtype=dtype, requires_grad=True)
    params, forward, backward, saved = measured_layer(KimiLinearDeltaAttention(config, 0).to(dtype), x)
    derivation = symcost.derive(spec(d, h, D, k, 64, n, b))
    node, ours = next((node, v) for node, v in symcost.evaluate(derivation).components if node.kind == "kda")
    assert (ours["params"], ours["forward"], ours["backward"]) == (params, forward, backward)
    rule = saved_bytes(derivation, "eager", "none")[node.path]
    assert saved == int(rule.xreplace(dim_values(derivation)).xreplace({ACT: 2 if bf16 else 4}))


def test_the_kernel_convention_adds_fla_s_matmuls_by_hand():
    """Under kernel the work FLA's chunk kernel does as matmuls counts: per (batch, head, chunk) the keys
    with the keys and the queries with the keys in full (Q²·D multiply-adds each) and the triangle's
    inversion by rows (1² + … + (Q - 1)² multiply-adds). Kimi Linear's layer (32 heads of 128, chunk 64):
    2 x 64² x 128 + 63 x 64 x 127 / 6 = 1,133,920 multiply-adds a block; at 4,096 tokens 64 chunks, so
    2 x 32 x 64 x 1,133,920 = 4,644,536,320 FLOPs more than pytorch's count; at 100 tokens (two chunks, the
    second padded) with batch 3: 2 x 3 x 32 x 2 x 1,133,920 = 435,425,280."""
    layer = "kda: {dim: 2304, heads: 32, head_dim: 128, kernel: 4}"
    for n, b, more in ((4096, 1, 4_644_536_320), (100, 3, 435_425_280)):
        assert kernel_minus_pytorch(2304, n, b, layer) == more


def test_a_head_and_a_chunk_hold_two():
    for layer in ("{dim: 8, heads: 1, head_dim: 2, chunk: 1}", "{dim: 8, heads: 1, head_dim: 1}"):
        with pytest.raises(SpecError, match=r"(chunk|head_dim): .*an integer >= 2"):
            symcost.derive(block_spec(8, 4, 1, f"kda: {layer}"))


def kimi_small(types, mlp_types, **more):
    return T.KimiLinearConfig(hidden_size=16, num_hidden_layers=len(types), num_attention_heads=2,
                              num_key_value_heads=2, kv_lora_rank=8, qk_nope_head_dim=4, qk_rope_head_dim=2,
                              v_head_dim=4, intermediate_size=24, moe_intermediate_size=6, num_experts=4,
                              num_experts_per_token=2, vocab_size=40, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                              linear_num_heads=2, linear_head_dim=4, layer_types=types, mlp_layer_types=mlp_types,
                              **more).to_dict()


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=4, deadline=None, derandomize=True)
@given(data=st.data(), layers=st.integers(1, 4), q_lora=st.sampled_from([None, 6]), k=st.integers(1, 4),
       extra=st.integers(0, 70), b=st.integers(1, 2))
def test_kimi_linear_equal_to_transformers_at_drawn_layer_mixes(data, layers, q_lora, k, extra, b):
    """KDA and latent-attention layers, dense and MoE feeds, wherever layer_types and mlp_layer_types put them:
    parameters, active parameters and forward FLOPs against KimiLinearForCausalLM on meta (its causal mask
    written out), per layer type too; then on the CPU a prompt of n >= k tokens and a decode step: the counts
    and the caches (latents and rope keys; conv inputs and states) equal the formulas. (At least one latent
    attention layer: transformers' cache cannot step a model of KDA layers alone.)"""
    from conftest import assert_prefill_and_step_match
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    types = data.draw(st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=layers,
                               max_size=layers))
    types = types if "full_attention" in types else [*types[:-1], "full_attention"]
    mlp = data.draw(st.lists(st.sampled_from(["dense", "sparse"]), min_size=layers, max_size=layers))
    cfg = kimi_small(types, mlp, q_lora_rank=q_lora, linear_conv_kernel_dim=k)
    s = symcost.loads(import_config(cfg, "kimi_linear.json"))
    n = k + extra
    report = verify_hf(s, cfg, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1] and report.kinds_agree, report.by_kind
    assert_prefill_and_step_match(build(cfg, "cpu").eval().requires_grad_(False), s, b, n, 40)


# moonshotai/Kimi-Linear-48B-A3B-Instruct's config.json, the fields its sizes come from, as published (its KDA
# block nested, the attention layers numbered from 1)
KIMI_LINEAR_48B = {
    "model_type": "kimi_linear", "architectures": ["KimiLinearForCausalLM"], "hidden_act": "silu", "q_lora_rank": None,
    "mla_use_nope": True, "moe_router_activation_func": "sigmoid", "num_expert_group": 1, "topk_group": 1,
    "moe_layer_freq": 1, "tie_word_embeddings": False, "hidden_size": 2304, "num_hidden_layers": 27,
    "vocab_size": 163840, "rms_norm_eps": 1e-5, "num_attention_heads": 32, "num_key_value_heads": 32,
    "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "num_experts": 256,
    "num_experts_per_token": 8, "num_shared_experts": 1, "moe_intermediate_size": 1024, "routed_scaling_factor": 2.446,
    "moe_renormalize": True, "first_k_dense_replace": 1, "intermediate_size": 9216, "model_max_length": 1048576,
    "linear_attn_config": {"full_attn_layers": [4, 8, 12, 16, 20, 24, 27], "head_dim": 128, "num_heads": 32,
                           "short_conv_kernel_size": 4,
                           "kda_layers": [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 21, 22, 23, 25, 26]}}


def test_the_published_file_imports_as_the_shipped_spec_counts():
    """The file's own fields (the nested KDA block, 1-based layer numbers) import to the counts of
    architectures/kimi_linear.yaml, its runs grouped: 49,122,675,072 parameters and 3,484,453,248 active,
    which transformers builds from the same fields (test_hf.py, on meta)."""
    imported = symcost.evaluate(symcost.loads(import_config(KIMI_LINEAR_48B, "config.json"))).total
    shipped = symcost.evaluate(symcost.load(arch("kimi_linear"))).total
    for key in ("params", "active_params", "forward", "backward"):
        assert imported[key] == shipped[key]
    assert (shipped["params"], shipped["active_params"]) == (49_122_675_072, 3_484_453_248)


@pytest.mark.parametrize("change, fragment", [
    ({"linear_attn_config": {**KIMI_LINEAR_48B["linear_attn_config"], "use_full_rank_gate": True}},
     "linear_attn_config.use_full_rank_gate: a full-rank KDA gate is not what transformers' KimiLinear builds"),
    ({"linear_attn_config": {**KIMI_LINEAR_48B["linear_attn_config"], "full_attn_layers": [0, 4]}},
     "linear_attn_config.full_attn_layers: expected 1-based layer numbers from 1 to 27"),
    ({"linear_attn_config": {**KIMI_LINEAR_48B["linear_attn_config"], "kda_layers": [1, 2]}},
     "linear_attn_config.kda_layers: expected every layer full_attn_layers does not name"),
    ({"mlp_layer_types": ["dense"] * 26}, "mlp_layer_types: expected 27 MLP types, each one of dense, sparse"),
    ({"moe_router_activation_func": "softmax"}, "moe_router_activation_func: 'softmax' is not supported"),
    ({"moe_layer_freq": 2}, "moe_layer_freq: 2 is not supported"),
])
def test_kimi_linear_refusals(change, fragment):
    with pytest.raises(SpecError, match=re.escape(fragment)):
        import_config(KIMI_LINEAR_48B | change, "config.json")


def test_kimi_linear_serves_split_by_heads_as_vllm_does(cli):
    """serve at tp 4: a GPU holds the weights, and for each sequence the latents and KDA states, of the same spec
    with every split size quartered (KDA and latent-attention heads, the experts' and the MLP's hidden sizes, the
    vocabulary), the latent cache whole on every rank; plan refuses tp > 1 for KDA in one line (the split is a
    serving engine's)."""
    s = symcost.load(arch("kimi_linear"))
    per_gpu = symcost.serve(s, tp=4, gpus=4, prompt=4096, output=256).to_dict()["per_gpu"]
    derivation = symcost.derive(s)
    quarter = dim_values(derivation, {"n_heads": 8, "n_kda_heads": 8, "d_expert": 256, "d_ff": 9216 // 4,
                                      "vocab": 163840 // 4, "seq_len": 4096 + 256, "batch": 1})
    assert per_gpu["weights_bytes"] == 2 * int(derivation.raw_total.params.xreplace(quarter)) == 24_616_169_280
    assert per_gpu["kv_bytes_per_sequence"] == 2 * int(derivation.raw_total.cache.xreplace(quarter))
    out = cli("plan", arch("kimi_linear"), "--gpus", "64", "--hardware", "h100-sxm", "--tp", "2")
    assert out.exit_code == 2 and "kda layers have no tensor-parallel rule for training" in out.output
