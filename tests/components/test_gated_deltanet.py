"""Gated DeltaNet (Qwen3-Next's linear layers): parameters, FLOPs forward and backward and the bytes
saved for backward equal PyTorch's on the reference build at drawn sizes (chunks even or not, a key
head serving several value heads or one); the same counts equal transformers' own
Qwen3NextGatedDeltaNet; the `kernel` convention adds the triangular solves, by hand at two sizes;
Qwen3-Next imports exactly, at its published size on meta and at drawn layer mixes on the CPU, with its
caches and decode steps. (The attention output gate: test_experts_and_attention.py.)"""

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import block_spec, kernel_minus_pytorch, measured_layer
from symcost.errors import SpecError
from symcost.evaluate import dim_values
from symcost.memory import saved_bytes
from symcost.symbols import ACT

torch = pytest.importorskip("torch")  # the reference build and transformers' layer
T = pytest.importorskip("transformers")


def spec(d, hk, r, dk, dv, k, Q, n, b):
    return block_spec(d, n, b, f"gated_deltanet: {{dim: {d}, key_heads: {hk}, value_heads: {hk * r}, key_dim: {dk}, "
                               f"value_dim: {dv}, kernel: {k}, chunk: {Q}}}")


sizes = dict(d=st.integers(1, 8), hk=st.integers(1, 3), r=st.integers(1, 3), dk=st.integers(2, 4),
             dv=st.integers(1, 4), k=st.integers(1, 4), Q=st.integers(2, 5), n=st.integers(1, 12), b=st.integers(1, 2))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(**sizes)
def test_counts_and_saved_bytes_equal_pytorch_at_drawn_sizes(d, hk, r, dk, dv, k, Q, n, b):
    s = spec(d, hk, r, dk, dv, k, Q, n, b)
    report = symcost.verify(s, backward=True, device="cpu")
    assert report.match, [(row.path, row.symbolic, row.measured) for row in report.rows]
    row = next(row for row in report.rows if row.kind == "gated_deltanet")
    h, conv = hk * r, 2 * hk * dk + hk * r * dv
    # in_proj_qkvz and in_proj_ba, the depthwise conv (no bias), dt_bias and A_log, the norm, out_proj
    assert row.symbolic["params"] == d * (conv + h * dv) + d * 2 * h + conv * k + 2 * h + dv + h * dv * d
    for dtype in ("fp32", "bf16"):
        assert symcost.verify_memory(s, dtype=dtype).match


@pytest.mark.slow  # the quick half keeps the reference build's tests; these in the full suite
@settings(max_examples=10, deadline=None, derandomize=True)
@given(**sizes, bf16=st.booleans())
def test_equal_to_transformers_qwen3_next_gated_deltanet(d, hk, r, dk, dv, k, Q, n, b, bf16):
    """Its own layer, its torch path, at chunk 64 (transformers' fixed size): the sequences drawn up to two
    chunks and a part. Saved bytes under bf16 always; under fp32 where its reshapes copy z as the
    build does (several key heads, each serving several value heads) and where its last chunk is padded
    (else its matmuls copy q and k: see the component's docstring)."""
    n = n * 11  # 11 to 132 tokens: one, two or three chunks of 64
    config = T.Qwen3NextConfig(hidden_size=d, linear_num_key_heads=hk, linear_num_value_heads=hk * r,
                               linear_key_head_dim=dk, linear_value_head_dim=dv, linear_conv_kernel_dim=k,
                               num_hidden_layers=1, layer_types=["linear_attention"])
    from transformers.models.qwen3_next.modeling_qwen3_next import Qwen3NextGatedDeltaNet

    dtype = torch.bfloat16 if bf16 else torch.float32
    x = torch.randn(b, n, d, dtype=dtype, requires_grad=True)
    params, forward, backward, saved = measured_layer(Qwen3NextGatedDeltaNet(config, 0).to(dtype), x)
    derivation = symcost.derive(spec(d, hk, r, dk, dv, k, 64, n, b))
    node, ours = next((node, v) for node, v in symcost.evaluate(derivation).components if node.kind == "gated_deltanet")
    assert (ours["params"], ours["forward"], ours["backward"]) == (params, forward, backward)
    if bf16 or (hk > 1 and r > 1 and n % 64):
        rule = saved_bytes(derivation, "eager", "none")[node.path]
        assert saved == int(rule.xreplace(dim_values(derivation)).xreplace({ACT: 2 if bf16 else 4}))


def test_the_kernel_convention_adds_the_triangular_solves_by_hand():
    """Under kernel the UT transform's two solves count: per (batch, value head, chunk) a unit
    lower-triangular Q x Q system with key_dim + value_dim right-hand columns, Q(Q - 1)/2 multiply-adds
    a column. Qwen3-Next's layer (32 value heads of 128 + 128, chunk 64) at 4,096 tokens: 64 chunks, so
    2 x 32 x 64 x 2,016 x 256 = 2,113,929,216 FLOPs more than pytorch's count; at 100 tokens (two chunks,
    the second padded) with batch 3: 2 x 3 x 32 x 2 x 2,016 x 256 = 198,180,864."""
    layer = ("gated_deltanet: {dim: 2048, key_heads: 16, value_heads: 32, key_dim: 128, value_dim: 128, "
             "kernel: 4}")
    for n, b, more in ((4096, 1, 2_113_929_216), (100, 3, 198_180_864)):
        assert kernel_minus_pytorch(2048, n, b, layer) == more


