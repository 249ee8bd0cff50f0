"""Compute-optimal sizes with the spec's exact training compute, not 6ND.

For a budget of C FLOPs and one dim x left free, a run of the spec at size x trains on
D(x) = C / f(x) tokens, f(x) the exact training FLOPs per token (attention at the spec's seq_len,
embeddings and the head as they cost, a mixture of experts' active experts only), and the law
predicts loss(x) = L(N(x), D(x)). N is what the law's fit counted: all parameters for the Hoffmann
form — a mixture of experts counted by its active parameters, the assumption stated in the output —
and non-embedding parameters for Kaplan's. The optimum is the valid size of x with the lowest
predicted loss; beside it, the law's own 6ND optimum (N_opt, D_opt closed form) and the size of x
that holds N_opt, priced with the exact f.

Inference-aware (Sardana et al. 2024, "Beyond Chinchilla-Optimal"): given tokens to serve, the size
that reaches the same loss with the least training plus inference compute, each served token priced
at the spec's exact decode-step FLOPs against a context of cached tokens (default: seq_len).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy

from ..codegen.vectorized import NUMPY_MODULES
from ..derive import Derivation
from ..errors import SpecError
from ..evaluate import dim_values
from ..explore.solve import in_one_variable, setup
from ..plan.tokens import flops_per_token
from ..results import Result, frame
from .laws import Law

MAX_SIZE = 10**7  # the largest size of the free dim searched


@dataclass
class Point:
    size: int
    params: int
    law_params: int  # what the law's N is for this spec (active, or non-embedding)
    flops_per_token: float
    tokens: float
    loss: float


@dataclass(repr=False)  # repr is Result's summary
class Optimum(Result):
    """The compute-optimal size of one dim for a budget, with exact compute, beside the law's 6ND optimum."""

    spec: str
    unknown: str
    flops: float
    law: Law
    n_means: str
    exact: Point  # the best valid size, exact compute
    six_nd: dict  # the law's 6ND optimum, and the spec's size nearest to its N
    served: dict | None = None  # the inference-aware optimum
    curve: dict | None = None  # loss against size at the budget (for the plot)

    def to_dict(self) -> dict:
        return {"name": self.spec, "unknown": self.unknown, "flops": self.flops, "law": self.law.name,
                "law_source": self.law.source, "n_means": self.n_means, "exact": vars(self.exact),
                "six_nd": self.six_nd, "inference_aware": self.served}

    def text(self, width: int | None = None) -> str:
        from ..render.scaling import optimal_text

        return optimal_text(self, width)

    def summary(self):
        e = self.exact
        return f"{self.spec}: compute-optimal {self.unknown} for {self.flops:.3g} FLOPs ({self.law.name})", [
            (self.unknown, f"{e.size:,}"), ("params", f"{e.params:,}"), ("tokens", f"{e.tokens:.4g}"),
            ("predicted loss", f"{e.loss:.5f}")]


@dataclass(repr=False)
class LawComparison(Result):
    """Specs at their own sizes trained with one budget: tokens, N as the law counts it, predicted loss."""

    flops: float
    law: Law
    rows: list[dict]  # one per spec (at_budget)

    def to_dict(self) -> dict:
        return {"flops": self.flops, "law": self.law.name, "specs": self.rows}

    def text(self, width: int | None = None) -> str:
        from ..render.scaling import compare_text

        return compare_text(self, width)

    def summary(self):
        return f"predicted loss at {self.flops:.3g} FLOPs ({self.law.name})", [
            (r["name"], f"{r['loss']:.5f}") for r in self.rows]

    def to_pandas(self):
        return frame(self.rows)


def law_n(derivation: Derivation, law: Law) -> tuple[sympy.Expr, str]:
    """The law's N for this spec, and what it counts: non-embedding parameters for Kaplan's form;
    all parameters for Hoffmann's, a mixture of experts by its active ones."""
    from ..explore.approx import non_embedding_params

    t = derivation.total
    if law.form == "kaplan":
        return non_embedding_params(derivation), "non-embedding parameters"
    if t.active_params != t.params:
        return t.active_params, "active parameters (a mixture of experts)"
    return t.params, "all parameters"


