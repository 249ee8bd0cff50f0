"""Speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
Decoding", Sec. 3.1): a draft proposes γ tokens, the target verifies them in one pass and keeps
the longest accepted prefix, plus one token of its own. With acceptance α_i for the i-th drafted
token given the ones before it, the tokens a verify step yields are in expectation

    1 + α_1 + α_1 α_2 + … + α_1 ⋯ α_γ,

which for one α is (1 - α^(γ+1)) / (1 - α) (the paper's Eq. 1; γ + 1 at α = 1)."""

from __future__ import annotations

from fractions import Fraction

from ..errors import SpecError
from ..limits import finite, whole

MAX_GAMMA = 64  # draft tokens a verify step checks: EAGLE's trees stay far below


def acceptance_of(acceptance, gamma: int) -> tuple[Fraction, ...]:
    """Per-position acceptance rates: one rate for every position, or one per drafted token."""
    if not (whole(gamma) and 1 <= gamma <= MAX_GAMMA):
        raise SpecError(f"gamma {gamma!r}: expected draft tokens per step, a whole number from 1 to {MAX_GAMMA}",
                        param="gamma")
    rates = list(acceptance) if isinstance(acceptance, (list, tuple)) else [acceptance] * gamma
    if len(rates) != gamma:
        raise SpecError(f"acceptance: {len(rates)} rates for gamma {gamma} drafted tokens (give one, or one per "
                        "token)", param="acceptance")
    out = []
    for a in rates:
        if not (finite(a) and 0 <= a <= 1):
            raise SpecError(f"acceptance {a!r}: expected a rate in [0, 1]", param="acceptance")
        out.append(Fraction(a).limit_denominator(10**9) if isinstance(a, float) else Fraction(a))
    return tuple(out)


def tokens_per_step(rates: tuple[Fraction, ...]) -> Fraction:
    """Expected tokens one verify step yields (the module docstring's sum)."""
    out, kept = Fraction(1), Fraction(1)
    for a in rates:
        kept *= a
        out += kept
    return out