def test_key_heads_must_divide_value_heads_and_a_chunk_holds_two_tokens():
    with pytest.raises(SpecError, match="3 key_heads do not divide 4 value_heads"):
        symcost.evaluate(symcost.derive(block_spec(8, 4, 1, "gated_deltanet: {dim: 8, key_heads: 3, value_heads: 4, "
                                                            "key_dim: 2}")))
    for layer in ("{dim: 8, key_heads: 1, key_dim: 2, chunk: 1}", "{dim: 8, key_heads: 1, key_dim: 1}"):
        with pytest.raises(SpecError, match=r"(chunk|key_dim): .*an integer >= 2"):
            symcost.derive(block_spec(8, 4, 1, f"gated_deltanet: {layer}"))


def qwen3_next_small(types, k, **more):
    return T.Qwen3NextConfig(hidden_size=16, num_hidden_layers=len(types), layer_types=types, num_attention_heads=2,
                             num_key_value_heads=1, head_dim=8, linear_num_key_heads=2, linear_num_value_heads=4,
                             linear_key_head_dim=4, linear_value_head_dim=3, linear_conv_kernel_dim=k,
                             moe_intermediate_size=6, shared_expert_intermediate_size=10, num_experts=4,
                             num_experts_per_tok=2, vocab_size=50, **more).to_dict()


@pytest.mark.slow  # the quick half keeps the reference build's tests; these in the full suite
@settings(max_examples=4, deadline=None, derandomize=True)
@given(types=st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=1, max_size=5),
       k=st.integers(1, 4), extra=st.integers(0, 70), b=st.integers(1, 2))
def test_qwen3_next_prefill_step_and_caches_equal_transformers_on_the_cpu(types, k, extra, b):
    """Qwen3-Next's layer mix as layer_types draws it (Gated DeltaNet and gated attention, MoE after each):
    a prompt of n >= k tokens (transformers' cache pads a shorter one to the kernel) and one decode step in
    transformers' model on the CPU, in fp32 (its cache keeps the state in fp32; symcost counts it in the
    cache's dtype): FlopCounterMode's counts of both equal symcost's forward FLOPs, and the cache after each
    holds exactly the bytes the formulas say: keys and values of the attention layers, conv inputs and
    the state of the linear ones. (At least one attention layer: transformers' cache cannot step a model
    of linear layers alone.)"""
    from conftest import assert_prefill_and_step_match
    from symcost.hf import import_config
    from symcost.measure.hf import build

    n, types = k + extra, types if "full_attention" in types else [*types, "full_attention"]
    cfg = qwen3_next_small(types, k)
    model = build(cfg, "cpu").eval().requires_grad_(False)
    assert_prefill_and_step_match(model, symcost.loads(import_config(cfg, "qwen3_next.json")), b, n, 50)


@pytest.mark.slow  # the quick half keeps the reference build's tests; these in the full suite
@settings(max_examples=5, deadline=None, derandomize=True)
@given(types=st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=1, max_size=6),
       n=st.integers(1, 70))
def test_qwen3_next_equal_to_transformers_at_drawn_layer_types(types, n):
    """Parameters, active parameters and forward FLOPs of the imported spec against transformers' model (its
    causal mask written out, on meta), per layer type too, wherever layer_types puts the attention."""
    from symcost.hf import import_config
    from symcost.measure.verify import verify_hf

    cfg = qwen3_next_small(types, 4)
    report = verify_hf(symcost.loads(import_config(cfg)), cfg, {"seq_len": n, "batch": 2})
    assert report.match and report.params[0] == report.params[1], (report.params, report.forward)
    assert report.kinds_agree, report.by_kind


@pytest.mark.slow  # a README figure: in the full suite
def test_the_shipped_qwen3_next_crossover_in_the_readme():
    """README: under kernel, Qwen3-Next's 12 attention layers cost more than its 36 Gated DeltaNet layers
    from 19,958 tokens on: crossover's root, checked by evaluating both at the integers beside it."""
    from conftest import arch

    s = symcost.load(arch("qwen3_next"))
    assert symcost.crossover(s, "attention", "gated_deltanet", "seq_len", convention="kernel").roots == [sympy.Rational(39915, 2)]
    derivation = symcost.derive(s, "kernel")

    def attention_minus_linear(n):
        components = symcost.evaluate(derivation, {"seq_len": n}).components
        return sum(v["forward"] * (1 if node.kind == "attention" else -1) for node, v in components
                   if node.kind in ("attention", "gated_deltanet"))

    assert attention_minus_linear(19957) < 0 < attention_minus_linear(19958)


def test_qwen3_next_serves_split_by_heads_as_vllm_does(cli):
    """serve at tp 4: a GPU holds the weights, and for each sequence the keys, values and linear layers' states,
    of the same spec with every split size quartered (its 2 key/value heads widened to one a GPU, as vLLM
    replicates them): the Gated DeltaNet layers split by key heads with their value heads. plan refuses
    tp > 1 for them in one line (the split is a serving engine's)."""
    from conftest import arch

    s = symcost.load(arch("qwen3_next"))
    per_gpu = symcost.serve(s, tp=4, gpus=4, prompt=4096, output=256).to_dict()["per_gpu"]
    derivation = symcost.derive(s)
    quarter = dim_values(derivation, {"n_heads": 4, "n_kv_heads": 1, "n_k_heads": 4, "n_v_heads": 8, "d_expert": 128,
                                      "d_shared": 128, "vocab": 151936 // 4, "seq_len": 4096 + 256, "batch": 1})
    assert per_gpu["weights_bytes"] == 2 * int(derivation.raw_total.params.xreplace(quarter)) == 39_925_737_600
    assert per_gpu["kv_bytes_per_sequence"] == 2 * int(derivation.raw_total.cache.xreplace(quarter))
    out = cli("plan", arch("qwen3_next"), "--gpus", "64", "--hardware", "h100-sxm", "--tp", "2")
    assert out.exit_code == 2 and "gated_deltanet layers have no tensor-parallel rule for training" in out.output
