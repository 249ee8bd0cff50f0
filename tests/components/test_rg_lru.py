"""Griffin's recurrent block (RecurrentGemma's RG-LRU layers): parameters, FLOPs forward and backward and the
bytes saved for backward equal PyTorch's on the reference build at drawn sizes; the same counts equal
transformers' own RecurrentGemmaRecurrentBlock (one token, one sequence and more); RecurrentGemma imports
exactly, drawn layer cycles on the CPU with their caches (the recurrent states its blocks keep on
themselves) and decode steps."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import block_spec, measured_layer
from symcost.errors import SpecError
from symcost.evaluate import dim_values
from symcost.hf import import_config
from symcost.memory import saved_bytes
from symcost.symbols import ACT

torch = pytest.importorskip("torch")  # the reference build and transformers' block
T = pytest.importorskip("transformers")


def spec(d, w, h, k, n, b):
    return block_spec(d, n, b, f"rg_lru: {{dim: {d}, width: {w}, heads: {h}, kernel: {k}}}")


@st.composite
def sizes(draw):
    h = draw(st.integers(1, 3))
    return dict(d=draw(st.integers(1, 6)), w=h * draw(st.integers(1, 3)), h=h, k=draw(st.integers(1, 4)),
                n=draw(st.integers(1, 9)), b=draw(st.integers(1, 2)))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(sizes())
def test_counts_and_saved_bytes_equal_pytorch_at_drawn_sizes(size):
    d, w, h, k, n, b = size.values()
    s = spec(d, w, h, k, n, b)
    report = symcost.verify(s, backward=True, device="cpu")
    assert report.match, [(row.path, row.symbolic, row.measured) for row in report.rows]
    row = next(row for row in report.rows if row.kind == "rg_lru")
    # linear_y, linear_x, linear_out (with biases), the conv (with a bias), two gates of heads blocks and biases, Λ
    assert row.symbolic["params"] == 3 * d * w + 2 * w + d + w * k + w + 2 * (w * w // h + w) + w
    for dtype in ("fp32", "bf16"):
        assert symcost.verify_memory(s, dtype=dtype).match


@pytest.mark.slow  # the quick half keeps the reference build's tests; these in the full suite
@settings(max_examples=6, deadline=None, derandomize=True)
@given(size=sizes(), bf16=st.booleans())
def test_equal_to_transformers_recurrent_gemma_recurrent_block(size, bf16):
    """Its own block, its torch path (no cache): parameters, forward and backward FLOPs, saved bytes in fp32
    and bf16."""
    from transformers.models.recurrent_gemma.modeling_recurrent_gemma import RecurrentGemmaRecurrentBlock

    d, w, h, k, n, b = size.values()
    config = T.RecurrentGemmaConfig(hidden_size=d, lru_width=w, num_attention_heads=h, conv1d_width=k,
                                    num_hidden_layers=1)
    dtype = torch.bfloat16 if bf16 else torch.float32
    positions = torch.arange(n)[None].expand(b, n)

    class Block(torch.nn.Module):  # its forward takes positions, a mask and whether to keep a cache
        def __init__(self):
            super().__init__()
            self.inner = RecurrentGemmaRecurrentBlock(config, 0).to(dtype)

        def forward(self, x):
            return self.inner(x, positions, None, use_cache=False)[0]

    params, forward, backward, saved = measured_layer(Block(), torch.randn(b, n, d, dtype=dtype, requires_grad=True))
    derivation = symcost.derive(spec(d, w, h, k, n, b))
    node, ours = next((node, v) for node, v in symcost.evaluate(derivation).components if node.kind == "rg_lru")
    assert (ours["params"], ours["forward"], ours["backward"]) == (params, forward, backward)
    rule = saved_bytes(derivation, "eager", "none")[node.path]
    assert saved == int(rule.xreplace(dim_values(derivation)).xreplace({ACT: 2 if bf16 else 4}))


def test_heads_must_divide_the_width():
    with pytest.raises(SpecError, match="2 heads do not divide width 5"):
        symcost.evaluate(symcost.derive(spec(4, 5, 2, 4, 3, 1)))


def griffin_small(cycle, layers, **more):
    return T.RecurrentGemmaConfig(hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                                  num_key_value_heads=1, intermediate_size=24, vocab_size=40, block_types=cycle,
                                  **more).to_dict()


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=4, deadline=None, derandomize=True)
@given(cycle=st.lists(st.sampled_from(["recurrent", "attention"]), min_size=1, max_size=3), layers=st.integers(1, 4),
       window=st.integers(2, 6), k=st.integers(1, 4), n=st.integers(2, 9), b=st.integers(1, 2))
def test_recurrent_gemma_equal_to_transformers_at_drawn_cycles(cycle, layers, window, k, n, b):
    """Recurrent blocks and local attention as block_types cycles them: parameters and forward FLOPs against
    RecurrentGemmaForCausalLM on meta, per layer type too; then on the CPU a prompt of n >= 2 tokens and a
    decode step: the counts, and the cache's keys and values (the window's last tokens) with the states the
    recurrent blocks keep on themselves (the conv's last k - 1 inputs, the recurrence's state), equal the
    formulas. (At least one attention layer: transformers' cache cannot count a model of recurrent blocks. A
    window of 2 tokens or more: at 1 its sliding cache's slice [-1 + 1:] keeps every token.)"""
    from transformers import DynamicCache

    from conftest import assert_prefill_and_step_match
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    cycle = cycle if "attention" in cycle[:layers] else ["attention", *cycle[1:]]
    cfg = griffin_small(cycle, layers, attention_window_size=window, conv1d_width=k)
    s = symcost.loads(import_config(cfg, "recurrent_gemma.json"))
    report = verify_hf(s, cfg, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1] and report.kinds_agree, report.by_kind
    held = lambda model: sum(t.numel() * t.element_size() for layer in model.model.layers
                             if hasattr(layer.temporal_block, "rg_lru")
                             for t in (layer.temporal_block.conv1d_state, layer.temporal_block.rg_lru.recurrent_states))
    config = T.RecurrentGemmaConfig(hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                                    num_key_value_heads=1, intermediate_size=24, vocab_size=40, block_types=cycle,
                                    attention_window_size=window, conv1d_width=k)
    assert_prefill_and_step_match(build(cfg, "cpu").eval().requires_grad_(False), s, b, n, 40,
                                  cache=DynamicCache(config=config), held=held)


@pytest.mark.parametrize("change, fragment", [
    ({"lru_width": 32}, "lru_width: 32 differs from hidden_size 16, which transformers' cache assumes"),
    ({"block_types": ["recurrent", "local"]}, "block_types: expected a list of recurrent, attention"),
    ({"hidden_activation": "relu"}, "hidden_activation: 'relu' is not supported"),
])
def test_recurrent_gemma_refusals(change, fragment):
    with pytest.raises(SpecError, match=re.escape(fragment)):
        import_config(griffin_small(["recurrent", "attention"], 2) | change, "config.json")
