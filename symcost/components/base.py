"""What every component shares: size fields parsed against the spec's dims, the derivation
context, and the interface a component type implements (cost parts, checks, torch build)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, get_args

import sympy
from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationInfo

from .. import expr, ops
from ..checks import Check, whole
from ..conventions import Convention
from ..cost import ZERO, Cost
from ..dims import rate
from ..symbols import ACT

if TYPE_CHECKING:  # torch is imported only by the measured route
    from ..finetune import Tuning
    from ..quantization import Quantization
    from .build import Build
    from .parallel import Rule


@dataclass(frozen=True)
class Domain:
    """What a number field must be at concrete sizes: an integer >= `least`, any rational > 0,
    or (`rate`) a rational in [0, 1) — a literal or a rate dim, nothing else."""

    least: int | None  # None: a ratio (capacity factor), only required positive
    wanted: str
    rate: bool = False

    def holds(self, e: sympy.Expr) -> sympy.Basic:
        """The condition that e, at concrete sizes, is in the domain."""
        if self.rate:
            return (e >= 0) & (e < 1)
        return e > 0 if self.least is None else whole(e) & (e >= self.least)

    def accepts(self, v: sympy.Expr) -> bool:
        return self.holds(v) is sympy.true

    def __call__(self, value: Any, info: ValidationInfo) -> sympy.Expr:
        dims = info.context["dims"]
        if self.rate:
            name = value.strip() if isinstance(value, str) else None
            if name in dims:
                if dims[name].rate:
                    return dims[name].symbol
                raise expr.ExprError(f"{name} is a size; a rate is a number in [0, 1) or a rate dim "
                                     "(declared as {rate: 0.1})")
            return sympy.Rational(rate(value))
        parsed = expr.parse(value, dims.names)
        if used := sorted(str(r) for r in parsed.free_symbols & dims.rates):
            raise expr.ExprError(f"{used[0]} is a rate (a probability); a size cannot use it")
        if parsed.is_Number and not self.accepts(parsed):
            raise expr.ExprError(f"must be {self.wanted}, got {parsed}")
        return parsed


# Number fields: an integer, a dim name or an expression, parsed exactly (never eval'd).
SIZE, COUNT, RATIO = Domain(1, "a positive integer"), Domain(0, "a non-negative integer"), Domain(None, "positive")
RATE = Domain(None, "in [0, 1)", rate=True)


def number(domain: Domain):
    """A number field's type: parsed exactly, held to `domain` (which the schema and messages read)."""
    return Annotated[sympy.Expr, PlainValidator(domain), domain]


Size = number(SIZE)  # widths, heads, lengths
Count = number(COUNT)  # how many of something, possibly none
Ratio = number(RATIO)  # a positive rational (5/4)
Rate = number(RATE)  # a probability: 0.1, or a rate dim


@dataclass(frozen=True)
class Flow:
    """What a layer passes to the layers after it, besides the tensor itself."""

    grad: bool = False  # the stream carries a gradient (False on raw inputs)
    width: sympy.Expr | None = None  # features per token (channels, for an image)
    length: sympy.Expr | None = None  # a token stream: (batch, length, width)
    spatial: tuple[sympy.Expr, ...] | None = None  # an image stream instead: (batch, width, *spatial)
    rotary: sympy.Expr | None = None  # rotary dims per head that attention applies to q and k
    embedding: tuple[sympy.Expr, sympy.Expr] | None = None  # (vocab, dim) of the token embedding
    memory: Memory | None = None  # an encoder's output, for cross-attention
    kept: bool = False  # the stream's storage is already saved for backward by the layer that made it
    stored: sympy.Expr | None = None  # elements of the storage the stream is a view of, when larger


def fresh(flow: Flow, **changes) -> Flow:
    """The flow after a layer that writes a new tensor (nothing has saved it yet)."""
    return replace(flow, **{"kept": False, "stored": None, **changes})


@dataclass(frozen=True)
class Memory:
    """What an encoder leaves for cross-attention: its length, width and whether it has a gradient."""

    length: sympy.Expr
    width: sympy.Expr | None
    grad: bool
    kept: bool = False  # saved for backward already (by the first layer that reads it)
    stored: sympy.Expr | None = None  # elements per sample of its storage, when it is a view of a larger one

    @classmethod
    def of(cls, flow: Flow) -> Memory:
        """What the encoder's last flow leaves."""
        return cls(flow.length, flow.width, flow.grad, stored=flow.stored)

    def bytes(self, batch, width) -> sympy.Expr:
        """Its whole storage, in symbols.ACT: what saving it keeps alive."""
        return batch * (self.stored if self.stored is not None else self.length * width) * ACT

    def saved(self, batch, width) -> sympy.Expr:
        """Bytes the first layer reading it adds by saving it, then none."""
        return ZERO if self.kept else self.bytes(batch, width)


