"""Forms as shown (render/forms.py): a dense-then-MoE spec's `(n_layers - n_dense)` stays a factor
in text, LaTeX and the page, with no negative term, and the shown form's value is the form's."""

import re

import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch
from symcost.render import render
from symcost.render.forms import factored, shown, unfactored

S, R, X, Y = sympy.symbols("s r x y", positive=True, integer=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 1), st.integers(0, 1), st.integers(0, 2),
                          st.integers(0, 2)), max_size=8), st.integers(1, 3))
def test_a_factored_form_has_the_value_of_the_form(terms, k):
    """Any polynomial in s, r, x, y, factored over s - k·r, expands back to itself."""
    e = sum((c * S**i * R**j * X**a * Y**b for c, i, j, a, b in terms), sympy.Integer(0))
    assert unfactored(factored(e, S - k * R)) == sympy.expand(e)


def test_only_what_the_count_holds_goes_into_the_factor():
    e = 3 * X * S - 3 * X * R + 5 * Y * S + 2 * Y * R  # x runs on s - r layers; y on s and on r
    f = factored(e, S - R)
    assert str(f).startswith("(s - r)*(3*x)") or "(s - r)*" in str(f)
    assert unfactored(f) == e and "-" not in str(f).replace("(s - r)", "")
    assert factored(5 * Y * S, S - R) == 5 * Y * S  # nothing to factor: the form itself


def test_deepseek_v3_forms_keep_the_moe_count_as_a_factor():
    d = symcost.derive(arch("deepseek_v3"))
    for e in d.total.metrics().values():
        f = shown(d.compound_counts, e)
        assert unfactored(f) == sympy.expand(e)
    text = render(d, "text")
    totals = text.split("\n\n")[1]
    assert "(n_layers - n_dense)·(3·d_expert·d_model·n_experts" in totals
    assert not re.search(r"(^|\s)-\s?\d*·?d_expert", totals)  # before: -3·d_expert·d_model·n_dense·n_experts
    assert r"\left(\mathrm{n\_layers} - \mathrm{n\_dense}\right)" in render(d, "latex")
    assert "(n_layers - n_dense)·" in render(d, "markdown")
    html = symcost.page(d).html
    assert "<mo>(</mo><mrow><msub><mi>n</mi><mi>layers</mi></msub><mo>-</mo><msub><mi>n</mi><mi>dense</mi>" in html
    assert "symcostfactor" not in html


def test_a_spec_without_a_compound_count_prints_as_before():
    d = symcost.derive(arch("llama"))
    assert d.compound_counts == () and all(shown(d.compound_counts, e) is e for e in d.total.metrics().values())
