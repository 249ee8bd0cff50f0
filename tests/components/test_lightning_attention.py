"""Lightning attention (MiniMax-Text-01's linear layers): parameters, FLOPs forward and backward and the bytes
saved for backward equal PyTorch's on the reference build at drawn sizes (blocks even or not, one sequence,
one token, one head); the same counts equal transformers' own MiniMaxLightningAttention; the `kernel`
convention counts the in-block pairs the decay keeps, by hand at two sizes; MiniMax imports exactly, drawn
layer mixes on the CPU with their caches and decode steps."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import block_spec, kernel_minus_pytorch, measured_layer
from symcost.errors import SpecError
from symcost.evaluate import dim_values
from symcost.hf import import_config
from symcost.memory import saved_bytes
from symcost.symbols import ACT

torch = pytest.importorskip("torch")  # the reference build and transformers' layer
T = pytest.importorskip("transformers")


def spec(d, h, D, B, n, b):
    return block_spec(d, n, b, f"lightning_attention: {{dim: {d}, heads: {h}, head_dim: {D}, block: {B}}}")


sizes = dict(d=st.integers(1, 6), h=st.integers(1, 3), D=st.integers(1, 4), B=st.integers(1, 5), n=st.integers(1, 12),
             b=st.integers(1, 2))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(**sizes)
def test_counts_and_saved_bytes_equal_pytorch_at_drawn_sizes(d, h, D, B, n, b):
    s = spec(d, h, D, B, n, b)
    report = symcost.verify(s, backward=True, device="cpu")
    assert report.match, [(row.path, row.symbolic, row.measured) for row in report.rows]
    row = next(row for row in report.rows if row.kind == "lightning_attention")
    # qkv_proj, the norm's weight over all heads, output_gate, out_proj (the decays are buffers)
    assert row.symbolic["params"] == 3 * d * h * D + h * D + d * h * D + h * D * d
    for dtype in ("fp32", "bf16"):
        assert symcost.verify_memory(s, dtype=dtype).match


def test_one_sequence_token_or_head_keeps_views_not_copies():
    """The matmuls fold batch and heads by copying q, k and v, except where one of the three is 1 (a view of
    silu's output): the rule follows each case (else 112 bytes off at the first size)."""
    for d, h, D, B, n, b in ((4, 1, 2, 3, 7, 2), (4, 2, 2, 3, 7, 1), (4, 2, 2, 3, 1, 2), (4, 2, 2, 3, 7, 2)):
        assert symcost.verify_memory(spec(d, h, D, B, n, b), dtype="fp32").match


@pytest.mark.slow  # the quick half keeps the reference build's tests; these in the full suite
@settings(max_examples=6, deadline=None, derandomize=True)
@given(**sizes, bf16=st.booleans())
def test_equal_to_transformers_minimax_lightning_attention(d, h, D, B, n, b, bf16):
    """Its own layer, its torch path: parameters, forward and backward FLOPs, saved bytes in fp32 and bf16."""
    from transformers.models.minimax.modeling_minimax import MiniMaxLightningAttention

    config = T.MiniMaxConfig(hidden_size=d, num_attention_heads=h, head_dim=D, block_size=B, num_hidden_layers=2,
                             layer_types=["linear_attention"] * 2)
    dtype = torch.bfloat16 if bf16 else torch.float32

    class Layer(torch.nn.Module):  # its forward takes positions and a mask it does not read
        def __init__(self):
            super().__init__()
            self.inner = MiniMaxLightningAttention(config, 0).to(dtype)

        def forward(self, x):
            return self.inner(x, None, None)[0]

    params, forward, backward, saved = measured_layer(Layer(), torch.randn(b, n, d, dtype=dtype, requires_grad=True))
    derivation = symcost.derive(spec(d, h, D, B, n, b))
    node, ours = next((node, v) for node, v in symcost.evaluate(derivation).components
                      if node.kind == "lightning_attention")
    assert (ours["params"], ours["forward"], ours["backward"]) == (params, forward, backward)
    rule = saved_bytes(derivation, "eager", "none")[node.path]
    assert saved == int(rule.xreplace(dim_values(derivation)).xreplace({ACT: 2 if bf16 else 4}))


def test_the_kernel_convention_keeps_the_pairs_the_decay_keeps_by_hand():
    """Under kernel each block's two products count the L(L + 1)/2 pairs its decay keeps, L(L - 1)/2 fewer
    than the L² pytorch's matmuls run. MiniMax-Text-01's layer (64 heads of 128, blocks of 256) at 4,096
    tokens: 16 blocks, 16 x 256 x 255 / 2 = 522,240 pairs fewer a head, so 2 x 2 x 64 x 128 x 522,240 =
    17,112,760,320 FLOPs fewer; at 300 tokens (a block of 256 and one of 44) with batch 3: 3 x (32,640 + 946)
    x 128 x 64 x 4 = 3,301,638,144 fewer."""
    layer = "lightning_attention: {dim: 6144, heads: 64, head_dim: 128, block: 256}"
    for n, b, fewer in ((4096, 1, 17_112_760_320), (300, 3, 3_301_638_144)):
        assert kernel_minus_pytorch(6144, n, b, layer) == -fewer


def minimax_small(types, **more):
    sizes = dict(hidden_size=16, num_hidden_layers=len(types), num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                 intermediate_size=12, num_local_experts=4, num_experts_per_tok=2, vocab_size=40, layer_types=types)
    return T.MiniMaxConfig(**sizes | more).to_dict()


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=4, deadline=None, derandomize=True)
@given(data=st.data(), layers=st.integers(1, 4), block=st.integers(1, 5), n=st.integers(1, 9), b=st.integers(1, 2))
def test_minimax_equal_to_transformers_at_drawn_layer_mixes(data, layers, block, n, b):
    """Lightning and softmax attention layers wherever layer_types put them: parameters, active parameters and
    forward FLOPs against MiniMaxForCausalLM on meta (its causal mask written out), per layer type too; then on
    the CPU a prompt and a decode step: the counts and the caches (keys and values; the lightning layers'
    states, in a list of MiniMax's cache's own) equal the formulas. (At least one softmax layer:
    transformers' cache cannot step a model of lightning layers alone.)"""
    from conftest import assert_prefill_and_step_match
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    types = data.draw(st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=layers,
                               max_size=layers))
    types = types if "full_attention" in types else [*types[:-1], "full_attention"]
    cfg = minimax_small(types, block_size=block)
    s = symcost.loads(import_config(cfg, "minimax.json"))
    report = verify_hf(s, cfg, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1] and report.kinds_agree, report.by_kind
    assert_prefill_and_step_match(build(cfg, "cpu").eval().requires_grad_(False), s, b, n, 40)


