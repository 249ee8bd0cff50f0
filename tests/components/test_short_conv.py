"""LFM2's gated short convolution: parameters, FLOPs forward and backward and the bytes saved for
backward equal PyTorch's on the reference build at drawn sizes, with a decode step's FLOPs and cache; LFM2
imports exactly against transformers at drawn layer mixes (on meta, and on the CPU a prefill and a decode step
with its caches). (Its published file: test_hf_configs.py.)"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import assert_reference_matches, block_spec
from symcost.evaluate import dim_values

torch = pytest.importorskip("torch")


@settings(max_examples=8, deadline=None, derandomize=True)
@given(d=st.integers(1, 8), k=st.integers(1, 4), n=st.integers(1, 9), b=st.integers(1, 2), bias=st.booleans())
def test_counts_saved_bytes_and_steps_equal_pytorch_at_drawn_sizes(d, k, n, b, bias):
    s = block_spec(d, n, b, f"short_conv: {{dim: {d}, kernel: {k}, bias: {str(bias).lower()}}}")
    row = assert_reference_matches(s, n, "short_conv")
    # in_proj (B, C, x), the depthwise conv, out_proj, each with a bias or none
    assert row.symbolic["params"] == 3 * d * d + d * k + d * d + bias * (3 * d + d + d)
    step = symcost.derive(s, decode=True)
    assert step.raw_total.cache.xreplace(dim_values(step, {"context": 0})) == b * d * k


def lfm2_small(T, types, k):
    return T.Lfm2Config(hidden_size=16, num_hidden_layers=len(types), layer_types=types, num_attention_heads=2,
                        num_key_value_heads=1, intermediate_size=48, block_multiple_of=8, conv_L_cache=k,
                        vocab_size=50).to_dict()


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=5, deadline=None, derandomize=True)
@given(types=st.lists(st.sampled_from(["conv", "full_attention"]), min_size=1, max_size=5), k=st.integers(1, 4),
       extra=st.integers(0, 9), b=st.integers(1, 2))
def test_lfm2_equal_to_transformers_at_drawn_layer_types(types, k, extra, b):
    """Parameters, active parameters and forward FLOPs against Lfm2ForCausalLM on meta (its causal mask written
    out), per layer type too; then on the CPU a prompt of n >= k tokens (transformers' cache pads a shorter one
    to the kernel) and one decode step: FlopCounterMode's counts and the caches after each (keys and values,
    conv inputs) equal the formulas. (At least one attention layer: transformers' cache cannot step a model of
    convolutions alone.)"""
    T = pytest.importorskip("transformers")
    from conftest import assert_prefill_and_step_match
    from symcost.hf import import_config
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    n, types = k + extra, types if "full_attention" in types else [*types, "full_attention"]
    cfg = lfm2_small(T, types, k)
    s = symcost.loads(import_config(cfg, "lfm2.json"))
    report = verify_hf(s, cfg, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1] and report.kinds_agree, report.by_kind
    assert_prefill_and_step_match(build(cfg, "cpu").eval().requires_grad_(False), s, b, n, 50)
