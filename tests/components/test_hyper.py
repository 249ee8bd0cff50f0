"""Hyper-connections (components/hyper.py: `hyper_expand`, a `residual` with `streams`, `hyper_head`): parameters,
FLOPs forward and backward, the bytes saved for backward (fp32 and bf16) and decode steps equal PyTorch's on the
reference build at drawn streams, widths and Sinkhorn iterations; the counts of one site by hand; a site's
misuses refused in one line; two sites equal transformers' own DeepSeek-V4 decoder layer (its hyper-connections,
norms and join) with a linear for each sublayer, in fp32 and bf16."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import assert_reference_matches
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
    assert_reference_matches(spec(d, n, b, N, iters), n)


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


def test_streams_widen_a_token_stream_only():
    text = "name: m\ndims: {seq_len: 4}\nlayers:\n  - hyper_expand: {streams: 2}\n  - embedding: {vocab: 7, dim: 8}\n"
    with pytest.raises(SpecError, match="layers.0.hyper_expand: hyper_expand widens a token stream of known width"):
        symcost.derive(symcost.loads(text))


@pytest.mark.slow  # a comparison with transformers: in the full suite
@settings(max_examples=6, deadline=None, derandomize=True)
@given(d=st.integers(1, 6), n=st.integers(1, 5), b=st.integers(1, 2), N=st.integers(1, 4), iters=st.integers(1, 4),
       bf16=st.booleans())
def test_two_sites_equal_transformers_deepseek_v4_decoder_layer(d, n, b, N, iters, bf16):
    """transformers' DeepseekV4DecoderLayer — its two DeepseekV4HyperConnection modules, its norms and its own
    join — with a linear in place of its attention and of its MoE: parameters, forward and backward FLOPs and
    the bytes saved for backward equal two sites of a linear each, in fp32 and in bf16 (its hyper-connections
    and norms kept in fp32, as its _keep_in_fp32_modules_strict keeps them)."""
    T = pytest.importorskip("transformers")
    from conftest import measured_layer
    from transformers.models.deepseek_v4 import modeling_deepseek_v4 as v4

    from symcost.memory import saved_bytes
    from symcost.symbols import ACT

    config = T.DeepseekV4Config(hidden_size=d, num_hidden_layers=1, hc_mult=N, hc_sinkhorn_iters=iters,
                                num_attention_heads=2, head_dim=8, q_lora_rank=2, o_groups=2, o_lora_rank=2,
                                n_routed_experts=2, num_experts_per_tok=1, moe_intermediate_size=2, vocab_size=8,
                                layer_types=["sliding_attention"], mlp_layer_types=["moe"])
    layer = v4.DeepseekV4DecoderLayer(config, 0)

    class Linear(torch.nn.Linear):  # called as the attention and the MoE are
        def forward(self, x, **ignored):
            out = super().forward(x)
            return (out, None) if self.attention else out

    layer.self_attn, layer.mlp = Linear(d, d, bias=False), Linear(d, d, bias=False)
    layer.self_attn.attention, layer.mlp.attention = True, False
    dtype = torch.bfloat16 if bf16 else torch.float32
    layer = layer.to(dtype)
    for name, p in layer.named_parameters():
        if name.split(".")[0] in ("attn_hc", "ffn_hc", "input_layernorm", "post_attention_layernorm"):
            p.data = p.data.float()

    class Called(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return self.layer(x)

    x = torch.randn(b, n, N, d, dtype=dtype, requires_grad=True)
    params, forward, backward, saved = measured_layer(Called(), x)
    s = symcost.loads(f"""name: m
dims: {{seq_len: {n}, batch: {b}}}
layers:
  - embedding: {{vocab: 7, dim: {d}}}
  - hyper_expand: {{streams: {N}}}
  - residual: [{{rmsnorm: {{dim: {d}}}}}, {{linear: {{dim: {d}, out: {d}}}}}]
    streams: {N}
    sinkhorn_iters: {iters}
  - residual: [{{rmsnorm: {{dim: {d}}}}}, {{linear: {{dim: {d}, out: {d}}}}}]
    streams: {N}
    sinkhorn_iters: {iters}
""")
    derivation = symcost.derive(s)
    nodes = [(node, v) for node, v in symcost.evaluate(derivation).components if node.kind not in ("embedding",
                                                                                                     "hyper_expand")]
    assert sum(v["params"] for _, v in nodes) == params
    assert (sum(v["forward"] for _, v in nodes), sum(v["backward"] for _, v in nodes)) == (forward, backward)
    rules = saved_bytes(derivation, "eager", "none")
    total = sum(rules[node.path] for node, _ in nodes)
    assert saved == int(total.xreplace(dim_values(derivation)).xreplace({ACT: 2 if bf16 else 4}))
