"""The measured route: for every shipped architecture, at sizes hypothesis draws, the
formulas equal PyTorch's own counts — parameters, forward and backward FLOPs — exactly."""

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import ARCHITECTURES, arch
from symcost import ops

@st.composite
def heads_and_width(draw, even_head_dim=False):
    """(n_heads, n_kv_heads dividing it, head_dim, d_model = heads x head_dim)."""
    heads = draw(st.integers(1, 4))
    kv = draw(st.sampled_from([k for k in range(1, heads + 1) if heads % k == 0]))
    head_dim = draw(st.integers(1, 4)) * 2 if even_head_dim else draw(st.integers(1, 8))
    return heads, kv, head_dim, heads * head_dim

@st.composite
def transformer_sizes(draw):
    heads, _, _, d_model = draw(heads_and_width())
    seq_len = draw(st.integers(1, 10))
    sizes = dict(d_model=d_model, n_heads=heads, n_layers=draw(st.integers(1, 3)), vocab=draw(st.integers(1, 50)),
                 seq_len=seq_len, max_pos=seq_len + draw(st.integers(0, 5)), batch=draw(st.integers(1, 3)))
    if draw(st.booleans()):
        sizes["d_ff"] = draw(st.integers(1, 40))  # a derived dim, overridden
    return sizes

@st.composite
def megatron_sizes(draw):
    heads, _, _, d_model = draw(heads_and_width())
    seq_len = draw(st.integers(1, 10))
    return dict(d_model=d_model, n_heads=heads, n_layers=draw(st.integers(1, 3)), vocab=draw(st.integers(1, 50)),
                seq_len=seq_len, max_pos=seq_len + draw(st.integers(0, 5)), batch=draw(st.integers(1, 3)),
                dropout=draw(st.sampled_from([0, Fraction(1, 10), Fraction(1, 3), Fraction(9, 10)])))

@st.composite
def llama_sizes(draw):
    heads, kv, _, d_model = draw(heads_and_width(even_head_dim=True))  # rotary needs an even head dim
    return dict(d_model=d_model, n_heads=heads, n_kv_heads=kv, n_layers=draw(st.integers(1, 3)),
                d_ff=draw(st.integers(1, 40)), vocab=draw(st.integers(1, 50)), seq_len=draw(st.integers(1, 10)),
                batch=draw(st.integers(1, 3)))

@st.composite
def mixtral_sizes(draw):
    sizes = draw(llama_sizes())
    experts = draw(st.integers(1, 6))
    return sizes | dict(n_experts=experts, top_k=draw(st.integers(1, experts)))


@st.composite
def mistral_sizes(draw):
    return draw(llama_sizes()) | dict(window=draw(st.integers(1, 12)))


@st.composite
def deepseek_sizes(draw):
    experts = draw(st.integers(1, 6))
    n_layers = draw(st.integers(2, 4))
    return dict(
        d_model=draw(st.integers(1, 12)), n_heads=draw(st.integers(1, 3)), q_lora_rank=draw(st.integers(1, 6)),
        kv_lora_rank=draw(st.integers(1, 6)), qk_nope_dim=draw(st.integers(1, 4)),
        qk_rope_dim=2 * draw(st.integers(1, 3)), v_head_dim=draw(st.integers(1, 4)), d_ff=draw(st.integers(1, 12)),
        d_expert=draw(st.integers(1, 6)), n_experts=experts, top_k=draw(st.integers(1, experts)),
        n_shared=draw(st.integers(1, 2)), vocab=draw(st.integers(1, 20)), seq_len=draw(st.integers(1, 8)),
        batch=draw(st.integers(1, 2)), n_layers=n_layers, n_dense=draw(st.integers(1, n_layers - 1)),
    )


@st.composite
def gemma2_sizes(draw):
    heads, kv, head_dim, _ = draw(heads_and_width(even_head_dim=True))
    return dict(d_model=draw(st.integers(1, 12)), n_heads=heads, n_kv_heads=kv, d_head=head_dim,
                d_ff=draw(st.integers(1, 20)), vocab=draw(st.integers(1, 30)), n_layers=2 * draw(st.integers(1, 2)),
                window=draw(st.integers(1, 6)), seq_len=draw(st.integers(1, 10)), batch=draw(st.integers(1, 2)))


@st.composite
def transformer_base_sizes(draw):
    heads, _, _, d_model = draw(heads_and_width())
    return dict(d_model=d_model, n_heads=heads, n_layers=draw(st.integers(1, 2)), d_ff=draw(st.integers(1, 20)),
                vocab=draw(st.integers(1, 30)), src_len=draw(st.integers(1, 9)), seq_len=draw(st.integers(1, 9)),
                batch=draw(st.integers(1, 2)))


@st.composite
def resnet_sizes(draw):
    return dict(image_size=draw(st.integers(1, 70)), w=draw(st.integers(1, 4)), classes=draw(st.integers(1, 9)),
                batch=draw(st.integers(1, 2)), **{f"n{i}": draw(st.integers(2, 3)) for i in range(1, 5)})


