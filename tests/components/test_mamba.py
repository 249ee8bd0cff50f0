"""Mamba's selective state-space layer: parameters, FLOPs (forward and backward) and the bytes
saved for backward equal PyTorch's at drawn sizes, and the closed forms are linear in seq_len
where attention is quadratic; its cache after a prompt and a decode step equals transformers'.
(Against transformers' MambaForCausalLM on meta: test_hf.py; the reference build's decode step:
test_memory_inference.py.)"""

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import block_spec


def spec(d, inner, state, kernel, rank, n, b, bias=False, conv_bias=True, norms=False):
    flags = f"bias: {str(bias).lower()}, conv_bias: {str(conv_bias).lower()}, norms: {str(norms).lower()}"
    return block_spec(d, n, b, f"mamba: {{dim: {d}, inner: {inner}, state: {state}, kernel: {kernel}, dt_rank: {rank}, "
                               f"{flags}}}")


@settings(max_examples=20, deadline=None, derandomize=True)
@given(d=st.integers(1, 8), inner=st.integers(1, 12), state=st.integers(1, 6), kernel=st.integers(1, 5),
       rank=st.integers(1, 4), n=st.integers(1, 7), b=st.integers(1, 3), bias=st.booleans(), conv_bias=st.booleans(),
       norms=st.booleans())
def test_counts_equal_pytorch_at_drawn_sizes(d, inner, state, kernel, rank, n, b, bias, conv_bias, norms):
    """Every switch, including Jamba's RMSNorms on dt, B and C; saved bytes at each dtype."""
    s = spec(d, inner, state, kernel, rank, n, b, bias, conv_bias, norms)
    report = symcost.verify(s, backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]
    mamba = next(r for r in report.rows if r.kind == "mamba")
    # in_proj, conv, x_proj, dt_proj (with bias), A, D, out_proj
    assert mamba.symbolic["params"] == (d * 2 * inner + 2 * inner * bias + inner * kernel + inner * conv_bias
                                        + inner * (rank + 2 * state) + rank * inner + inner + inner * state + inner
                                        + inner * d + d * bias + (rank + 2 * state) * norms)
    for dtype in ("fp32", "bf16"):
        assert symcost.verify_memory(s, dtype=dtype).match


def test_linear_in_seq_len_where_attention_is_quadratic():
    m = symcost.derive(symcost.loads("""\
name: m
dims: {d: 64, seq_len: 8, batch: 1}
layers:
  - embedding: {vocab: 7, dim: d}
  - mamba: {dim: d, inner: 2 * d, state: 16, kernel: 4, dt_rank: 4}
"""))
    forward = m.total.forward
    T = next(s for s in forward.free_symbols if s.name == "seq_len")
    assert sympy.degree(sympy.expand(forward), T) == 1
    # the recurrent state a decoder keeps: batch x inner x (kernel + state), whatever the context
    at = lambda n: symcost.memory(m.spec, {"seq_len": n}).to_dict()["bytes"]
    assert at(4096)["kv_cache_bytes"] == at(8)["kv_cache_bytes"] == 2 * 128 * (4 + 16)  # a bf16 state, k = 4 inputs
    assert at(4096)["kv_bytes_per_token"] == 0


def test_prefill_step_and_cache_equal_transformers_on_the_cpu():
    """MambaForCausalLM on the CPU keeps k conv inputs and the state; a decode step convolves the k kept inputs
    and the new one: its counts and cache after a prompt and a step equal the formulas."""
    T = pytest.importorskip("transformers")
    from conftest import assert_prefill_and_step_match
    from symcost.hf import import_config
    from symcost.measure.hf import build

    config = T.MambaConfig(hidden_size=16, num_hidden_layers=2, state_size=4, expand=2, conv_kernel=3,
                           vocab_size=40).to_dict()
    model = build(config, "cpu").eval().requires_grad_(False)
    assert_prefill_and_step_match(model, symcost.loads(import_config(config)), 2, 6, 40)
