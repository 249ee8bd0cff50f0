"""Serving costs: prefill over a prompt, one decode step against a cache of `context`
tokens, the total for generating `new_tokens`, and each step's arithmetic intensity.

- prefill: the forward FLOPs of one pass over seq_len tokens (the derivation's forward).
- decode step: derive(decode=True) — one token per sequence, attention over the cached
  context plus itself, cached work (an encoder, cross-attention keys) not repeated.
- generation: the sum of decode steps at context = seq_len .. seq_len + new_tokens - 1,
  summed in closed form by sympy (a polynomial in both, for full attention).
- arithmetic intensity of a step: its FLOPs over the bytes it must move — every active
  weight once and the whole cache after the step (read, and the new token written). A
  step far below the hardware's FLOPs-per-byte ratio is memory-bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import sympy

from . import symbols
from .derive import CONTEXT, Derivation, derive
from .errors import SpecError
from .evaluate import dim_values
from .memory import cache_note
from .metrics import INFERENCE
from .precision import Precision
from .results import Result
from .spec import Spec

NEW_TOKENS = "new_tokens"


@dataclass(repr=False)  # repr is Result's summary
class Inference(Result):
    """The closed forms; after `at`, their numbers at concrete sizes too (what to_dict and text show)."""

    prefill: sympy.Expr  # in seq_len (and the other dims)
    step: sympy.Expr  # in context
    generation: sympy.Expr  # in seq_len and new_tokens
    step_bytes: sympy.Expr  # in context
    intensity: sympy.Expr  # step / step_bytes
    prefill_derivation: Derivation
    step_derivation: Derivation
    notes: tuple[str, ...] = ()
    numbers: dict[str, sympy.Expr] | None = None  # `values`' figures, the context among them
    new_tokens: int | None = None

    def at(self, values: Mapping[str, int], context: int | None, new_tokens: int) -> Inference:
        """This result with its numbers at concrete sizes (context: seq_len unless given)."""
        return replace(self, numbers=self.values(values, context, new_tokens), new_tokens=new_tokens)

    @property
    def name(self) -> str:
        return self.prefill_derivation.spec.name

    @property
    def convention(self) -> str:
        return self.prefill_derivation.convention.name

    def _numbers(self) -> dict[str, sympy.Expr]:
        if self.numbers is None:
            raise SpecError("these are closed forms only: call .at(values, context, new_tokens) for numbers")
        return self.numbers

    def to_dict(self) -> dict:
        from .render.memory import inference_data

        return inference_data(self)

    def text(self, width: int | None = None, formulas: bool = False) -> str:
        from .render.memory import render_inference

        return render_inference(self, "text", width, formulas)

    def summary(self):
        from .render.memory import inference_rows

        return self.name, [(text, shown) for _, text, shown in inference_rows(self)]

    def values(self, values: Mapping[str, int], context: int | None, new_tokens: int) -> dict[str, sympy.Expr]:
        """Every figure at concrete sizes (context defaults to seq_len), and the context used."""
        subst = dict(dim_values(self.prefill_derivation, values))
        seq_len = subst.get(symbols.dim("seq_len"))
        if context is None:
            if seq_len is None:
                raise SpecError("no seq_len to default the context to: give the context (tokens already in the cache)")
            context = seq_len
        subst |= {symbols.dim(CONTEXT): sympy.Integer(context), symbols.dim(NEW_TOKENS): sympy.Integer(new_tokens)}
        dim_values(self.step_derivation, {**values, CONTEXT: int(context)})  # the step's checks, too
        out = {"context": sympy.Integer(context)}
        for name in INFERENCE:
            e = getattr(self, name).xreplace(subst)
            out[name] = e.doit() if isinstance(e, sympy.Sum) or e.has(sympy.Sum) else e
        return out


def inference(spec: Spec, precision: Precision = Precision(), convention: str = "pytorch") -> Inference:
    if "seq_len" not in spec.dimset:
        raise SpecError("inference needs a token model: declare `seq_len` (the prompt's length)")
    prefill = derive(spec, convention)
    step = derive(spec, convention, decode=True)
    t = step.total
    context, new, n = symbols.dim(CONTEXT), symbols.dim(NEW_TOKENS), symbols.dim("seq_len")
    summand = sympy.Dummy("c", integer=True, nonnegative=True)
    generation = sympy.summation(t.forward.xreplace({context: summand}), (summand, n, n + new - 1))
    moved = t.active_params * precision.bytes("weights") + t.cache * precision.bytes("kv")
    return Inference(
        prefill.total.forward,
        t.forward,
        sympy.factor(generation) if not generation.has(sympy.Sum) else generation,
        sympy.expand(moved),
        sympy.cancel(t.forward / moved),
        prefill,
        step,
        tuple(n for n in (cache_note(prefill),) if n),
    )
