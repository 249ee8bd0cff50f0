"""Convolutions (conv1d over token streams, conv2d over images): one weight reused at every
output position, so parameters do not grow with the input while FLOPs do.

    params = out x (dim / groups) x kernel^rank (+ out with bias)
    forward FLOPs = 2 x batch x out x (dim / groups) x kernel^rank x output positions

Output size per spatial dim (PyTorch's): floor((L + 2·padding - dilation·(kernel-1) - 1) / stride) + 1,
exact for every input size. Backward, as FlopCounterMode counts it: the input gradient
(when the input needs one: not for a first conv on raw pixels) equals the forward; the
weight gradient equals the forward too, except that — NB — the counter's formula for it
ignores groups and counts groups x the forward. The pytorch and macs conventions follow
the counter; `full` counts the arithmetic actually done (1 x).
"""

from __future__ import annotations

from typing import ClassVar

import sympy
from pydantic import StrictBool

from .. import ops
from ..checks import Check, divides, every
from ..cost import Cost
from .base import IMAGE_NEEDED, TOKENS_NEEDED, Component, Count, Ctx, FieldError, Flow, Size, fresh


def output_size(length, kernel, stride=1, padding=0, dilation=1) -> sympy.Expr:
    return sympy.floor((length + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1


def conv_cost(ctx: Ctx, d_in, d_out, kernel_volume, positions, groups, bias: bool,
              input_grad: bool | None = None) -> Cost:
    """One convolution over `positions` output positions per sample; its input needs a gradient
    when the stream has one (or as `input_grad` says)."""
    conv = ctx.convention
    forward = conv.flops_per_mac * ctx.batch * d_out * (d_in / groups) * kernel_volume * positions
    weight_grad = forward * (groups if conv.counter_formulas else 1)
    params = d_out * (d_in / groups) * kernel_volume + (d_out if bias else 0)
    input_grad = ctx.flow.grad if input_grad is None else input_grad
    cost = Cost.weights(params) + Cost(forward=forward, backward=weight_grad + (forward if input_grad else 0))
    if bias:
        cost = cost + ops.elementwise(conv, ctx.batch * positions * d_out, "bias")
    return cost


def causal_conv(conv, x, cache: dict | None):
    """A depthwise conv built with padding k - 1 a side, run causally over x (batch, channels, T),
    keeping a decoder's conv state (`cache`, the layer's state) as transformers' caches keep it:
    over a sequence, its first T outputs, the last k inputs kept (zeros before the first); a decode
    step convolves the k kept inputs and the new one unpadded (two outputs, the last kept), then
    keeps the last k. (vLLM keeps k - 1 inputs and computes one output: a row of the state and an
    output position less a channel.)"""
    import torch
    from torch.nn import functional as F

    k, T = conv.kernel_size[0], x.shape[-1]
    if cache is not None and T == 1:
        window = torch.cat((cache.get("conv", x.new_zeros(*x.shape[:2], k)), x), dim=-1)
        cache["conv"] = window[..., 1:]
        return F.conv1d(window, conv.weight, conv.bias, groups=conv.groups)[..., -1:]
    if cache is not None:
        cache["conv"] = F.pad(x, (max(k - T, 0), 0))[..., -k:]
    return conv(x)[..., :T]


class _Conv(Component):
    rank: ClassVar[int]
    decodes = False  # a decode step would need a rolling buffer of past inputs
    dim: Size  # input channels
    out: Size  # output channels
    kernel: Size
    stride: Size = 1
    padding: Count = 0  # NB: a number, not PyTorch's "same"
    dilation: Size = 1
    groups: Size = 1  # dim for a depthwise convolution
    bias: StrictBool = True

    def lengths(self, flow: Flow) -> tuple:
        """Input positions along each spatial dim."""
        raise NotImplementedError

    def out_lengths(self, flow: Flow) -> tuple:
        return tuple(output_size(n, self.kernel, self.stride, self.padding, self.dilation) for n in self.lengths(flow))

    def parts(self, ctx: Ctx):
        positions = sympy.Mul(*self.out_lengths(ctx.flow))
        return {"conv": conv_cost(ctx, self.dim, self.out, self.kernel**self.rank, positions, self.groups, self.bias)}

    def saved(self, ctx: Ctx):
        return Cost(saved=ctx.input_saved(self.dim))

    def checks(self, ctx):
        yield from super().checks(ctx)
        g = self.groups
        yield Check("groups", divides(g, self.dim) & divides(g, self.out), "{} groups must divide both dim {} and out {}",
                    (g, self.dim, self.out))
        lengths = self.lengths(ctx.flow)
        sizes = "x".join("{}" for _ in lengths)
        yield Check("kernel", every(n >= 1 for n in self.out_lengths(ctx.flow)),
                    f"a kernel of {{}} (dilation {{}}) does not fit an input of {sizes} with padding {{}}",
                    (self.kernel, self.dilation, *lengths, self.padding))

    def out_width(self, flow):
        return self.out

    def torch_conv(self, b):
        from torch import nn

        cls = {1: nn.Conv1d, 2: nn.Conv2d}[self.rank]
        return cls(
            b.int(self.dim), b.int(self.out), b.int(self.kernel), stride=b.int(self.stride),
            padding=b.int(self.padding), dilation=b.int(self.dilation), groups=b.int(self.groups), bias=self.bias,
        )


class Conv2d(_Conv):
    kind = "conv2d"
    mixes_tokens = True
    rank = 2

    def lengths(self, flow):
        if flow.spatial is None or len(flow.spatial) != 2:
            raise FieldError(None, IMAGE_NEEDED)
        return flow.spatial

    def after(self, flow: Flow) -> Flow:
        return fresh(flow, grad=True, width=self.out, spatial=self.out_lengths(flow))

    def build(self, b):
        return b.part(lambda m, x, state: m.conv(x), conv=self.torch_conv(b))  # (B, dim, H, W) -> (B, out, H', W')


class Conv1d(_Conv):
    """Over a token stream (batch, tokens, features): convolves along the tokens."""

    kind = "conv1d"
    mixes_tokens = True
    rank = 1

    def lengths(self, flow):
        if flow.length is None:
            raise FieldError(None, TOKENS_NEEDED)
        return (flow.length,)

    def after(self, flow: Flow) -> Flow:
        return fresh(flow, grad=True, width=self.out, length=self.out_lengths(flow)[0])

    def build(self, b):
        # (B, T, dim) -> (B, dim, T) -> conv -> (B, out, T') -> (B, T', out); transposes are free
        return b.part(lambda m, x, state: m.conv(x.transpose(1, 2)).transpose(1, 2).contiguous(), conv=self.torch_conv(b))
