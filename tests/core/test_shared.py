"""`repeat: N` with `shared: true`: one set of weights used by every pass (ALBERT, Universal
Transformers). Parameters once, FLOPs and saved activations N times, checked against PyTorch
running one module N times."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from symcost.errors import SpecError

SPEC = """\
name: shared
dims: {{d: 16, heads: 4, n: 3, seq_len: 5, batch: 2, vocab: 11, hidden: 32}}
layers:
  - embedding: {{vocab: vocab, dim: d}}
  - repeat: n
    shared: {shared}
    layers:
      - attention: {{dim: d, heads: heads, bias: true, causal: true}}
      - layernorm: {{dim: d}}
      - mlp: {{dim: d, hidden: hidden, bias: true}}
      - layernorm: {{dim: d}}
  - lm_head: {{dim: d, vocab: vocab}}
"""

sizes = st.fixed_dictionaries({
    "heads": st.integers(1, 4), "per_head": st.integers(1, 6), "n": st.integers(1, 5), "seq_len": st.integers(1, 9),
    "batch": st.integers(1, 3), "vocab": st.integers(1, 20), "hidden": st.integers(1, 24),
})


def values(drawn: dict) -> dict:
    out = dict(drawn)
    out["d"] = out["heads"] * out.pop("per_head")
    return out


@settings(max_examples=12, deadline=None, derandomize=True)
@given(sizes)
def test_shared_weights_equal_pytorch(drawn):
    """Params, forward and backward FLOPs per component equal FlopCounterMode's on a model that
    holds the block once and calls it n times."""
    v = values(drawn)
    report = symcost.verify(symcost.loads(SPEC.format(shared="true")), v, backward=True)
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]
    assert report.unattributed == {"forward": 0, "backward": 0}


@settings(max_examples=12, deadline=None, derandomize=True)
@given(sizes, st.sampled_from(["none", "full", "selective"]))
def test_shared_weights_save_what_pytorch_saves(drawn, recompute):
    report = symcost.verify_memory(symcost.loads(SPEC.format(shared="true")), values(drawn), recompute=recompute)
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]


@settings(max_examples=30, deadline=None)
@given(sizes)
def test_shared_against_unshared(drawn):
    """The same work, and n - 1 fewer copies of the block's weights."""
    v = values(drawn)
    shared = symcost.evaluate(symcost.loads(SPEC.format(shared="true")), v).total
    copies = symcost.evaluate(symcost.loads(SPEC.format(shared="false")), v).total
    one = symcost.evaluate(symcost.loads(SPEC.format(shared="false")), v | {"n": 1}).total
    for metric in ("forward", "backward"):
        assert shared[metric] == copies[metric]
    block = (copies["params"] - one["params"]) // max(v["n"] - 1, 1)
    assert shared["params"] == one["params"] == copies["params"] - (v["n"] - 1) * block


def test_plan_refuses_shared_weights():
    with pytest.raises(SpecError, match="layers.1.shared: plan does not split shared weights"):
        symcost.plan(symcost.loads(SPEC.format(shared="true")), gpus=1)
