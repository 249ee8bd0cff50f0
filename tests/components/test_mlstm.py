"""xLSTM's mLSTM layer: parameters, FLOPs forward and backward, the bytes saved for backward (fp32 and bf16) and
decode steps equal PyTorch's on the reference build at drawn sizes (chunks whole or with a step-by-step tail, one
token, one head, one sequence); the same counts equal transformers' own xLSTMLayer; the cell's FLOPs by hand at
xLSTM-7B's sizes, `kernel` the same; xLSTM imports exactly, its published sizes and a small model with its
caches and decode step; bad input in one line."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import assert_reference_matches, block_spec, kernel_minus_pytorch, measured_layer
from symcost.errors import SpecError
from symcost.evaluate import dim_values
from symcost.hf import import_config
from symcost.memory import saved_bytes
from symcost.symbols import ACT

torch = pytest.importorskip("torch")  # the reference build and transformers' layer
T = pytest.importorskip("transformers")


def layer(d, h, qk, v, Q):
    return f"mlstm: {{dim: {d}, heads: {h}, qk_dim: {qk}, v_dim: {v}, chunk: {Q}}}"


@settings(max_examples=10, deadline=None, derandomize=True)
@given(h=st.integers(1, 3), dq=st.integers(1, 3), dv=st.integers(1, 3), d=st.integers(1, 6), Q=st.integers(2, 5),
       n=st.integers(1, 13), b=st.integers(1, 2))
def test_counts_saved_bytes_and_steps_equal_pytorch_at_drawn_sizes(h, dq, dv, d, Q, n, b):
    row = assert_reference_matches(block_spec(d, n, b, layer(d, h, h * dq, h * dv, Q)), n, "mlstm")
    qk, v = h * dq, h * dv  # q, k; v and the output gate; the gates with biases; the head norm; out_proj
    assert row.symbolic["params"] == 2 * d * qk + 2 * d * v + 2 * (d * h + h) + v + v * d


def xlstm_config(d, h, qk_factor, Q, **more):
    return T.xLSTMConfig(hidden_size=d, embedding_dim=d, num_heads=h, qk_dim_factor=qk_factor, chunk_size=Q,
                         num_hidden_layers=1, num_blocks=1, vocab_size=40, **more)


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=8, deadline=None, derandomize=True)
@given(h=st.sampled_from([1, 2, 4]), d=st.sampled_from([8, 16]), qk_factor=st.sampled_from([0.25, 0.5, 1.0]),
       Q=st.integers(2, 5), n=st.integers(1, 13), b=st.integers(1, 3))
def test_equal_to_transformers_xlstm_layer(h, d, qk_factor, Q, n, b):
    """Its own layer (the native path transformers runs without the xlstm package), in fp32: parameters,
    forward and backward FLOPs and saved bytes; whole chunks, a tail of steps, both, or one token."""
    from transformers.models.xlstm.modeling_xlstm import xLSTMLayer

    config = xlstm_config(d, h, qk_factor, Q)
    qk = int(d * qk_factor)
    if qk % h:
        return

    class Out(torch.nn.Module):  # the layer's output without its state
        def __init__(self):
            super().__init__()
            self.layer = xLSTMLayer(config)

        def forward(self, x):
            return self.layer(x)[0]

    x = torch.randn(b, n, d, requires_grad=True)
    params, forward, backward, saved = measured_layer(Out(), x)
    spec = block_spec(d, n, b, layer(d, h, qk, d, Q).replace("}", ", residual: false}"))
    derivation = symcost.derive(spec)
    node, ours = next((node, v) for node, v in symcost.evaluate(derivation).components if node.kind == "mlstm")
    assert (ours["params"], ours["forward"], ours["backward"]) == (params, forward, backward)
    rule = saved_bytes(derivation, "eager", "none")[node.path]
    assert saved == int(rule.xreplace(dim_values(derivation)).xreplace({ACT: 4}))


@pytest.mark.slow
def test_transformers_native_path_fails_in_bf16_once_a_chunk_fills():
    """Why the reference build runs the cell in fp32 (the module doc): transformers' own layer, cast to bf16,
    cannot run a prompt as long as a chunk."""
    from transformers.models.xlstm.modeling_xlstm import xLSTMLayer

    module = xLSTMLayer(xlstm_config(8, 2, 0.5, 4)).to(torch.bfloat16)
    with pytest.raises(RuntimeError, match="expected scalar type"):
        module(torch.randn(1, 4, 8, dtype=torch.bfloat16))


def test_the_cell_by_hand_and_kernel_the_same():
    """xLSTM-7B's layer (8 heads, dq 256, dv 512, chunk 64). At 4,096 tokens: 64 chunks, no steps; a chunk per
    head runs 256·64·512 + 64²·256 + 64·256·512 + 64·256 + 64²·512 = 19,939,328 multiply-adds, so the cell's
    forward is 2 x 8 x 64 x 19,939,328 = 20,417,871,872 FLOPs. At 100 tokens of batch 3: one chunk and 36 steps
    of 2·256·512 + 256 = 262,400 multiply-adds each, 2 x 3 x 8 x (19,939,328 + 36 x 262,400) = 1,410,514,944.
    The xlstm package's kernels run the same products: kernel adds nothing."""
    text = layer(4096, 8, 2048, 4096, 64)
    for n, b, cell in ((4096, 1, 20_417_871_872), (100, 3, 1_410_514_944)):
        derivation = symcost.derive(block_spec(4096, n, b, text))
        rule = next(node for node in derivation.raw if node.kind == "mlstm").parts["cell"]
        at = dim_values(derivation)
        assert (rule.forward.xreplace(at), rule.backward.xreplace(at)) == (cell, 2 * cell)
        assert kernel_minus_pytorch(4096, n, b, text) == 0


