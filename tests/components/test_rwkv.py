"""RWKV's time mixing and channel mixing: parameters, FLOPs forward and backward and the bytes saved for
backward equal PyTorch's on the reference build at drawn sizes, and the same counts equal transformers' own
RwkvSelfAttention and RwkvFeedForward; RWKV-4 imports exactly, with its state after a prompt and a decode
step."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import block_spec, measured_layer
from symcost.evaluate import dim_values
from symcost.hf import import_config
from symcost.memory import saved_bytes
from symcost.symbols import ACT

torch = pytest.importorskip("torch")  # the reference build and transformers' layers
T = pytest.importorskip("transformers")

sizes = dict(d=st.integers(1, 6), w=st.integers(1, 6), h=st.integers(1, 8), n=st.integers(1, 7), b=st.integers(1, 2))


def layers(d, w, h):
    return (("rwkv_time_mix", f"rwkv_time_mix: {{dim: {d}, width: {w}}}"),
            ("rwkv_channel_mix", f"rwkv_channel_mix: {{dim: {d}, hidden: {h}}}"))


@settings(max_examples=8, deadline=None, derandomize=True)
@given(**sizes)
def test_counts_and_saved_bytes_equal_pytorch_at_drawn_sizes(d, w, h, n, b):
    for kind, layer in layers(d, w, h):
        s = block_spec(d, n, b, layer)
        report = symcost.verify(s, backward=True, device="cpu")
        assert report.match, [(row.path, row.symbolic, row.measured) for row in report.rows]
        row = next(row for row in report.rows if row.kind == kind)
        # key, value, receptance and output, time_decay and time_first, three μ; or key, value, receptance, two μ
        assert row.symbolic["params"] == (4 * d * w + 2 * w + 3 * d if kind == "rwkv_time_mix"
                                          else 2 * d * h + d * d + 2 * d)
        for dtype in ("fp32", "bf16"):
            assert symcost.verify_memory(s, dtype=dtype).match


@pytest.mark.slow  # the quick half keeps the reference build's tests; these in the full suite
@settings(max_examples=5, deadline=None, derandomize=True)
@given(**sizes, bf16=st.booleans())
def test_equal_to_transformers_rwkv_layers(d, w, h, n, b, bf16):
    """Its own layers, their CPU path: parameters, forward and backward FLOPs, saved bytes in fp32 and bf16."""
    from transformers.models.rwkv.modeling_rwkv import RwkvFeedForward, RwkvSelfAttention

    config = T.RwkvConfig(hidden_size=d, attention_hidden_size=w, intermediate_size=h, num_hidden_layers=1)
    dtype = torch.bfloat16 if bf16 else torch.float32
    for (kind, layer), cls in zip(layers(d, w, h), (RwkvSelfAttention, RwkvFeedForward)):
        class Layer(torch.nn.Module):  # its forward returns the output and the state
            def __init__(self):
                super().__init__()
                self.inner = cls(config, 0).to(dtype)

            def forward(self, x):
                return self.inner(x)[0]

        x = torch.randn(b, n, d, dtype=dtype, requires_grad=True)
        params, forward, backward, saved = measured_layer(Layer(), x)
        derivation = symcost.derive(block_spec(d, n, b, layer))
        node, ours = next((node, v) for node, v in symcost.evaluate(derivation).components if node.kind == kind)
        assert (ours["params"], ours["forward"], ours["backward"]) == (params, forward, backward)
        rule = saved_bytes(derivation, "eager", "none")[node.path]
        assert saved == int(rule.xreplace(dim_values(derivation)).xreplace({ACT: 2 if bf16 else 4}))


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=4, deadline=None, derandomize=True)
@given(layers_=st.integers(2, 3), ff=st.sampled_from([None, 24]), n=st.integers(1, 9), b=st.integers(1, 2))
def test_rwkv_equal_to_transformers(layers_, ff, n, b):
    """RWKV-4 (its pre-LayerNorm, time and channel mixing each on a LayerNorm): parameters and forward FLOPs against
    RwkvForCausalLM on meta, per layer type too; then on the CPU a prompt and one decode step: the counts and the
    state it returns (the shifted tokens, the wkv's numerator, denominator and max, a (batch, hidden, layer) tensor
    each) equal the formulas. The decode step with one sequence: transformers' step broadcasts the kept token
    (batch, hidden) against the new one (batch, 1, hidden), so two sequences or more run batch² rows. Two layers
    or more: its initialisation on the CPU divides by num_hidden_layers - 1."""
    from torch.utils.flop_counter import FlopCounterMode

    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    config = T.RwkvConfig(hidden_size=16, num_hidden_layers=layers_, intermediate_size=ff, vocab_size=40,
                          context_length=32).to_dict()
    s = symcost.loads(import_config(config, "rwkv.json"))
    report = verify_hf(s, config, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1] and report.kinds_agree, report.by_kind
    model = build(config, "cpu").eval().requires_grad_(False)
    full, step = symcost.derive(s), symcost.derive(s, decode=True)
    held = lambda state: sum(t.numel() * t.element_size() for t in state)
    with torch.no_grad(), FlopCounterMode(display=False) as prefill:
        out = model(torch.randint(0, 40, (1, n)), use_cache=True)
    at = {"batch": 1, "seq_len": n}
    assert held(out.state) == 4 * int(full.raw_total.cache.xreplace(dim_values(full, at)))
    assert prefill.get_total_flops() == symcost.evaluate(full, at).total["forward"]
    with torch.no_grad(), FlopCounterMode(display=False) as one:
        out = model(torch.randint(0, 40, (1, 1)), state=out.state, use_cache=True)
    at = {"batch": 1, "context": n}
    assert held(out.state) == 4 * int(step.raw_total.cache.xreplace(dim_values(step, at)))
    assert one.get_total_flops() == symcost.evaluate(step, at).total["forward"]