@st.composite
def vit_sizes(draw):
    heads, _, _, d_model = draw(heads_and_width())
    patch = draw(st.integers(1, 8))
    return dict(image_size=draw(st.integers(patch, 40)), patch=patch, d_model=d_model, n_heads=heads,
                n_layers=draw(st.integers(1, 2)), d_ff=draw(st.integers(1, 20)), classes=draw(st.integers(1, 9)),
                batch=draw(st.integers(1, 2)))


@st.composite
def lstm_sizes(draw):
    return dict(vocab=draw(st.integers(1, 30)), d_embed=draw(st.integers(1, 8)), hidden=draw(st.integers(1, 8)),
                n_layers=draw(st.integers(1, 3)), seq_len=draw(st.integers(1, 8)), batch=draw(st.integers(1, 3)))


@st.composite
def mlp_sizes(draw):
    return dict(d_in=draw(st.integers(1, 30)), hidden=draw(st.integers(1, 20)), n_hidden=draw(st.integers(2, 4)),
                classes=draw(st.integers(1, 10)), batch=draw(st.integers(1, 8)), seq_len=draw(st.integers(1, 3)))


@st.composite
def mamba_sizes(draw):
    return dict(d_model=draw(st.integers(1, 8)), n_layers=draw(st.integers(1, 2)), d_inner=draw(st.integers(1, 8)),
                d_state=draw(st.integers(1, 4)), d_conv=draw(st.integers(1, 4)), dt_rank=draw(st.integers(1, 3)),
                vocab=draw(st.integers(1, 20)), seq_len=draw(st.integers(1, 6)), batch=draw(st.integers(1, 2)))


@st.composite
def mamba2_sizes(draw):
    d = draw(st.integers(1, 6))
    return dict(d_model=d, n_layers=draw(st.integers(1, 2)), d_head=draw(st.sampled_from([h for h in range(1, 2 * d + 1)
                                                                                        if 2 * d % h == 0])),
                d_state=draw(st.integers(2, 4)), d_conv=draw(st.integers(1, 4)), chunk=draw(st.integers(2, 5)),
                vocab=draw(st.integers(1, 20)), seq_len=draw(st.integers(1, 12)), batch=draw(st.integers(1, 2)))


@st.composite
def clip_sizes(draw):
    text_heads, _, _, d_text = draw(heads_and_width())
    vision_heads, _, _, d_vision = draw(heads_and_width())
    patch = draw(st.integers(1, 6))
    return dict(d_text=d_text, n_text_heads=text_heads, n_text_layers=draw(st.integers(1, 2)),
                d_text_ff=draw(st.integers(1, 12)), vocab=draw(st.integers(1, 30)), seq_len=(n := draw(st.integers(1, 8))),
                max_text=draw(st.integers(n, 10)),
                d_vision=d_vision, n_vision_heads=vision_heads, n_vision_layers=draw(st.integers(1, 2)),
                d_vision_ff=draw(st.integers(1, 12)), image_size=draw(st.integers(patch, 20)), patch=patch,
                proj=draw(st.integers(1, 8)), batch=draw(st.integers(1, 3)))


# One strategy per shipped architecture; test_every_architecture_has_a_strategy keeps it so.
STRATEGIES = {
    "transformer": transformer_sizes(),
    "megatron_gpt": megatron_sizes(),
    "llama": llama_sizes(),
    "mixtral": mixtral_sizes(),
    "mistral": mistral_sizes(),
    "deepseek_v3": deepseek_sizes(),
    "gemma2": gemma2_sizes(),
    "transformer_base": transformer_base_sizes(),
    "resnet50": resnet_sizes(),
    "vit_b16": vit_sizes(),
    "clip": clip_sizes(),
    "lstm": lstm_sizes(),
    "mlp": mlp_sizes(),
    "mamba": mamba_sizes(),
    "mamba2": mamba2_sizes(),
}

def assert_verified(name: str, sizes: dict, device: str = "meta") -> None:
    report = symcost.verify(symcost.load(arch(name)), sizes, backward=True, device=device)
    for row in [*report.rows, report.totals]:
        assert row.symbolic == row.measured, f"{name} {sizes}: {row.path}: {row.symbolic} != {row.measured}"
    assert report.unattributed == {"forward": 0, "backward": 0}
    assert report.match

def test_every_architecture_has_a_strategy():
    assert {p.stem for p in Path(ARCHITECTURES).glob("*.yaml")} == set(STRATEGIES)

@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_formulas_equal_pytorch(name):
    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(STRATEGIES[name])
    def check(sizes):
        assert_verified(name, sizes)

    check()

@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_formulas_equal_pytorch_on_real_tensors(name):
    @settings(max_examples=5, deadline=None, derandomize=True)
    @given(STRATEGIES[name])
    def check(sizes):
        assert_verified(name, sizes, device="cpu")

    check()