@dataclass(frozen=True)
class Ctx:
    """Everything a cost rule may use besides its own fields."""

    convention: Convention
    batch: sympy.Expr
    flow: Flow
    context: sympy.Expr = sympy.Integer(0)  # tokens already in the caches before this pass
    decoding: bool = False  # a decode step: what was computed once at prefill is cached
    tune: Tuning | None = None  # this layer's share of a fine-tune (finetune.py); None: every weight trains
    store: Quantization | None = None  # how the spec stores this layer's linears (quantization.py); None: in its dtype
    experts: bool = False  # inside a MoE's routed experts (a format may store only those)

    @property
    def seq_len(self) -> sympy.Expr:
        """Tokens per sample of the token stream here."""
        return self.need_tokens()

    @property
    def tokens(self) -> sympy.Expr:
        return self.batch * self.seq_len

    def need_tokens(self) -> sympy.Expr:
        """The stream's tokens per sample; a FieldError unless the stream is made of tokens."""
        if self.flow.length is None:
            raise FieldError(None, TOKENS_NEEDED)
        return self.flow.length

    def elements(self, width) -> sympy.Expr:
        """Values in the stream at `width` features: batch x positions x width."""
        if width is None:
            raise FieldError(None, WIDTH_UNKNOWN)
        positions = self.flow.length if self.flow.spatial is None else sympy.Mul(*self.flow.spatial)
        return self.batch * (positions if positions is not None else 1) * width

    def over(self, rows) -> Ctx:
        """This context over `rows` token rows in one batch (an expert's capacity buffer)."""
        return replace(self, batch=sympy.Integer(1), flow=replace(self.flow, length=rows))

    def linear(self, d_in, d_out, bias: bool, *, tokens=None, input_grad: bool | None = None,
               name: str | None = None, storable: bool = True) -> Cost:
        """A linear layer over every token; its input needs a gradient when the stream has one.
        `name` is what a fine-tune's targets call it (its part name, or the kind of a layer
        that is one linear): frozen, it computes no weight gradient; targeted, it has an adapter.
        `storable`: a quantization format may store its weight (not a router's)."""
        tokens = self.tokens if tokens is None else tokens
        input_grad = self.flow.grad if input_grad is None else input_grad
        cost = ops.linear(self.convention, tokens, d_in, d_out, bias=bias, input_grad=input_grad,
                          weight_grad=not self.frozen)
        if storable and self.store is not None and self.store.reaches(self.experts):
            cost += self.store.stored(d_in, d_out)
        if self.tune is None:
            return cost
        cost = self.held(cost)
        if name is not None and self.tune.adapters:  # a linear an adapter can reach (see Tuning.adapters)
            packed = self.tune.packed(d_in, d_out) if self.frozen else Cost()
            self.tune.seen.append((name, d_in, d_out, packed.packed))
            cost += packed
        return cost + self.tune.adapter(self, d_in, d_out, tokens, input_grad) if self.tune.adapts(name) else cost

    @property
    def frozen(self) -> bool:
        """Whether this layer's own weights are frozen by a fine-tune."""
        return self.tune is not None and self.tune.frozen

    def held(self, cost: Cost) -> Cost:
        """`cost` with its parameters marked frozen when this layer's weights are."""
        return replace(cost, frozen=cost.params) if self.frozen else cost

    def weights(self, count) -> Cost:
        """Parameters every token uses (a norm's scale, a table), frozen when the layer's are."""
        return self.held(Cost.weights(count))

    def adapts(self, name: str) -> bool:
        return self.tune is not None and self.tune.adapts(name)

    def grad_after(self, *names: str) -> bool:
        """Whether the output of the linears `names`, reading this stream, needs a gradient."""
        return self.flow.grad or not self.frozen or any(self.adapts(n) for n in names)

    def linear_saved(self, width, names: tuple[str, ...], *, rows=None, stored=None,
                     input_grad: bool | None = None) -> sympy.Expr:
        """What the linears `names`, all reading one input of `width` features over `rows` rows
        (default: this stream's rows, whose bytes are `stored` and whose gradient `input_grad`
        unless given), keep for backward: that input, once, when their weights train or an
        adapter reads it undropped; each adapter's own."""
        stored = self.input_saved(width) if stored is None else stored
        if self.tune is None:
            return stored
        rows = self.elements(1) if rows is None else rows
        adapted = [n for n in names if self.adapts(n)]
        grad = self.flow.grad if input_grad is None else input_grad
        return stored * self.reads(names) + sum((self.tune.adapter_saved(rows, width, grad) for _ in adapted), ZERO)

    def reads(self, names: tuple[str, ...]):
        """1 when the linears `names` keep their input itself for backward (a weight trains, or an
        adapter reads it undropped), else 0."""
        if not self.frozen:
            return 1
        return self.tune.reads_undropped() if any(self.adapts(n) for n in names) else 0

    def elementwise(self, count, kind: str) -> Cost:
        return ops.elementwise(self.convention, count, kind)

    def input_saved(self, width=None) -> sympy.Expr:
        """Bytes a layer adds by saving its input for backward: the stream's storage (token ids:
        int64), or 0 when the layer that made it saved it already."""
        if self.flow.kept:
            return ZERO
        if self.flow.stored is not None:
            return self.batch * self.flow.stored * ACT
        width = width if width is not None else self.flow.width
        if width is None and self.flow.spatial is None:
            return 8 * self.tokens  # token ids
        return self.elements(width) * ACT


