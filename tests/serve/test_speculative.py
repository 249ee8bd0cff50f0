"""Speculative decoding (symcost/serve/speculative.py and serve's draft): the expected tokens a verify
step yields against every outcome of the random acceptance, enumerated with its probability; the
draft's cache counted from its own layers; the speedup as the ratio of the bounds it is defined by."""

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch
from symcost.errors import SpecError
from symcost.serve.speculative import acceptance_of, tokens_per_step

RATES = st.fractions(0, 1, max_denominator=20)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 8).flatmap(lambda g: st.lists(RATES, min_size=g, max_size=g)))
def test_expected_tokens_a_step_equal_every_acceptance_outcome_weighed(rates):
    """The simulation draws each draft token's acceptance independently (token i with rates[i]) and the
    step keeps the drafted tokens up to the first rejection, plus the target's own: every draw vector of
    the simulation, weighed by its probability."""
    expected = Fraction(0)
    for draws in itertools.product((True, False), repeat=len(rates)):
        p = Fraction(1)
        for accepted, a in zip(draws, rates):
            p *= a if accepted else 1 - a
        kept = draws.index(False) if False in draws else len(draws)
        expected += p * (kept + 1)
    assert tokens_per_step(tuple(rates)) == expected


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(1, 10), RATES)
def test_one_rate_gives_leviathan_s_closed_form(gamma, a):
    closed = Fraction(gamma + 1) if a == 1 else (1 - a ** (gamma + 1)) / (1 - a)
    assert tokens_per_step(acceptance_of(a, gamma)) == closed


def test_a_one_layer_draft_caches_its_own_layer_not_the_target_s():
    """A 61-layer target and a 1-layer draft of the same width: the draft's cache a sequence is the
    target's over 61, its weights those of one layer and its own embedding and head."""
    text = open(arch("llama")).read()
    for old, new in [("d_model: 4096", "d_model: 2048"), ("n_heads: 32", "n_heads: 16"),
                     ("n_kv_heads: 32", "n_kv_heads: 16"), ("d_ff: 11008", "d_ff: 5504")]:
        text = text.replace(old, new)
    draft = symcost.loads(text.replace("n_layers: 32 ", "n_layers: 1  "))
    target = symcost.loads(text.replace("n_layers: 32 ", "n_layers: 61 "))
    s = symcost.serve(target, hardware="h200", draft=draft, gamma=3, acceptance=[0.9, 0.8, 0.5], prompt=512,
                      output=128, concurrency=4)
    sp, g = s.numbers["speculative"], s.numbers["per_gpu"]
    alone = symcost.serve(target, hardware="h200", prompt=512, output=128, concurrency=4).numbers["per_gpu"]
    assert sp["draft_kv_bytes_per_sequence"] * 61 == alone["kv_bytes_per_sequence"]
    assert g["kv_bytes_per_sequence"] == alone["kv_bytes_per_sequence"] + sp["draft_kv_bytes_per_sequence"]
    assert sp["draft_weights_bytes"] == symcost.memory(draft).numbers["weights_bytes"]
    assert g["kv_pool_bytes"] == alone["kv_pool_bytes"] - sp["draft_weights_bytes"]
    assert sp["tokens_per_step"] == float(1 + Fraction(9, 10) * (1 + Fraction(8, 10) * (1 + Fraction(1, 2))))
    per_token = (3 * sp["draft_seconds_bound"] + sp["verify_seconds_bound"]) / sp["tokens_per_step"]
    assert sp["tpot_seconds"] == per_token and sp["speedup_bound"] == s.numbers["tpot_seconds"] / per_token


def test_bad_acceptance_is_refused():
    for rates, gamma, message in [(1.5, 4, r"acceptance 1.5: expected a rate in \[0, 1\]"),
                                  ([0.5, 0.5], 3, "2 rates for gamma 3"), (0.5, 0, "gamma 0"),
                                  (float("nan"), 2, "acceptance nan")]:
        with pytest.raises(SpecError, match=message):
            acceptance_of(rates, gamma)
    with pytest.raises(SpecError, match="pp 1"):
        symcost.serve(arch("llama"), draft=arch("llama"), pp=2, tp=1)
