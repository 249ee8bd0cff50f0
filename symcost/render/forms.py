"""Closed forms as a person reads them: a spec's compound repeat count stays a factor.

A dense-then-MoE spec repeats its MoE block `n_layers - n_dense` times; expanded, its forms hold
`-3·d_expert·d_model·n_dense·n_experts + 3·d_expert·d_model·n_experts·n_layers`. Shown, they hold
`(n_layers - n_dense)·(3·d_expert·d_model·n_experts + …)` beside the terms that run on every layer
(`…·n_layers`) or on the dense ones (`…·n_dense`), none negative. Where a count is `s - k·r`
(symbols s and r, a positive k), each monomial m that the form holds as α·m·s + β·m·r with α > 0 > β
moves t = min(α, -β/k) of itself into the factor; every other term is left as it was, and a form
with no such monomial is returned unchanged. The value is the same: tests compare it expanded.
"""

from __future__ import annotations

from collections import defaultdict

import sympy

_COUNTS: dict[sympy.Symbol, sympy.Expr] = {}  # each factor's placeholder symbol -> its count


def factor_symbol(count: sympy.Expr) -> sympy.Symbol:
    """The symbol a factored form holds in place of `count`, named as it prints: `(n_layers - n_dense)`."""
    symbol = sympy.Symbol(f"({sympy.sstr(count, order='rev-lex')})", positive=True, integer=True)
    _COUNTS[symbol] = count
    return symbol


def count_of(symbol: sympy.Symbol) -> sympy.Expr | None:
    """The count a placeholder stands for (None for a dim's symbol)."""
    return _COUNTS.get(symbol)


def _split(count: sympy.Expr):
    """(s, r, k) for a count s - k·r, else None."""
    for s in sorted(count.free_symbols, key=str):
        rest = sympy.expand(count - s)
        if rest.free_symbols and len(rest.free_symbols) == 1:
            (r,) = rest.free_symbols
            k = -rest.coeff(r)
            if k.is_Rational and k > 0 and sympy.expand(rest + k * r) == 0:
                return s, r, k
    return None


def factored(e, count: sympy.Expr):
    """`e` with `count` kept as a factor where its terms allow (see the module's doc), else `e`."""
    split = _split(count)
    if split is None:
        return e
    num, den = sympy.fraction(e)
    if den != 1:  # a ratio (uses per weight): its numerator and denominator, each with a positive lead
        if sympy.expand(num).could_extract_minus_sign():
            num, den = -num, -den
        top, bottom = factored(num, count), factored(den, count)
        if top is num and bottom is den:
            return e
        return sympy.Mul(top, sympy.Pow(bottom, -1, evaluate=False), evaluate=False)
    expanded = sympy.expand(e)
    if not isinstance(expanded, sympy.Add):
        return e
    s, r, k = split
    on_s, on_r, other = defaultdict(int), defaultdict(int), []
    for term in expanded.args:
        c, m = term.as_coeff_Mul()
        powers = m.as_powers_dict()
        if powers.get(s) == 1 and r not in m.free_symbols:
            on_s[m / s] += c
        elif powers.get(r) == 1 and s not in m.free_symbols:
            on_r[m / r] += c
        else:
            other.append(term)
    inside, outside = [], other
    for m in sorted(set(on_s) | set(on_r), key=sympy.default_sort_key):
        alpha, beta = on_s.get(m, 0), on_r.get(m, 0)
        t = min(alpha, -beta / k) if alpha > 0 > beta else 0
        if t:
            inside.append(t * m)
        outside += [(alpha - t) * m * s, (beta + k * t) * m * r]
    if not inside:
        return e
    return sympy.Add(sympy.Mul(factor_symbol(count), sympy.Add(*inside), evaluate=False), *outside)


def shown(counts, e):
    """`e` as text, LaTeX and the page show it: each of `counts` (a Derivation's compound_counts) a factor."""
    for count in counts:
        e = factored(e, count)
    return e


def unfactored(e):
    """A shown form's value: its placeholders replaced by their counts."""
    return sympy.expand(sympy.sympify(e).xreplace({x: _COUNTS[x] for x in e.free_symbols if x in _COUNTS}))
