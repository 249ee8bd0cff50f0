"""The measured route: for every shipped architecture, at sizes hypothesis draws, the
formulas equal PyTorch's own counts — parameters, forward and backward FLOPs — exactly."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import ARCHITECTURES, arch
from strategies import STRATEGIES

pytestmark = pytest.mark.needs("torch")  # every test here builds the spec in PyTorch
from symcost import ops

def assert_verified(name: str, sizes: dict, device: str = "meta") -> None:
    report = symcost.verify(symcost.load(arch(name)), sizes, backward=True, device=device)
    for row in [*report.rows, report.totals]:
        assert row.symbolic == row.measured, f"{name} {sizes}: {row.path}: {row.symbolic} != {row.measured}"
    assert report.unattributed == {"forward": 0, "backward": 0}
    assert report.match

def test_every_architecture_has_a_strategy():
    assert {p.stem for p in Path(ARCHITECTURES).glob("*.yaml")} == set(STRATEGIES)

# the specs whose meta builds cost the most (every expert a module; ResNet's 50 layers) draw fewer sizes
META_EXAMPLES = {"resnet50": 10, "deepseek_v3": 12, "gpt_oss": 8, "llama4_scout": 8, "qwen3_next": 4, "kimi_linear": 4,
                 "deepseek_v4_flash": 3, "zamba2": 1}  # zamba2: 63 layers, each run alone for its backward
CPU_EXAMPLES = {"deepseek_v4_flash": 2, "zamba2": 2}  # 43 and 54 layers on real tensors: each example costs seconds


@pytest.mark.slow
@pytest.mark.parametrize("device, examples", [("meta", 15), ("cpu", 4)])  # real tensors: fewer, they cost more
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_formulas_equal_pytorch(name, device, examples):
    @settings(max_examples=(META_EXAMPLES if device == "meta" else CPU_EXAMPLES).get(name, examples), deadline=None,
              derandomize=True)
    @given(STRATEGIES[name])
    def check(sizes):
        assert_verified(name, sizes, device=device)

    check()

def test_a_broken_rule_is_caught(monkeypatch):
    """Drop every bias from the linear rule: the property test above must then fail."""
    real = ops.linear
    monkeypatch.setattr(ops, "linear", lambda conv, tokens, d_in, d_out, *, bias, **grads: real(
        conv, tokens, d_in, d_out, bias=False, **grads))
    with pytest.raises(AssertionError, match="params"):
        assert_verified("transformer", dict(d_model=8, n_heads=2, n_layers=1, vocab=5, seq_len=3, max_pos=3))

@pytest.mark.parametrize(
    "name", ["transformer", "llama", "mixtral", "gemma2", "transformer_base", "resnet50", "vit_b16", "clip", "lstm", "mlp"]
)
@pytest.mark.slow
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


@pytest.mark.slow  # thousands of layers built on meta
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


@pytest.mark.slow  # 15,098 modules built on meta: about 26 s
def test_deepseek_v3_verifies_at_full_size_on_meta(cli):
    """DeepSeek-V3 at full size holds 15,098 layer modules (58 MoE layers of 256 routed experts and a
    shared one, and the rest): built on meta (1.06 GB) and exact (before: refused past 10,000)."""
    result = cli("verify", arch("deepseek_v3"))
    assert result.exit_code == 0 and "MATCH: every count equals PyTorch's, exactly." in result.stdout


def test_verify_refuses_more_modules_than_it_can_hold(cli):
    """Past 20,000 layer modules (twice DeepSeek-V3's experts) verify refuses before building, with
    the way out."""
    result = cli("verify", arch("deepseek_v3"), "--set", "n_experts=512")
    assert result.exit_code == 2 and "29,946 layer modules is more than 20,000" in result.stderr
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