def test_the_cache_holds_the_memory_normaliser_and_stabiliser():
    """batch x heads x (dq·dv + dq + 1) values: xLSTM-7B's layer, one sequence: 8 x (256 x 512 + 256 + 1) =
    1,050,632 values, whatever the context."""
    step = symcost.derive(block_spec(4096, 10, 1, layer(4096, 8, 2048, 4096, 64)), decode=True)
    for context in (0, 100_000):
        assert step.raw_total.cache.xreplace(dim_values(step, {"context": context})) == 1_050_632


# NX-AI/xLSTM-7b's config.json, the fields its sizes come from as its model card's repository publishes them
# (the others take transformers' defaults, which are xLSTM-7B's)
XLSTM_7B = {"model_type": "xlstm", "architectures": ["xLSTMForCausalLM"], "embedding_dim": 4096, "num_heads": 8,
            "num_blocks": 32, "vocab_size": 50304, "qk_dim_factor": 0.5, "v_dim_factor": 1.0,
            "ffn_proj_factor": 2.667, "ffn_round_up_to_multiple_of": 64, "gate_soft_cap": 15.0,
            "output_logit_soft_cap": 30.0, "chunk_size": 64, "chunkwise_kernel": "chunkwise--triton_xl_chunk",
            "weight_mode": "single"}


def test_xlstm_7b_by_hand():
    """A block: two norms (2 x 4096), q and k (2 x 2048 x 4096), v, the output gate and out_proj (3 x 4096²),
    the gates with biases (2 x (8 x 4096 + 8)), the head norm (4096), the SwiGLU feed-forward at 4096 x 2.667
    rounded up to 10,944 (3 x 4096 x 10,944): 201,666,576; 32 blocks, the table and the untied head (2 x 50,304
    x 4096) and the final norm: 6,865,424,896 (transformers' count on meta: test_hf.py)."""
    total = symcost.evaluate(symcost.loads(import_config(XLSTM_7B, "config.json"))).total
    assert total["params"] == 32 * 201_666_576 + 2 * 50_304 * 4096 + 4096 == 6_865_424_896