def test_a_broken_rule_is_caught(monkeypatch):
    """Drop every bias from the linear rule: the property test above must then fail."""
    real = ops.linear
    monkeypatch.setattr(ops, "linear", lambda conv, tokens, d_in, d_out, *, bias, input_grad: real(
        conv, tokens, d_in, d_out, bias=False, input_grad=input_grad))
    with pytest.raises(AssertionError, match="params"):
        assert_verified("transformer", dict(d_model=8, n_heads=2, n_layers=1, vocab=5, seq_len=3, max_pos=3))

@pytest.mark.parametrize(
    "name", ["transformer", "llama", "mixtral", "gemma2", "transformer_base", "resnet50", "vit_b16", "clip", "lstm", "mlp"]
)
def test_published_sizes_verify_on_meta(cli, name):
    result = cli("verify", arch(name), "--backward")
    assert result.exit_code == 0, result.stdout
    assert "MATCH: every count equals PyTorch's, exactly." in result.stdout

def test_mismatch_exits_1(cli, monkeypatch):
    real = ops.matmul
    monkeypatch.setattr(ops, "matmul", lambda *a, **k: real(*a, **k) * 2)
    result = cli("verify", arch("transformer"), "--set", "n_layers=1", "--set", "seq_len=8")
    assert result.exit_code == 1
    assert "DIFFERS" in result.stdout and "MISMATCH" in result.stdout

def test_verify_json_and_macs(cli):
    import json

    out = json.loads(cli("verify", arch("llama"), "--set", "n_layers=1", "--set", "seq_len=16", "--backward",
                         "--convention", "macs", "--format", "json").stdout)
    assert out["match"] is True and out["convention"] == "macs"
    assert {"params", "flops", "components"} <= set(out) and set(out["flops"]) == {"forward", "backward"}
    assert out["params"]["symbolic"] == out["params"]["measured"]
    pytorch = json.loads(cli("verify", arch("llama"), "--set", "n_layers=1", "--set", "seq_len=16",
                             "--format", "json").stdout)
    assert out["flops"]["forward"]["measured"] * 2 == pytorch["flops"]["forward"]["measured"]

def test_uncountable_parts_are_named(cli):
    out = cli("verify", arch("transformer"), "--set", "n_layers=1").stdout
    assert "elementwise only: FlopCounterMode counts 0" in out


def test_a_deep_model_is_measured_on_a_deep_stack(tmp_path):
    """PyTorch releases a deep model's hooks and graph recursively in C. On an 8 MiB stack,
    verify of 50,000 linear layers died of a segmentation fault; here the main thread gets
    1 MiB, where 4,000 layers died the same way before the measurement moved to its own thread."""
    import resource
    import subprocess
    import sys

    spec = tmp_path / "deep.yaml"
    spec.write_text("name: deep\ndims: {d: 8, n: 4000, seq_len: 4, batch: 1}\n"
                    "layers:\n  - repeat: n\n    layers:\n      - linear: {dim: d, out: d}\n")

    def small_stack():
        resource.setrlimit(resource.RLIMIT_STACK, (1 << 20, 1 << 20))

    done = subprocess.run([sys.executable, "-m", "symcost", "verify", str(spec)], capture_output=True, text=True,
                          preexec_fn=small_stack, timeout=300)
    assert done.returncode == 0 and "MATCH" in done.stdout, done.stderr[-2000:]


def test_verify_refuses_more_modules_than_fit_in_1_gb(cli):
    """10,000 layer modules peak at about 0.8 GB on meta (README); DeepSeek-V3 at full size holds
    15,098 (58 MoE layers of 256 routed experts and a shared one, and the rest): refused before
    building, with the way out (before: built, past 1 GB)."""
    result = cli("verify", arch("deepseek_v3"))
    assert result.exit_code == 2 and "15,098 layer modules is more than 10,000" in result.stderr
    assert "--set" in result.stderr


NON_AFFINE = """\
name: olmo-like
dims: {{d: {d}, seq_len: {seq_len}, batch: {batch}}}
layers:
  - linear: {{dim: d, out: d}}
  - layernorm: {{dim: d, affine: false}}
  - layernorm: {{dim: d}}
  - layernorm: {{dim: d, bias: false}}
"""


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(1, 32), st.integers(1, 9), st.integers(1, 3))
def test_layernorm_without_parameters_equals_pytorch(d, seq_len, batch):
    """OLMo's LayerNorm holds no weight and no bias: params, FLOPs and saved bytes as PyTorch's
    nn.LayerNorm(elementwise_affine=False), beside the affine and bias-free ones."""
    spec = symcost.loads(NON_AFFINE.format(d=d, seq_len=seq_len, batch=batch))
    assert symcost.verify(spec, backward=True).match
    assert symcost.verify_memory(spec).match
    rows = symcost.evaluate(spec).components
    assert [v["params"] for _, v in rows] == [d * d, 0, 2 * d, d]
