"""Derivation: closed forms that are exact polynomials, agree with eval everywhere, and
never unroll `repeat`."""

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import MTP_SPEC, arch, unknown_keys
from symcost import conventions, symbols
from symcost.components.attention import Attention

GPT2 = symcost.load(arch("transformer"))
d, L, V, P = (symbols.dim(n) for n in ("d_model", "n_layers", "vocab", "max_pos"))


def test_transformer_params_is_an_integer_polynomial():
    params = symcost.derive(GPT2).total.params
    poly = sympy.Poly(params, d, L, V, P)
    assert poly.domain == sympy.ZZ
    assert params.free_symbols == {d, L, V, P}
    # By hand, per layer: 2 LayerNorms (4d), attention 4d² + 4d, MLP 8d² + 5d (d_ff = 4d).
    assert sympy.expand(params - (L * (12 * d**2 + 13 * d) + V * d + P * d + 2 * d)) == 0


@settings(max_examples=60, deadline=None)
@given(
    heads=st.integers(1, 64),
    head_dim=st.integers(1, 256),
    n_layers=st.integers(1, 200),
    vocab=st.integers(1, 300_000),
    max_pos=st.integers(1, 1 << 20),
    seq_len=st.integers(1, 1 << 16),
)
def test_params_formula_equals_eval(heads, head_dim, n_layers, vocab, max_pos, seq_len):
    seq_len = min(seq_len, max_pos)
    sizes = dict(d_model=heads * head_dim, n_heads=heads, n_layers=n_layers, vocab=vocab, max_pos=max_pos,
                 seq_len=seq_len)
    derivation = symcost.derive(GPT2)
    formula = derivation.total.params.subs({symbols.dim(k): v for k, v in sizes.items()})
    assert formula == symcost.evaluate(derivation, sizes).total["params"]


def test_derive_does_not_unroll_repeat(monkeypatch):
    calls = []
    original = Attention.parts
    monkeypatch.setattr(Attention, "parts", lambda self, ctx: calls.append(1) or original(self, ctx))
    for depth in (12, 12_000):
        calls.clear()
        text = open(arch("transformer")).read().replace("n_layers: 12 ", f"n_layers: {depth} ")
        derivation = symcost.derive(symcost.loads(text))
        assert len(calls) == 1  # one attention rule call, whatever the depth
        assert symcost.evaluate(derivation).dims["n_layers"] == depth


def test_repeat_with_a_first_pass_on_raw_inputs():
    # A stack of linears on raw features: the first layer's input needs no gradient, so its
    # backward is the weight gradient only (1x forward); later layers 2x.
    spec = symcost.loads(
        "name: stack\ndims: {d: 8, n: 5, seq_len: 3}\nlayers:\n  - repeat: n\n    layers:\n      - linear: {dim: d, out: d}\n"
    )
    total = symcost.evaluate(symcost.derive(spec)).total
    per_layer = 2 * 3 * 8 * 8
    assert total["forward"] == 5 * per_layer
    assert total["backward"] == per_layer + 4 * 2 * per_layer


def test_keep_and_set_on_derived_dims():
    llama = symcost.load(arch("llama"))
    kept = symcost.derive(llama, keep=["d_head"]).total.params
    assert symbols.dim("d_head") in kept.free_symbols
    gpt2 = symcost.derive(GPT2)
    # d_ff is derived (4 * d_model); a --set on it is honoured rather than recomputed
    base = symcost.evaluate(gpt2).total["params"]
    wider = symcost.evaluate(gpt2, {"d_ff": 4 * 768 + 1}).total["params"]
    assert wider - base == 12 * (768 + 1 + 768)  # per layer: a column of c_fc (768 + bias) and a row of c_proj


def test_conventions_relate():
    pytorch = symcost.evaluate(symcost.derive(GPT2, "pytorch")).total
    macs = symcost.evaluate(symcost.derive(GPT2, "macs")).total
    full = symcost.evaluate(symcost.derive(GPT2, "full")).total
    assert macs["params"] == pytorch["params"] == full["params"]
    for m in ("forward", "backward", "train"):
        assert 2 * macs[m] == pytorch[m]


