"""Mixture of experts (Shazeer et al. 2017; Mixtral, DeepSeekMoE): E experts held, top_k run.

Parameters count every expert; active parameters count the router, the shared experts
and top_k experts — what any one token uses. Forward FLOPs: the router over every token,
plus each token through exactly top_k routed experts and every shared expert, so routed
expert FLOPs do not grow with `experts` (only the router does).

`capacity_factor` (Switch Transformer, Fedus et al. 2021): each expert has a fixed
buffer of C = ceil(capacity_factor x tokens x top_k / experts) token slots; tokens past
it are dropped and empty slots are zero-padded. Every expert then computes C rows, so
routed FLOPs become experts x C rows instead of tokens x top_k.

`shared_gate` (Qwen2-MoE): a dim -> 1 linear whose sigmoid scales the shared experts' output.

`router_softmax: top_k` (gpt-oss): the softmax runs over each token's top-k logits, not over
every expert's before the choice; it keeps k probabilities a token for backward, not E.
`bias`, `limit` and `shifted` (gpt-oss's clamped SwiGLU, DeepSeek-V4's without its + 1) are the experts' own
(components/mlp.py).

`zero_experts` (LongCat-Flash's zero-computation experts): Z identity experts beside the E routed
ones. The router scores E + Z; a token's pick of one adds the token itself, weighted, instead of an
expert's output, so the experts it really runs number between 0 and top_k — data-dependent. Counted
as transformers runs them: every slot through an expert (a zero pick is sent to a real expert with
weight 0), so routed FLOPs and active parameters are the top_k bound, which an engine that skips the
zero picks beats (LongCat-Flash reports 18.6B to 31.3B active, about 27B on average, against it).

`latent` (Nemotron 3's latent MoE): the routed experts work at a smaller width; a dim -> latent
projection before them and a latent -> dim one after (no biases), the router and the shared experts
at dim.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import sympy
from pydantic import StrictBool

from ..checks import Check
from ..cost import ZERO, Cost, total
from .parallel import TP, Rule
from .base import Component, Count, Ctx, FieldError, Ratio, Size
from ..symbols import ACT
from .mlp import MLP, Activation, activation_checkpoint, clamp_checks, mlp_saved, tuned_saved


class MoE(Component):
    kind = "moe"
    recompute_part = "moe"
    routes_tokens = True
    tunable = True
    parallel = Rule("parallel", lambda c: {"hidden": c.hidden / TP, "shared_hidden": c.shared_width / TP},
                    lambda c: (("hidden", c.hidden), ("shared_hidden", c.shared_width)), "experts",
                    refuses=lambda c: "a latent MoE's projections have no tensor-parallel rule here"
                    if c.latent is not None else None)
    dim: Size
    hidden: Size  # each routed expert's hidden size
    experts: Size  # routed experts held
    top_k: Size  # routed experts each token runs
    activation: Activation = "silu"
    gated: StrictBool = True
    bias: StrictBool = False  # in the experts' projections
    shared_experts: Count = 0  # always-on experts every token runs
    shared_hidden: Size | None = None  # default: hidden
    shared_gate: StrictBool = False
    router_bias: StrictBool = False
    zero_experts: Count = 0  # identity experts the router may pick (LongCat-Flash): top_k is then a bound
    latent: Size | None = None  # the routed experts' width, projected to and from dim (Nemotron 3)
    router_softmax: Literal["experts", "top_k"] = "experts"  # over every expert's logit, or the chosen k
    limit: Ratio | None = None  # the experts' clamped gate (gpt-oss)
    shifted: StrictBool = True  # the clamped up plus one (gpt-oss's); false: DeepSeek-V4's plain clamp
    capacity_factor: Ratio | None = None
    residual: StrictBool = True

    def expert(self, hidden, routed: bool = False) -> MLP:
        """One expert: an MLP without residual, built and costed by the MLP rule (a routed one at the
        latent width where there is one)."""
        return MLP.model_construct(
            dim=self.width if routed else self.dim, hidden=hidden, activation=self.activation, gated=self.gated,
            bias=self.bias, residual=False,
            limit=self.limit, shifted=self.shifted)

    @property
    def width(self):
        """The routed experts' width: the latent one, or dim."""
        return self.latent if self.latent is not None else self.dim

    @property
    def shared_width(self):
        return self.shared_hidden if self.shared_hidden is not None else self.hidden

    def capacity(self, tokens) -> sympy.Expr:
        """Token slots per expert under a capacity factor."""
        return sympy.ceiling(self.capacity_factor * tokens * self.top_k / self.experts)

    def parts(self, ctx: Ctx):
        E, k, T = self.experts, self.top_k, ctx.tokens
        routed = self.routed(ctx)
        one = total(self.expert(self.hidden, True).parts(routed).values())  # one expert over every token
        if self.capacity_factor is None:
            compute = Cost(forward=k * one.forward, backward=k * one.backward)
        else:  # each expert runs exactly C slots
            slots = total(self.expert(self.hidden, True).parts(routed.over(self.capacity(T))).values())
            compute = Cost(forward=E * slots.forward, backward=E * slots.backward)
        parts = {
            "router": routed.linear(self.dim, E + self.zero_experts, self.router_bias, storable=False)
            + ctx.elementwise(T * self.probs, "softmax"),
            "experts": Cost(params=E * one.params, active_params=k * one.params, frozen=E * one.frozen,
                            packed=E * one.packed, packed_bytes=E * one.packed_bytes, active_packed=k * one.packed,
                            active_packed_bytes=k * one.packed_bytes) + compute,
        }
        if self.shared_experts != 0:
            shared = total(self.expert(self.shared_width).parts(ctx).values())
            parts["shared_experts"] = shared * self.shared_experts
            if self.shared_gate:
                gate = ctx.linear(self.dim, 1, False, name="shared_gate", storable=False)
                parts["shared_gate"] = gate + ctx.elementwise(T, "sigmoid")
        if self.latent is not None:  # into the experts' width and back
            parts["latent"] = (routed.linear(self.dim, self.latent, False, storable=False)
                               + routed.linear(self.latent, self.dim, False, input_grad=True, storable=False))
        if self.zero_experts != 0:  # the picked identities' weight, times the token
            parts["zero_experts"] = ctx.elementwise(T * k, "combine") + ctx.elementwise(T * self.dim, "scale")
        parts["combine"] = ctx.elementwise(T * (k + self.shared_experts) * self.dim, "combine")
        if self.residual:
            parts["residual"] = ctx.elementwise(T * self.dim, "residual")
        return parts

    @property
    def probs(self):
        """Routing probabilities a token: over every expert (the zero ones too), or over its top k."""
        return self.experts + self.zero_experts if self.router_softmax == "experts" else self.top_k

    @classmethod
    def target(cls, module: str) -> str | None:
        """The shared experts' linears by their own names (`shared_experts.0.up_proj`: up_proj, as
        peft matches Qwen2-MoE's `shared_expert.up_proj`) and the shared gate; not the routed ones."""
        if module.startswith("shared_experts."):
            return module.rsplit(".", 1)[-1]
        return module if module == "shared_gate" else None

    @staticmethod
    def routed(ctx: Ctx) -> Ctx:
        """The context of the router and the routed experts: under a fine-tune they take no adapter,
        as in transformers 5 the experts are fused 3-D parameters and the router no nn.Linear, which
        peft's target_modules (all-linear or by name) do not reach; the shared experts and their gate
        are linears, and do. QLoRA's 4-bit storage of fused experts is not modelled. A quantization
        format may store the routed experts alone (gpt-oss's MXFP4)."""
        ctx = replace(ctx, experts=True)
        if ctx.tune is None:
            return ctx
        if ctx.tune.finetune.storage is not None:
            raise FieldError(None, "QLoRA's 4-bit storage of a moe layer's experts is not modelled; "
                             "fine-tune it with lora, dora or freeze")
        return replace(ctx, tune=ctx.tune.unadapted())

    def saved(self, ctx: Ctx):
        if ctx.frozen:
            return Cost(saved=self.frozen_saved(ctx))
        T, D, k = ctx.tokens, self.dim, self.top_k
        # router: x, the probabilities, the int64 top-k choice; every routed (token, slot) int64 pair; with zero
        # experts the two boolean masks of their picks (real, zero) and the picked identities' weight a token
        kept = ctx.input_saved(self.dim) + T * self.probs * ACT + 8 * T * k + 16 * T * k
        if self.zero_experts != 0:
            kept += 2 * T * k + T * ACT
        # per row an expert runs (tokens x top_k in all, or C slots each under a capacity): its
        # input, the expert's own, its weight and its output; with a capacity also the int64
        # row each slot adds to (without, that is the pair above)
        rows = T * k if self.capacity_factor is None else self.experts * self.capacity(T)
        kept += rows * ((2 * self.width + 1) * ACT + (0 if self.capacity_factor is None else 8))
        if self.latent is not None:  # the experts' sum, the up-projection's input (the down-projection reads x)
            kept += T * self.latent * ACT
        clamped = self.limit is not None
        kept += mlp_saved(rows, self.hidden, self.activation, self.gated, clamped)
        acts = activation_checkpoint(rows, self.hidden, self.activation, self.gated, clamped)
        if self.shared_experts != 0:  # they read x itself; their sum is kept when a gate scales it
            kept += self.shared_experts * mlp_saved(T, self.shared_width, self.activation, self.gated, clamped)
            acts += self.shared_experts * activation_checkpoint(T, self.shared_width, self.activation, self.gated,
                                                                clamped)
            if self.shared_gate:
                kept += T * (1 + D) * ACT
            if ctx.tune is not None:  # adapters on the shared experts and their gate (what they read is kept above)
                kept += (self.shared_experts * (ctx.linear_saved(D, self.shared_linears, stored=ZERO)
                                                + ctx.linear_saved(self.shared_width, ("down_proj",), stored=ZERO))
                         + ctx.linear_saved(D, ("shared_gate",), stored=ZERO))
        return Cost(saved=kept, activation_checkpoint=acts)

    @property
    def shared_linears(self) -> tuple[str, ...]:
        return ("up_proj", "gate_proj") if self.gated else ("up_proj",)

    def frozen_saved(self, ctx: Ctx):
        """What a frozen layer keeps, tensor by tensor as autograd decides: the routing (probabilities,
        top-k choice, each routed pair) and each routed row's expert output and weight only where the
        stream needs a gradient; a routed expert as a frozen MLP over its rows; the shared experts and
        their gate as frozen linears, with their adapters; x itself when an adapter reads it."""
        T, D, k = ctx.tokens, self.dim, self.top_k
        if self.capacity_factor is not None:
            raise FieldError("capacity_factor", "a frozen moe layer with a capacity is not modelled")
        if self.limit is not None:
            raise FieldError("limit", "fine-tuning a clamped gate (gpt-oss's) is not modelled")
        g = int(ctx.flow.grad)
        readers = (*self.shared_linears, *(("shared_gate",) if self.shared_gate else ())) if self.shared_experts else ()
        kept = ctx.input_saved(D) * ctx.reads(readers)  # x: kept when an adapter on a shared linear reads it
        kept += g * (T * self.probs * ACT + 8 * T * k + 16 * T * k + T * k * (D + 1) * ACT)
        kept += tuned_saved(self.routed(ctx).over(T * k), D, self.hidden, self.activation, self.gated)
        if self.shared_experts != 0:
            read = replace(ctx, flow=replace(ctx.flow, kept=True))  # x: counted above
            kept += self.shared_experts * tuned_saved(read, D, self.shared_width, self.activation, self.gated)
            if self.shared_gate:  # sigmoid(gate) · sum: each factor kept when the other needs a gradient
                g_gate, g_sum = int(ctx.grad_after("shared_gate")), int(ctx.grad_after(*self.shared_linears))
                kept += T * ACT * sympy.Max(g_gate, g_sum) + T * D * ACT * g_gate
                kept += ctx.linear_saved(D, ("shared_gate",), stored=ZERO)
        return kept

    def checks(self, ctx):
        yield from super().checks(ctx)
        yield Check("top_k", self.top_k <= self.experts + self.zero_experts, "top_k {} exceeds {} experts",
                    (self.top_k, self.experts + self.zero_experts))
        if self.shared_gate:
            yield Check("shared_gate", self.shared_experts > 0, "shared_gate needs shared_experts > 0")
        yield from clamp_checks(self)

    def build(self, b):
        import torch
        from torch import nn

        d, E, k, Z = b.int(self.dim), b.int(self.experts), b.int(self.top_k), b.int(self.zero_experts)
        n_shared = b.int(self.shared_experts)
        residual, top_k_softmax = self.residual, self.router_softmax == "top_k"
        mods = {
            "router": nn.Linear(d, E + Z, bias=self.router_bias),
            "experts": nn.ModuleList(self.expert(self.hidden, True).build(b) for _ in range(E)),
        }
        if self.latent is not None:
            L = b.int(self.latent)
            mods |= {"latent_in": nn.Linear(d, L, bias=False), "latent_out": nn.Linear(L, d, bias=False)}
        if n_shared:
            mods["shared_experts"] = nn.ModuleList(self.expert(self.shared_width).build(b) for _ in range(n_shared))
        if self.shared_gate:
            mods["shared_gate"] = nn.Linear(d, 1, bias=False)
        capacity = None
        if self.capacity_factor is not None:
            # capacity depends on the token count, known at run time: keep the rule symbolic here
            capacity = lambda tokens: int(sympy.ceiling(self.capacity_factor.xreplace(b.values) * tokens * k / E))

        def route(flat, weights, chosen, e):
            """(token rows, routing weights) for expert e.

            On meta there are no values to route by: tokens are dealt round-robin, (t·k + j)
            mod E, which gives every token exactly top_k experts — the only thing the counts
            depend on. On real tensors, the router's top-k choice decides.
            """
            if flat.is_meta:
                slots = flat.shape[0] * k
                rows = slots // E + (1 if e < slots % E else 0)
                # the weights are a slice of the router's output, so its gradient flows as on real tensors
                return torch.empty(rows, dtype=torch.long, device="meta"), weights.reshape(-1, 1)[:rows]
            token, slot = (chosen == e).nonzero(as_tuple=True)
            return token, weights[token, slot].unsqueeze(-1)

        def forward(m, x, state):
            B, T, D = x.shape
            flat = x.reshape(B * T, D)
            if top_k_softmax:  # (B·T, k): the chosen logits, then their softmax
                top, chosen = m.router(flat).topk(k, dim=-1)
                weights = top.softmax(dim=-1)
            else:
                weights, chosen = m.router(flat).softmax(dim=-1).topk(k, dim=-1)  # (B·T, E) -> (B·T, k)
            identity = None
            if Z:  # a zero pick adds the token itself, weighted, and runs a real expert at weight 0 (transformers')
                zero = chosen >= E
                identity = flat * weights.masked_fill(~zero, 0.0).sum(dim=-1, keepdim=True)
                chosen = torch.where(zero, (chosen - E) * E // Z, chosen)
                weights = weights.masked_fill(zero, 0.0)
            inner = m.latent_in(flat) if self.latent is not None else flat  # what the routed experts read
            out = torch.zeros_like(inner)
            for e, expert in enumerate(m.experts):
                token, w = route(flat, weights, chosen, e)
                rows = inner[token]  # (n_e, D), or (n_e, latent)
                if capacity is not None:  # a fixed buffer: drop overflow, zero-pad the rest (weight 0, onto row 0)
                    C = capacity(B * T)
                    pad = max(C - token.shape[0], 0)
                    token = torch.cat((token[:C], token.new_zeros(pad)))
                    w = torch.cat((w[:C], w.new_zeros(pad, 1)))
                    rows = torch.cat((rows[:C], rows.new_zeros(pad, rows.shape[1])))
                y = expert(rows, state) * w  # (n_e or C, D)
                out = out.index_put((token,), y, accumulate=True)  # keeps only the rows for backward, as index_add would not
            if self.latent is not None:
                out = m.latent_out(out)
            if identity is not None:
                out = out + identity
            if n_shared:
                shared = sum(expert(flat, state) for expert in m.shared_experts)
                if self.shared_gate:
                    shared = torch.sigmoid(m.shared_gate(flat)) * shared
                out = out + shared
            out = out.view(B, T, D)
            return x + out if residual else out

        return b.part(forward, **mods)