@pytest.mark.parametrize("change, fragment", [
    ({"sliding_window": 64}, "sliding_window: a window on MiniMax's attention layers is not written by the importer"),
    ({"layer_types": ["linear_attention"] * 3}, "layer_types: expected 4 layer types, each one of linear_attention, "
                                                "full_attention"),
])
def test_minimax_refusals(change, fragment):
    with pytest.raises(SpecError, match=re.escape(fragment)):
        import_config(minimax_small(["linear_attention"] * 3 + ["full_attention"]) | change, "config.json")


def test_minimax_serves_split_by_heads_as_vllm_does(cli, tmp_path):
    """serve at tp 2: a GPU holds the weights and, for each sequence, the keys, values and lightning states of the
    same spec with its heads, experts' hidden size and vocabulary halved; plan refuses tp > 1 for lightning
    attention in one line (the split is a serving engine's)."""
    config = minimax_small(["linear_attention", "full_attention"], num_key_value_heads=2, vocab_size=128)
    path = tmp_path / "minimax.yaml"
    path.write_text(import_config(config, "minimax.json"))
    s = symcost.load(path)
    per_gpu = symcost.serve(s, tp=2, gpus=2, prompt=64, output=16).to_dict()["per_gpu"]
    derivation = symcost.derive(s)
    half = dim_values(derivation, {"n_heads": 1, "n_kv_heads": 1, "d_ff": 6, "vocab": 64, "seq_len": 80, "batch": 1})
    assert per_gpu["weights_bytes"] == 2 * int(derivation.raw_total.params.xreplace(half))
    assert per_gpu["kv_bytes_per_sequence"] == 2 * int(derivation.raw_total.cache.xreplace(half))
    out = cli("plan", path, "--gpus", "8", "--hardware", "h100-sxm", "--tp", "2")
    assert out.exit_code == 2 and "lightning_attention layers have no tensor-parallel rule for training" in out.output