@pytest.mark.slow
@settings(max_examples=4, deadline=None, derandomize=True)
@given(layers=st.integers(1, 3), h=st.sampled_from([1, 2, 4]), Q=st.integers(2, 6), n=st.integers(1, 14),
       b=st.integers(1, 2))
def test_small_xlstm_equal_to_transformers_with_its_cache(layers, h, Q, n, b):
    """Parameters and forward FLOPs against xLSTMForCausalLM on meta, per layer type too; then on the CPU a prompt
    and a decode step: the counts and the cache (each layer's memory, normaliser and stabiliser). Width 128 so that
    the cache's sizes (rounded to multiples of 64 by the config) are the layer's."""
    from conftest import assert_prefill_and_step_match
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    cfg = T.xLSTMConfig(hidden_size=128, num_heads=h, num_hidden_layers=layers, num_blocks=layers, vocab_size=40,
                        chunk_size=Q).to_dict()
    s = symcost.loads(import_config(cfg, "xlstm.json"))
    report = verify_hf(s, cfg, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1] and report.kinds_agree, report.by_kind
    assert_prefill_and_step_match(build(cfg, "cpu").eval().requires_grad_(False), s, b, n, 40)


@pytest.mark.parametrize("change, fragment", [
    ({"weight_mode": "fused"}, "weight_mode: 'fused' is not supported"),
    ({"use_bias": True}, "use_bias: biases on every projection"),
    ({"gate_soft_cap": None}, "gate_soft_cap: gates without their soft cap"),
    ({"gate_soft_cap": 10.0}, None),  # any cap counts the same
    ({"num_blocks": 32, "num_hidden_layers": 30}, "num_blocks: 32 differs from num_hidden_layers 30"),
    ({"embedding_dim": 2048}, "embedding_dim: 2048 without hidden_size"),
    ({"mode": "train_with_padding"}, "mode: 'train_with_padding' is not supported"),
    ({"ffn_proj_factor": float("inf")}, "ffn_proj_factor: expected a positive number, got inf"),
    ({"qk_dim_factor": 0.0001}, "qk_dim_factor: expected a positive number, got 0.0001"),  # no width left
])
def test_a_config_it_cannot_write_is_refused_in_one_line(change, fragment):
    cfg = {**XLSTM_7B, **change}
    if fragment is None:
        import_config(cfg, "config.json")
        return
    with pytest.raises(SpecError, match=fragment):
        import_config(cfg, "config.json")


def test_heads_must_divide_each_width():
    for text, field in ((layer(8, 3, 6, 8, 4), "v_dim 8"), (layer(8, 2, 3, 8, 4), "qk_dim 3")):
        with pytest.raises(SpecError, match=f"heads do not divide {field}"):
            symcost.evaluate(symcost.derive(block_spec(8, 4, 1, text)))


@pytest.mark.slow
def test_a_small_xlstm_saves_what_transformers_saves_its_logits_cap_named():
    """The whole model's saved bytes in one training forward with its loss (fp32: transformers' native cell cannot
    run bf16 once a chunk fills), against xLSTMForCausalLM's: equal but for the logits' soft cap, whose tanh output
    (fp32, tokens x vocab) the spec's head does not write (no FLOPs under pytorch)."""
    from symcost.measure.hf import saved_bytes as hf_saved

    cfg = T.xLSTMConfig(hidden_size=128, num_heads=2, num_hidden_layers=2, num_blocks=2, vocab_size=40,
                        chunk_size=8).to_dict()
    derivation = symcost.derive(symcost.loads(import_config(cfg, "xlstm.json")))
    b, n = 2, 29  # three chunks and a tail of five steps
    at = dim_values(derivation, {"batch": b, "seq_len": n})
    ours = int(sum(saved_bytes(derivation, "eager", "none").values()).xreplace(at).xreplace({ACT: 4}))
    assert sum(hf_saved(cfg, b, n).values()) == ours + 4 * b * n * 40
