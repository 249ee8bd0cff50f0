"""The primitives every cost rule is built from: matmul, linear, lookup, elementwise.

Convention (see conventions.py): a multiply-accumulate is `flops_per_mac` FLOPs (2 under
pytorch); elementwise work counts only under `full`. Backward follows the op formulas of
FlopCounterMode: a matmul's backward is one matmul of the same size for each operand
that needs a gradient.
"""

from __future__ import annotations

import sympy

from .conventions import BACKWARD_ELEMENTWISE_FACTOR, ELEMENTWISE, Convention
from .cost import Cost


def matmul(conv: Convention, batch, m, k, n, *, grad_a: bool, grad_b: bool) -> Cost:
    """[batch, m, k] @ [batch, k, n] -> [batch, m, n]: batch*m*k*n multiply-adds."""
    forward = conv.flops_per_mac * batch * m * k * n
    return Cost(forward=forward, backward=forward * (int(grad_a) + int(grad_b)))


def linear(conv: Convention, tokens, d_in, d_out, *, bias: bool, input_grad: bool, weight_grad: bool = True) -> Cost:
    """y = x @ W^T + b. x: [tokens, d_in] @ W^T: [d_in, d_out] -> [tokens, d_out].

    Backward: the weight gradient unless the weight is frozen; the input gradient only when
    the input needs one (NB: a first layer on raw inputs does not, so its backward is 1x its
    forward).
    """
    params = d_in * d_out + (d_out if bias else 0)
    cost = Cost.weights(params) + matmul(conv, 1, tokens, d_in, d_out, grad_a=input_grad, grad_b=weight_grad)
    if bias:
        cost = cost + elementwise(conv, tokens * d_out, "bias")
    return cost


def lookup(rows, width) -> Cost:
    """A table read (embedding): rows*width parameters, no arithmetic under any convention."""
    return Cost.weights(rows * width)


def elementwise(conv: Convention, count, kind: str) -> Cost:
    """`count` elements of elementwise work of `kind` (conventions.ELEMENTWISE); 0 unless `full`."""
    if not conv.elementwise:
        return Cost()
    forward = sympy.Integer(ELEMENTWISE[kind]) * count
    return Cost(forward=forward, backward=forward * BACKWARD_ELEMENTWISE_FACTOR)