def _functions(derivation: Derivation, unknown: str, values: Mapping[str, int], law: Law):
    """f(x), N(x) as numpy functions of the free dim, and what N means."""
    per_token, _ = in_one_variable(derivation, flops_per_token(derivation), unknown, values)
    t = derivation.total
    n_expr, means = law_n(derivation, law)
    n_one, _ = in_one_variable(derivation, n_expr, unknown, values)
    params_one, _ = in_one_variable(derivation, t.params, unknown, values)
    x = sympy.Symbol(unknown, integer=True, positive=True)
    sym = next((s for s in per_token.free_symbols | n_one.free_symbols if str(s) == unknown), x)
    f = sympy.lambdify(sym, per_token, modules=NUMPY_MODULES)
    n = sympy.lambdify(sym, n_one, modules=NUMPY_MODULES)
    return f, n, (per_token, n_one, params_one, sym), means


def optimal(derivation: Derivation, flops: float, unknown: str, law: Law, values: Mapping[str, int] | None = None,
            multiple_of: int = 1, serve: float | None = None, serve_context: int | None = None) -> Optimum:
    if isinstance(multiple_of, bool) or not isinstance(multiple_of, int) or not 1 <= multiple_of <= MAX_SIZE // 100:
        raise SpecError(f"multiple_of {multiple_of!r}: expected an integer from 1 to {MAX_SIZE // 100:,} (sizes are "
                        f"searched up to {MAX_SIZE:,})", param="multiple_of")
    values = {k: v for k, v in (values or {}).items() if k != unknown}
    derivation, _ = setup(derivation.spec, unknown, values, derivation.convention)
    if (d := derivation.spec.dimset[unknown]).definition is not None:
        raise SpecError(f"unknown {unknown!r}: a derived dim (= {d.definition}); size one of the dims it is made of",
                        param="unknown")
    f, n, (per_token, n_one, params_one, sym), means = _functions(derivation, unknown, values, law)
    sizes = np.unique(np.round(np.geomspace(1, MAX_SIZE // multiple_of, 4000)).astype(np.int64)) * multiple_of
    with np.errstate(all="ignore"):
        per = np.broadcast_to(np.asarray(f(sizes.astype(float)), dtype=float), sizes.shape)
        loss = law.loss(np.broadcast_to(np.asarray(n(sizes.astype(float)), dtype=float), sizes.shape), flops / per)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    exact = _best_valid(derivation, unknown, values, sizes, loss, multiple_of,
                        lambda s: _point(s, per_token, n_one, params_one, sym, flops, law))
    lowest = int(np.argmin(loss))
    if lowest in (0, len(sizes) - 1):  # the loss still falls past the sizes searched: no optimum inside them
        edge = f"above {unknown} = {int(sizes[-1]):,}" if lowest else f"below {unknown} = {int(sizes[0]):,}"
        raise SpecError(f"at {flops:.3g} FLOPs the predicted loss is still falling {edge}, the edge of the sizes "
                        f"searched: the optimum lies outside them; change the budget or the other dims")
    curve = {"sizes": sizes.tolist(), "loss": loss.tolist()}
    six = {}
    if law.form == "hoffmann":
        n_opt, d_opt = law.optimum_6nd(flops)
        six = {"params": n_opt, "tokens": d_opt, "loss": float(law.loss(n_opt, d_opt)),
               "rule": "C = 6 N D, the law's closed-form optimum (Hoffmann et al. 2022, Eq. 4)"}
        holds = np.asarray(n(sizes.astype(float)), dtype=float)
        near = np.argmin(np.abs(np.log(np.broadcast_to(holds, sizes.shape) / n_opt)))
        at = _point(int(sizes[near]), per_token, n_one, params_one, sym, flops, law)
        six["spec_size_holding_it"] = vars(at)
        six["loss_with_exact_compute"] = at.loss
    out = Optimum(derivation.spec.name, unknown, flops, law, means, exact, six, curve=curve)
    if serve is not None:
        out.served = _inference_aware(derivation, unknown, values, law, exact, serve, sizes, f, n, multiple_of,
                                      serve_context)
    return out


def _point(size, per_token, n_one, params_one, sym, flops, law) -> Point:
    at = {sym: sympy.Integer(size)}
    per = per_token.xreplace(at)
    n = int(n_one.xreplace(at))
    d = flops / float(per)
    return Point(int(size), int(params_one.xreplace(at)), n, float(per), d, float(law.loss(n, d)))


def _best_valid(derivation, unknown, values, sizes, score, multiple_of, point) -> Point:
    """The valid size with the lowest score: sizes in score order, each checked against every
    constraint (heads dividing width...) until one holds."""
    for i in np.argsort(score)[:200]:
        if not np.isfinite(score[i]):
            break
        size = int(sizes[i])
        for candidate in (size, *(size + k * multiple_of for k in range(-8, 9) if k)):
            if candidate < 1:
                continue
            try:
                dim_values(derivation, {**values, unknown: candidate})
            except SpecError:
                continue
            return point(candidate)
    raise SpecError(f"no valid size of {unknown} up to {MAX_SIZE:,} gives a finite predicted loss at this budget")


def _inference_aware(derivation, unknown, values, law, exact: Point, serve: float, sizes, f, n, multiple_of,
                     serve_context: int | None) -> dict:
    """The size reaching exact.loss with the least training + serving compute (Sardana et al. 2024)."""
    if law.form != "hoffmann":
        raise SpecError("the inference-aware optimum needs a Hoffmann-form law (hoffmann2022, besiroglu2024 or a fit)")
    from ..derive import CONTEXT, derive

    p = law.params
    # a served token is a decode step's: one new token per sequence against `context` cached ones
    decode = derive(derivation.spec, derivation.convention, derivation.keep, decode=True)
    batch = derivation.spec.input_dim("batch", 1)
    context = serve_context if serve_context is not None else int(
        derivation.spec.input_dim("seq_len", 1).xreplace(dim_values(derivation, values)))
    forward, _ = in_one_variable(decode, decode.total.forward / batch, unknown, {**values, CONTEXT: context})
    sym = next(iter(forward.free_symbols), sympy.Symbol(unknown))
    g = sympy.lambdify(sym, forward, modules=NUMPY_MODULES)
    x = sizes.astype(float)
    with np.errstate(all="ignore"):
        nn = np.broadcast_to(np.asarray(n(x), dtype=float), x.shape)
        room = exact.loss - p["E"] - p["A"] / nn ** p["alpha"]
        tokens = np.where(room > 0, (p["B"] / room) ** (1 / p["beta"]), np.inf)
        per = np.broadcast_to(np.asarray(f(x), dtype=float), x.shape)
        serve_per = np.broadcast_to(np.asarray(g(x), dtype=float), x.shape)
        total = per * tokens + serve_per * serve
    total = np.where(np.isfinite(total), total, np.inf)

    def point(size):
        i = int(np.argmin(np.abs(sizes - size)))
        return {"size": int(size), "law_params": float(nn[i]), "train_tokens": float(tokens[i]),
                "train_flops": float(per[i] * tokens[i]), "serve_flops": float(serve_per[i] * serve),
                "total_flops": float(total[i])}

    best = _best_valid(derivation, unknown, values, sizes, total, multiple_of, lambda s: point(s))
    chinchilla = point(exact.size)
    return {"served_tokens": serve, "target_loss": exact.loss, "best": best, "training_optimal": chinchilla,
            "serving_flops_per_token": f"the spec's exact decode-step FLOPs per generated token, against {context:,} "
                                       "cached tokens"}


def at_budget(derivation: Derivation, flops: float, law: Law, values: Mapping[str, int] | None = None) -> dict:
    """The spec at its own sizes trained with `flops`: tokens, N as the law counts it, predicted loss."""
    subst = dim_values(derivation, values)  # every dim, every constraint checked
    n_expr, means = law_n(derivation, law)
    n = int(n_expr.xreplace(subst))
    per = float(flops_per_token(derivation).xreplace(subst))
    tokens = flops / per
    return {"name": derivation.spec.name, "params": int(derivation.total.params.xreplace(subst)), "law_params": n,
            "n_means": means,
            "flops_per_token": per, "tokens": tokens, "loss": float(law.loss(n, tokens))}


def compare(derivations: list[Derivation], flops: float, law: Law, values: Mapping[str, int] | None = None
            ) -> LawComparison:
    """Which spec, at its own sizes, reaches the lower predicted loss for `flops`."""
    return LawComparison(flops, law, [at_budget(d, flops, law, values) for d in derivations])
