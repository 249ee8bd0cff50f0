"""Dropout, and the rate dims that hold its probability: parsed exactly, refused where a size
belongs, carried through every command, and its one-byte masks equal to what PyTorch keeps."""

from fractions import Fraction

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch
from symcost.evaluate import dim_values
from symcost.memory import saved_bytes
from symcost.precision import Precision
from symcost.symbols import ACT

SPEC = """\
name: drop
dims:
  d_model: 8
  n_heads: 2
  n_layers: 2
  vocab: 11
  seq_len: 5
  batch: 2
  p: {rate: 0.1}
layers:
  - embedding: {vocab: vocab, dim: d_model}
  - dropout: {p: p}
  - repeat: n_layers
    layers:
      - layernorm: {dim: d_model}
      - attention: {dim: d_model, heads: n_heads, causal: true, attention_dropout: p, hidden_dropout: p}
      - layernorm: {dim: d_model}
      - mlp: {dim: d_model, hidden: 12, hidden_dropout: p}
  - lm_head: {dim: d_model, vocab: vocab}
"""


def by_rule(d, values, attention="eager", recompute="none", width=2) -> dict[str, int]:
    """Each component's saved bytes by its rule at `values`, `width` bytes an activation (those not 0)."""
    out = {k: int(e.xreplace(values).xreplace({ACT: width})) for k, e in saved_bytes(d, attention, recompute).items()}
    return {k: v for k, v in out.items() if v}


def test_a_rate_is_read_exactly_as_written():
    spec = symcost.loads(SPEC)
    dim = spec.dimset["p"]
    assert dim.rate and dim.default == Fraction(1, 10)  # not the binary float nearest 0.1
    assert spec.dimset.values()[dim.symbol] == sympy.Rational(1, 10)
    assert symcost.loads(SPEC.replace("{rate: 0.1}", "{rate: 1/3}")).dimset["p"].default == Fraction(1, 3)
    assert symcost.loads(SPEC.replace("{rate: 0.1}", "{rate: 0}")).dimset["p"].default == 0


@pytest.mark.parametrize("old, new, fragment", [
    ("{rate: 0.1}", "{rate: 1}", "dims.p.rate: a rate is a number in [0, 1)"),
    ("{rate: 0.1}", "{rate: -0.1}", "a rate is a number in [0, 1)"),
    ("{rate: 0.1}", "{rate: 0.1, max: 1}", "dims.p: a dim written as a mapping is a rate, e.g. {rate: 0.1}"),
    ("{rate: 0.1}", "{rate: __import__('os')}", "a rate is a number in [0, 1)"),
    ("{rate: 0.1}", "{rate: .nan}", "a rate is a number in [0, 1)"),
    ("  batch: 2\n", "  batch: 2\n  q: 2 * p\n", "dims.q: uses the rate p; a size cannot depend on a rate"),
    ("{dim: d_model, hidden: 12, hidden_dropout: p}", "{dim: d_model, hidden: p, hidden_dropout: p}",
     "hidden: p is a rate (a probability); a size cannot use it"),
    ("{dim: d_model, hidden: 12, hidden_dropout: p}", "{dim: d_model, hidden: 12, hidden_dropout: d_model}",
     "hidden_dropout: d_model is a size; a rate is a number in [0, 1) or a rate dim"),
    ("- dropout: {p: p}", "- dropout: {p: 1.5}", "layers.1.dropout.p: a rate is a number in [0, 1)"),
    ("- dropout: {p: p}", "- dropout: {p: p * 2}", "a rate is a number in [0, 1)"),
])
def test_rates_and_sizes_do_not_mix(cli, write, old, new, fragment):
    assert old in SPEC
    result = cli("eval", write(SPEC.replace(old, new)))
    assert result.exit_code == 2 and fragment in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, fragment", [
    (["--set", "p=1"], "--set p=1: p is a rate: a number in [0, 1), e.g. 0.1"),
    (["--set", "p=-0.5"], "p=-0.5: expected a positive integer (a size) or, for a rate dim, a number in [0, 1)"),
    (["--set", "d_model=0.5"], "--set d_model=0.5: expected a positive integer (a size)"),
    (["--set", "d_model=1/3"], "--set d_model=1/3: expected a positive integer (a size)"),
    (["--set", "p=1/0"], "--set p '1/0': divides by zero"),
])
def test_set_checks_each_dim_by_its_kind(cli, write, args, fragment):
    result = cli("eval", write(SPEC), *args)
    assert result.exit_code == 2 and fragment in result.stderr, result.stderr


def test_set_and_the_api_take_a_rate(cli, write):
    path = write(SPEC)
    result = cli("eval", path, "--set", "p=0.25", "--format", "json")
    assert result.exit_code == 0 and '"p": 0.25' in result.stdout
    e = symcost.evaluate(path, p=0.25)
    assert e.dims["p"] == 0.25 and e.to_dict()["dims"]["p"] == 0.25
    assert symcost.evaluate(path, p=Fraction(1, 4)).dims == e.dims


