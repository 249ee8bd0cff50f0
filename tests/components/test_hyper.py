"""Hyper-connections (components/hyper.py: `hyper_expand`, a `residual` with `streams`, `hyper_head`): parameters,
FLOPs forward and backward, the bytes saved for backward (fp32 and bf16) and decode steps equal PyTorch's on the
reference build at drawn streams, widths and Sinkhorn iterations; the counts of one site by hand; a site's
misuses refused in one line. (Against transformers' own DeepSeek-V4 modules: test_compressed_attention.py.)"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from symcost.errors import SpecError
from symcost.evaluate import dim_values

torch = pytest.importorskip("torch")  # the reference build


def spec(d, n, b, N, iters, body="mlp: {dim: %d, hidden: 5, residual: false}", layers=2):
    return symcost.loads(f"""name: m
dims: {{seq_len: {n}, batch: {b}}}
layers:
  - embedding: {{vocab: 7, dim: {d}}}
  - hyper_expand: {{streams: {N}}}
  - repeat: {layers}
    layers:
      - residual:
          - rmsnorm: {{dim: {d}}}
          - {body % d}
        streams: {N}
        sinkhorn_iters: {iters}
  - hyper_head: {{dim: {d}, streams: {N}}}
  - rmsnorm: {{dim: {d}}}
""")


@settings(max_examples=8, deadline=None, derandomize=True)
@given(d=st.integers(1, 6), n=st.integers(1, 6), b=st.integers(1, 2), N=st.integers(1, 4), iters=st.integers(1, 4))
def test_counts_saved_bytes_and_steps_equal_pytorch_at_drawn_sizes(d, n, b, N, iters):
    from symcost.measure.reference import measure_decode

    s = spec(d, n, b, N, iters)
    report = symcost.verify(s, backward=True, device="cpu")
    assert report.match, [(row.path, row.symbolic, row.measured) for row in report.rows]
    for dtype in ("fp32", "bf16"):
        assert symcost.verify_memory(s, dtype=dtype).match
    step = symcost.derive(s, decode=True)
    for context in (0, n):
        at = dim_values(step, {"context": context})
        assert measure_decode(step, at, context, device="cpu").forward_total == symcost.evaluate(
            step, {"context": context}).total["forward"]


def test_one_site_by_hand():
    """DeepSeek-V4-Flash's site (4 streams of 4,096): (2·4 + 4²) x 4·4,096 projection weights, 24 biases and 3
    scales; a token's forward 2·(4·4,096·24) for the logits and 2·(4·4·4,096) for the streams' mixing."""
    s = spec(4096, 10, 1, 4, 20, layers=1)
    node, counts = next((node, v) for node, v in symcost.evaluate(s).components if node.kind == "hyper_connection")
    assert counts["params"] == 24 * 4 * 4096 + 24 + 3 == 393_243
    assert counts["forward"] == 10 * (2 * 4 * 4096 * 24 + 2 * 4 * 4 * 4096)


@pytest.mark.parametrize("layers, message", [
    ("  - residual: [{rmsnorm: {dim: 8}}]\n    shortcut: [{linear: {dim: 8, out: 8}}]\n    streams: 2\n",
     "shortcut: a hyper-connected residual (streams) mixes its streams itself: it takes no shortcut"),
    ("  - residual: [{rmsnorm: {dim: 4}}]\n    streams: 3\n", "rmsnorm"),
])
def test_a_site_s_misuse_is_refused_in_one_line(layers, message):
    text = "name: m\ndims: {seq_len: 4}\nlayers:\n  - embedding: {vocab: 7, dim: 8}\n  - hyper_expand: {streams: 2}\n"
    with pytest.raises(SpecError) as raised:
        symcost.evaluate(symcost.derive(symcost.loads(text + layers)))
    assert message in str(raised.value) and "\n" not in str(raised.value)
