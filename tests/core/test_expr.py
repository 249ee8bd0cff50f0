"""The whitelist parser: what a size expression may contain, and what it may never do."""

import pytest
import sympy

from symcost import expr, symbols

d, h, L = (symbols.dim(n) for n in ("d_model", "n_heads", "n_layers"))
NAMES = {"d_model": d, "n_heads": h, "n_layers": L}


@pytest.mark.parametrize(
    "text, expected",
    [
        (768, sympy.Integer(768)),
        ("d_model", d),
        ("4 * d_model", 4 * d),
        ("d_model / n_heads", d / h),
        ("d_model // n_heads", sympy.floor(d / h)),
        ("(d_model + 1) ** 2", (d + 1) ** 2),
        ("-n_layers + 2*n_layers", L),
        ("min(d_model, 512)", sympy.Min(d, 512)),
        ("max(d_model, n_heads, 3)", sympy.Max(d, h, 3)),
        ("ceil(8 * d_model / 3)", sympy.ceiling(8 * d / 3)),
        ("floor(d_model / 3)", sympy.floor(d / 3)),
        ("2**10", sympy.Integer(1024)),
    ],
)
def test_accepts_the_whitelist(text, expected):
    assert expr.parse(text, NAMES) == expected


def test_division_is_exact():
    assert expr.parse("8 / 3", NAMES) == sympy.Rational(8, 3)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("__import__('os').system('true')", "calls other than"),
        ("d_model.real", "attribute access"),
        ("(lambda: 1)()", "calls other than"),
        ("lambda: 1", "lambda"),
        ("d_model[0]", "subscripts"),
        ("f'{d_model}'", "f-strings"),
        ("'abc'", "literal"),
        ("__builtins__", "unknown name"),
        ("d_model if n_heads else 1", "conditional"),
        ("d_model > 1", "comparisons"),
        ("[x for x in d_model]", "comprehensions"),
        ("d_model % 2", "operator Mod"),
        ("d_model << 2", "operator LShift"),
        ("1.5 * d_model", "not an integer"),
        ("unknown", "unknown name 'unknown'"),
        ("10**10**10", "exponent"),
        ("d_model ** n_heads", "exponent"),
        ("d_model ** -1", "exponent"),
        ("(2**16)**16", "too large"),
        ("10**19", "exponent"),
        ("10**15 * 10**4", "too large"),
        ("d_model / 0", "divides by zero"),
        ("min(d_model)", "at least two"),
        ("floor(d_model, 2)", "one argument"),
        ("floor(x=d_model)", "keyword"),
        ("d_model +", "cannot parse"),
        ("", "empty"),
        ("d_model + " * 100 + "1", "longer than"),
        ("(" * 300 + "1" + ")" * 300, "longer than"),
    ],
)
def test_refuses_everything_else(text, fragment):
    with pytest.raises(expr.ExprError) as info:
        expr.parse(text, NAMES)
    assert fragment in str(info.value)


@pytest.mark.parametrize("value", [True, 1.0, None, [1], {"a": 1}])
def test_refuses_non_sizes(value):
    with pytest.raises(expr.ExprError):
        expr.parse(value, NAMES)


def test_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    for text in (
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        f"exec(\"open('{marker}', 'w')\")",
    ):
        with pytest.raises(expr.ExprError):
            expr.parse(text, NAMES)
    assert not marker.exists()