def test_sweep_and_solve_vary_sizes_not_rates(cli, write):
    path = write(SPEC)
    result = cli("sweep", path, "--vary", "p=1,2")
    assert result.exit_code == 2 and "--vary p: a rate, not a size" in result.stderr
    result = cli("solve", path, "--target", "params=1e6", "--for", "p")
    assert result.exit_code == 2 and "unknown 'p': a rate, not a size" in result.stderr
    with pytest.raises(symcost.SpecError, match="not a size"):
        symcost.sweep(path, {"d_model": [8, 0.5]})
    # a rate held fixed is used at its value (int() would have made 0.1 a 0)
    dropped = symcost.sweep(path, {"seq_len": [5]}, metrics=["activation_bytes"], p=0.1)
    kept = symcost.sweep(path, {"seq_len": [5]}, metrics=["activation_bytes"], p=0)
    assert dropped.fixed["p"] == 0.1 and dropped.columns["activation_bytes"][0] > kept.columns["activation_bytes"][0]


def test_masks_are_one_byte_a_value_and_only_when_p_is_above_0():
    """By hand: the embedding's dropout keeps batch x seq_len x d_model bytes; each attention
    keeps a mask and a dropped copy (bf16: 1 + 2 bytes) of its batch x heads x n x n
    probabilities and a mask of its output; each MLP a mask of its output."""
    d = symcost.derive(symcost.loads(SPEC))
    b, s, h, a, L = 2, 5, 8, 2, 2
    masks = b * s * h + L * (b * a * s * s * 3 + b * s * h) + L * b * s * h
    bytes_at = lambda p, attention="eager": sum(by_rule(d, dim_values(d, {"p": p}), attention).values())
    assert bytes_at(Fraction(1, 10)) - bytes_at(0) == masks
    assert bytes_at(Fraction(1, 2)) == bytes_at(Fraction(1, 10))
    # sdpa keeps no mask of the probabilities; the output masks stay
    assert bytes_at(Fraction(1, 10), "sdpa") - bytes_at(0, "sdpa") == b * s * h + 2 * L * b * s * h


def test_full_counts_two_flops_a_dropped_value_and_the_counter_none():
    """Under full: 2 FLOPs a value forward (mask and scale), twice that backward; pytorch: 0."""
    d = symcost.derive(symcost.loads(SPEC), "full")
    at = lambda p: symcost.evaluate(d, p=p).total
    b, s, h, a, L = 2, 5, 8, 2, 2
    causal = s * (s + 1) // 2  # full counts the probabilities the mask keeps
    values = b * s * h + L * (b * a * causal + b * s * h) + L * b * s * h
    assert at(Fraction(1, 10))["forward"] - at(0)["forward"] == 2 * values
    assert at(Fraction(1, 10))["backward"] - at(0)["backward"] == 4 * values
    pytorch = symcost.derive(symcost.loads(SPEC))
    assert symcost.evaluate(pytorch, p=0.1).total == symcost.evaluate(pytorch, p=0).total


torch = pytest.importorskip("torch")
from symcost.measure.saved import measure_saved  # noqa: E402


@settings(max_examples=30, deadline=None, derandomize=True)
@given(heads=st.integers(1, 3), head_dim=st.integers(1, 4), n_layers=st.integers(1, 2), seq_len=st.integers(1, 6),
       batch=st.integers(1, 3), p=st.sampled_from([0, Fraction(1, 10), Fraction(1, 2)]),
       attention=st.sampled_from(["eager", "sdpa"]), recompute=st.sampled_from(["none", "selective", "full"]),
       dtype=st.sampled_from(["fp32", "bf16"]))
def test_masks_equal_what_pytorch_keeps(heads, head_dim, n_layers, seq_len, batch, p, attention, recompute, dtype):
    d = symcost.derive(symcost.loads(SPEC))
    sizes = dict(d_model=heads * head_dim, n_heads=heads, n_layers=n_layers, seq_len=seq_len, batch=batch, p=p)
    values = dim_values(d, sizes)
    if attention == "sdpa" and recompute == "none" and p:
        with pytest.raises(symcost.SpecError, match="attention dropout under sdpa cannot be measured here"):
            measure_saved(d, values, dtype=dtype, attention=attention, recompute=recompute)
        return
    measured = measure_saved(d, values, dtype=dtype, attention=attention, recompute=recompute)
    assert by_rule(d, values, attention, recompute, Precision(dtype).bytes("activations")) == measured.per_path


def test_the_reference_drops_as_cuda_does():
    """The build calls native_dropout (a bool mask, CUDA's kernel), not F.dropout, which on the
    CPU keeps a mask in the activations' dtype: the two differ, and the rule follows CUDA."""
    from symcost.components.dropout import apply

    x = torch.ones(4, 5, requires_grad=True)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t.dtype) or t, lambda t: t):
        apply(x * 1, 0.5, True)
        assert kept == [torch.bool]
        kept.clear()
        torch.nn.functional.dropout(x * 1, 0.5, True)
        assert kept == [torch.float32]
        kept.clear()
        apply(x * 1, 0.0, True)  # p = 0: F.dropout returns its input on every device
        assert kept == []