def test_full_convention_counts_elementwise_and_halves_causal():
    # One attention layer, no biases, no residual: full - pytorch is exactly the score
    # scaling and softmax (1 + 5 per score), and causal keeps n(n+1)/2 of the n² scores.
    b, n, h, hd = 2, 7, 3, 4
    text = (
        f"name: a\ndims: {{seq_len: {n}, batch: {b}}}\nlayers:\n"
        f"  - attention: {{dim: {h * hd}, heads: {h}, residual: false, causal: CAUSAL}}\n"
    )
    def forward(convention, causal):
        spec = symcost.loads(text.replace("CAUSAL", causal))
        return symcost.evaluate(symcost.derive(spec, convention)).total["forward"]

    projections = 4 * 2 * b * n * (h * hd) ** 2
    assert forward("pytorch", "false") == forward("pytorch", "true") == projections + 2 * 2 * b * h * n * n * hd
    softmax, scale = conventions.ELEMENTWISE["softmax"], conventions.ELEMENTWISE["attention_scale"]
    assert forward("full", "false") == forward("pytorch", "false") + b * h * n * n * (softmax + scale)
    kept = n * (n + 1) // 2
    assert forward("full", "true") == projections + 2 * 2 * b * h * kept * hd + b * h * kept * (softmax + scale)
    # kernel: pytorch's matmuls, over the kept scores of a causal layer (all of them without a mask)
    assert forward("kernel", "false") == forward("pytorch", "false")
    assert forward("kernel", "true") == projections + 2 * 2 * b * h * kept * hd
    window = symcost.loads(text.replace("CAUSAL", "true, window: 3"))  # query i keeps min(3, i + 1) keys
    kept = sum(min(3, i + 1) for i in range(n))
    assert symcost.evaluate(symcost.derive(window, "kernel")).total["forward"] == projections + 2 * 2 * b * h * kept * hd


# --- multi-token prediction, apart (MTP_SPEC: tests/conftest.py) ----------------------------------------------


def test_mtp_modules_are_counted_apart_with_the_shared_head_s_flops():
    """Two modules, each a norm, a d x d projection, a norm and a block, then the model's own head: their parameters
    (the head's not again) and FLOPs by hand under pytorch, and the main model's counts as without them."""
    spec = symcost.loads(MTP_SPEC.replace("HEADS", "heads"))
    d = symcost.derive(spec)
    sub = {symbols.dim(k): v for k, v in {"d": 64, "hidden_size": 96, "vocab": 100, "seq_len": 8, "heads": 4}.items()}
    block_params = 4 * 64 * 64 + 3 * 64 * 96 + 64  # attention (q, k, v, o), the gated MLP, one norm
    assert d.mtp.params.xreplace(sub) == 2 * (64 + 64 * 64 + block_params)
    block_forward = 2 * 8 * (4 * 64 * 64 + 3 * 64 * 96) + 2 * 2 * 8 * 8 * 64  # projections; scores and values
    assert d.mtp.forward.xreplace(sub) == 2 * (2 * 8 * 64 * 64 + block_forward + 2 * 8 * 64 * 100)
    data = d.to_dict()
    assert not unknown_keys(data) and data["mtp"]["depth"] == 2
    assert sympy.parse_expr(data["mtp"]["params"]).subs({str(k): v for k, v in sub.items()}) == d.mtp.params.xreplace(
        sub)
    alone = symcost.loads(MTP_SPEC.split("mtp:")[0])
    assert symcost.evaluate(spec).total == symcost.evaluate(alone).total and symcost.derive(alone).mtp is None


@pytest.mark.parametrize("change, message", [
    (("heads: HEADS", "heads: 5"), "mtp.layers.3.attention.heads"),
    (("depth: 2", "depth: 0"), "mtp.depth"),
    (("depth: 2", "depth: 2\n  width: 3"), "mtp.width"),
    (("  - lm_head: {dim: d, vocab: vocab}\n", ""), "start with an embedding and end with an lm_head"),
])
def test_what_an_mtp_block_cannot_say_is_one_line_at_its_place(cli, write, change, message):
    text = MTP_SPEC.replace("HEADS", "heads").replace(*change) if change[0] != "heads: HEADS" else \
        MTP_SPEC.replace(*change)
    r = cli("derive", write(text))
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_memory_and_serve_say_they_leave_the_mtp_modules_out_and_plan_where_it_trains_them():
    spec = symcost.loads(MTP_SPEC.replace("HEADS", "heads"))
    params = int(symcost.derive(spec).mtp.params.xreplace(
        {symbols.dim(k): v for k, v in {"d": 64, "hidden_size": 96, "heads": 4}.items()}))
    said = f"multi-token prediction: the spec's 2 MTP modules ({params:,} parameters; derive reports them apart)"
    for result in (symcost.memory(spec), symcost.serve(spec, concurrency=1)):
        assert any(note.startswith(said) for note in result.notes), result.notes
    placed = f"multi-token prediction: the spec's 2 MTP modules ({params:,} parameters) train on the rank holding"
    assert any(note.startswith(placed) for note in symcost.plan(spec).notes)
    alone = symcost.loads(MTP_SPEC.split("mtp:")[0])
    assert not any("multi-token" in note for note in symcost.plan(alone).notes)