def _domain(info) -> Domain | None:
    """The Domain of a field, also inside `Size | None`."""
    metadata = list(info.metadata)
    for arg in get_args(info.annotation):
        metadata += getattr(arg, "__metadata__", ())
    return next((m for m in metadata if isinstance(m, Domain)), None)


TOKENS_NEEDED = (
    "this layer needs a token stream (batch, tokens, features): declare `seq_len` in dims, "
    "or turn an image into tokens first (flatten, patch_embedding)"
)


WIDTH_UNKNOWN = "the stream's width is unknown here: start with a layer that reads its input (a conv, linear or embedding)"
IMAGE_NEEDED = "this layer needs an image stream (batch, channels, height, width): declare `image_size` in dims"


class FieldError(Exception):
    """A rule found one of its fields (or, field None, itself) wrong; derive reports it there."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Component(BaseModel):
    """A layer type. Subclasses set `kind` (the YAML key) and implement `parts` and `build`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True, defer_build=True)
    kind: ClassVar[str]
    decodes: ClassVar[bool] = True  # can run one token at a time against a cache
    reads_memory: ClassVar[bool] = False  # reads the encoder's output (cross-attention, contrastive)
    sequential: ClassVar[bool] = False  # carries a state from token to token (recurrent, state-space layers)
    # reads positions other than its own (attention, convolutions, pooling, inserted tokens): context
    # parallelism, which gives each rank a share of every sequence, must pass it the others (`ring`)
    mixes_tokens: ClassVar[bool] = False
    # what the planner, memory and the measured route ask of a type, declared here rather than tested by kind:
    parallel: ClassVar[Rule | None] = None  # how tensor parallelism splits it (components/parallel.py); None: refused
    attends: ClassVar[str | None] = None  # an attention core: "self" (keys and values of its own tokens, split by
    #   heads, passed round the ring under context parallelism), "latent" (MLA's compressed cache), "cross"
    routes_tokens: ClassVar[bool] = False  # sends each token to its experts (ep splits the experts)
    holds_logits: ClassVar[bool] = False  # makes the vocabulary logits (the loss's input)
    # what a list of recomputed parts calls a layer of this type that it may checkpoint whole (precision.PARTS)
    recompute_part: ClassVar[str | None] = None
    scores_batch: ClassVar[bool] = False  # scores every pair of a batch (a contrastive head)
    tunable: ClassVar[bool] = False  # its rules model frozen weights and adapters (finetune.py)

    def parts(self, ctx: Ctx) -> dict[str, Cost]:
        """The cost of one pass, by named part (`q_proj`, `scores`, …)."""
        raise NotImplementedError

    def ring(self) -> sympy.Expr | None:
        """Values per token, over all heads, that context parallelism's ring passes a layer that mixes
        tokens (ring attention's keys and values, Liu et al. 2023); None where no rule here models it."""
        return None

    @classmethod
    def target(cls, module: str) -> str | None:
        """What a fine-tune's targets call the nn.Linear at `module` (a path inside the built layer),
        as its rule names it in ctx.linear(name=…); None: no adapter reaches it. By default, a
        direct child by its part name (`q_proj`)."""
        return None if "." in module else module

    def after(self, flow: Flow) -> Flow:
        """The flow after this layer: by default it holds weights, so the stream now has a gradient."""
        return fresh(flow, grad=True, width=self.out_width(flow))

    def encoder_output(self, ctx: Ctx) -> Memory:
        """What the spec's encoder left, for a layer that reads it (see reads_memory)."""
        if ctx.flow.memory is None:
            raise FieldError("dim", f"{self.kind} needs an `encoder` block earlier in the spec")
        return ctx.flow.memory

    def saved(self, ctx: Ctx) -> Cost:
        """Bytes its training forward keeps for backward (Cost.saved, in symbols.ACT), as the
        reference build saves them (measure/saved.py measures it). Every type has a rule."""
        raise NotImplementedError

    def output_mask(self, ctx: Ctx) -> sympy.Expr:
        """Of `saved`, the bytes of its output's dropout mask (`hidden_dropout`): they sit on the
        stream after the layer's exit, so sequence parallelism splits them (plan)."""
        return ZERO

    def in_width(self) -> sympy.Expr | None:
        """The stream width this layer expects, if it reads one."""
        return getattr(self, "dim", None)

    def out_width(self, flow: Flow) -> sympy.Expr | None:
        return flow.width if flow.width is not None else self.in_width()

    def checks(self, ctx: Ctx) -> Iterator[Check]:
        """The constraints its fields must meet at concrete sizes.

        Every number field must be in its domain; subclasses add their own (heads dividing width).
        """
        for name, info in type(self).model_fields.items():
            number = getattr(self, name)
            domain = _domain(info)
            if domain is not None and number is not None:
                yield Check(name, domain.holds(number), f"{number} = {{}}; must be {domain.wanted}", (number,))

    def build(self, b: Build):
        """The torch module for this layer at the sizes in `b` (verify only)."""
        raise NotImplementedError