def test_megatron_keeps_korthikanti_s_bytes_plus_what_the_paper_leaves_out():
    """Korthikanti et al. 2022 (Sec. 4.1, Table 2): a GPT layer keeps s·b·h·(34 + 5·a·s/h) bytes in
    16-bit with dropout (no parallelism). symcost's exact layer, checked against PyTorch above,
    is that plus two things the paper rounds away: LayerNorm's mean and 1/std (2 norms x 2
    values a token, in the activations' dtype as PyTorch keeps them on the CPU) and the s x s
    boolean causal mask."""
    d = symcost.derive(symcost.load(arch("megatron_gpt")))
    s, b, h, a, L = (sympy.Symbol(n, integer=True, positive=True) for n in ("seq_len", "batch", "d_model", "n_heads",
                                                                              "n_layers"))
    parts = saved_bytes(d, "eager", "none")
    layer = sum(e for k, e in parts.items() if "/repeat/" in k).xreplace({ACT: 2}) / L
    at = dim_values(d)
    p = d.spec.dimset["dropout"].symbol
    on = layer.xreplace({p: at[p]})
    assert sympy.expand(on - (s * b * h * (34 + 5 * a * s / h) + 8 * s * b + s * s)) == 0
    off = layer.xreplace({p: 0})  # without dropout: the masks and the dropped copy go
    assert sympy.expand(on - off - (2 * s * b * h + 3 * a * s * s * b)) == 0


def test_a_broken_mask_rule_is_caught(monkeypatch):
    """Count the mask in the activations' dtype (the CPU's F.dropout): the comparison fails."""
    from symcost.components import dropout

    monkeypatch.setattr(dropout, "mask", lambda p, elements: elements * dropout.on(p) * ACT)
    d = symcost.derive(symcost.loads(SPEC))
    values = dim_values(d)
    measured = measure_saved(d, values, dtype="bf16", attention="eager")
    assert by_rule(d, values) != measured.per_path


def test_fused_attention_dropout_is_said_to_be_unmeasured(cli):
    result = cli("verify", arch("megatron_gpt"), "--memory", "--set", "n_layers=1", "--set", "d_model=8",
                 "--set", "n_heads=2", "--set", "seq_len=4", "--set", "vocab=11", "--set", "max_pos=4")
    assert result.exit_code == 2 and "attention dropout under sdpa cannot be measured here" in result.stderr
    result = cli("memory", arch("megatron_gpt"))
    assert result.exit_code == 0 and "attention dropout under sdpa" in result.stdout
    assert "attention dropout" not in cli("memory", arch("megatron_gpt"), "--attention", "eager").stdout


@pytest.mark.parametrize("sequence_parallel", [False, True])
def test_a_tensor_parallel_rank_keeps_its_share_of_the_masks(sequence_parallel):
    """Korthikanti et al. 2022, Sec. 4.2: the probabilities' masks are split by heads over tp; the
    masks on the embeddings' and each block's output are whole on every rank, and split by
    sequence under sequence parallelism (bf16: 1 byte a mask, 2 a dropped probability)."""
    sizes = dict(d_model=64, n_layers=2, n_heads=4, seq_len=16, vocab=128, max_pos=16)
    at = lambda p: symcost.plan(arch("megatron_gpt"), {**sizes, "dropout": p}, gpus=2, tp=2, attention="eager",
                                sequence_parallel=sequence_parallel).numbers["activation_bytes"]
    b, s, h, a, L, t = 1, 16, 64, 4, 2, 2
    outputs = (2 * L + 1) * s * b * h  # two per layer, one after the embeddings
    assert at(Fraction(1, 10)) - at(0) == L * 3 * (a // t) * s * s * b + outputs // (t if sequence_parallel else 1)


def test_a_decode_step_drops_nothing():
    """Inference runs no dropout: under full, a decode step's FLOPs do not depend on p."""
    spec = symcost.loads(SPEC)
    step = symcost.derive(spec, "full", decode=True)
    assert symcost.evaluate(step, p=0.1, context=3).total == symcost.evaluate(step, p=0, context=3).total


IMAGES = """\
name: conv-drop
dims: {image_size: 6, batch: 2, c: 3, p: {rate: 0.25}}
layers:
  - conv2d: {dim: 3, out: c, kernel: 3, padding: 1}
  - activation: {function: relu}
  - dropout: {p: p}
  - adaptive_pool: {function: avg}
  - flatten: {}
  - linear: {dim: c, out: 4}
"""


@pytest.mark.parametrize("p", [0, Fraction(1, 4)])
def test_dropout_on_images(p):
    """After a conv, a byte per value of the (batch, channels, height, width) map."""
    d = symcost.derive(symcost.loads(IMAGES))
    values = dim_values(d, {"p": p})
    measured = measure_saved(d, values, dtype="fp32", attention="eager")
    assert by_rule(d, values, width=4) == measured.per_path
    assert by_rule(d, values, width=4).get("layers/2/dropout", 0) == (2 * 3 * 6 * 6 if p else 0)
