"""Spec -> cost tree: each component's cost rule, `repeat` as a symbolic multiplier.

A repeat block's cost is derived from one pass of its layers and multiplied by its count
(never unrolled), so derivation time does not depend on depth. The one subtlety: the
first pass may see a stream without a gradient (raw inputs), later passes with one, so a
block whose flow changes over its first pass costs first + (N - 1) x later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import sympy

from . import conventions, expr, symbols
from .checks import Check, every
from .components import Ctx, FieldError, Flow, Memory, hyper
from .components.base import SIZE, Component, fresh
from .conventions import Convention
from .cost import Cost, Node, total
from .finetune import RankFits
from .metrics import label
from .results import Result
from .spec import Encoder, Repeat, Residual, Spec, Tied, component_of, is_container, reads_embedding, reads_memory


@dataclass(frozen=True)
class Site:
    """Where a component sits: its YAML path, the context it was derived in (for checks),
    and how many times it runs in one pass."""

    where: tuple
    component: object
    ctx: Ctx
    count: sympy.Expr = sympy.Integer(1)
    # where the passes of an enclosing repeat see other contexts (a gradient arrives during its first
    # pass: raw inputs, a fine-tune's frozen layers), each context and how many of `count` run in it
    later: tuple[tuple[Ctx, sympy.Expr], ...] = ()

    @property
    def runs(self) -> tuple[tuple[Ctx, sympy.Expr], ...]:
        """(context, passes) pairs: the `count` passes split by the context each runs in."""
        return self.later or ((self.ctx, self.count),)

    @property
    def in_mtp(self) -> bool:
        """A layer of the spec's MTP modules (mtp_cost walks the shared embedding and head again beside them)."""
        return self.where[0] == "mtp"

    def times(self, n: sympy.Expr) -> Site:
        return replace(self, count=self.count * n, later=tuple((c, k * n) for c, k in self.later))


@dataclass(frozen=True)
class Block:
    """A top-level repeat block: what full recomputation checkpoints, pass by pass, keeping
    only each pass's input (`input_bytes`, in symbols.ACT)."""

    path: str
    count: sympy.Expr
    input_bytes: sympy.Expr  # the first pass's input (an earlier layer may have kept it already)
    later_bytes: sympy.Expr = sympy.Integer(0)  # each later pass's: the pass before's output, kept by nobody
    holds_memory: bool = False  # an encoder's output is in the state its checkpoints hold
    holds_embedding: bool = False  # the embedding's copy (concat_embedding's) is too
    first_pass: Cost = Cost()  # the cost of its first pass alone, and of each later one (they differ where
    later_pass: Cost = Cost()  # a gradient starts inside the block: raw inputs, a fine-tune's frozen layers)
    # the layer after the block, and what it must keep under full recomputation because the
    # block's last layer (say a relu), recomputed, no longer keeps the stream for it
    then: tuple[str, sympy.Expr] | None = None


@dataclass(frozen=True)
class Count:
    """The check of a repeat or encoder count at concrete sizes: copies and tokens come whole."""

    field: str  # `repeat` or `encoder`
    count: sympy.Expr

    def in_width(self):
        return None

    def checks(self, ctx):
        # the domain of every size field
        yield Check(self.field, SIZE.holds(self.count), f"{self.count} = {{}}; must be {SIZE.wanted}", (self.count,))


@dataclass(frozen=True)
class Join:
    """The check where a residual block adds its two branches: their shapes must agree."""

    body: Flow
    shortcut: Flow

    def in_width(self):
        return None

    def checks(self, ctx):
        def shape(flow: Flow):
            positions = flow.spatial if flow.spatial is not None else (flow.length,)
            return tuple(x for x in (flow.width, *positions) if x is not None)

        body, shortcut = shape(self.body), shape(self.shortcut)
        same = every(sympy.Eq(a, b) for a, b in zip(body, shortcut)) if len(body) == len(shortcut) else sympy.false
        tuples = [f"({', '.join('{}' for _ in s)}{',' * (len(s) == 1)})" for s in (body, shortcut)]
        yield Check("shortcut", same, f"the block gives {tuples[0]} but the shortcut {tuples[1]} (features, positions)",
                    body + shortcut)


@dataclass(frozen=True, repr=False)
class Derivation(Result):
    """The symbolic cost: closed forms per component and in total (sympy expressions)."""

    spec: Spec
    convention: Convention
    keep: tuple[str, ...]
    raw: tuple[Node, ...]  # in every dim, derived ones unsubstituted (evaluation substitutes values)
    sites: tuple[Site, ...]
    decode: bool = False  # the cost of one decode step (see derive)
    blocks: tuple[Block, ...] = ()
    linears: tuple = ()  # under a fine-tune, (name, d_in, d_out, values stored quantized) of each named linear
    raw_mtp: Cost | None = None  # the spec's multi-token prediction modules, apart (see mtp_cost)
    mtp_sites: tuple[Site, ...] = ()  # their layers, whose constraints are checked with the model's
    nodes: tuple[Node, ...] = field(init=False)  # closed forms in the free (and kept) dims
    total: Cost = field(init=False)
    mtp: Cost | None = field(init=False)  # raw_mtp's closed form

    def __post_init__(self) -> None:
        subst = self.spec.dimset.substitution(self.keep)
        close = lambda e: sympy.expand(e.xreplace(subst))
        closed = tuple(n.map(close) for n in self.raw)
        object.__setattr__(self, "nodes", closed)
        object.__setattr__(self, "total", total(n.cost for n in closed))
        object.__setattr__(self, "mtp", None if self.raw_mtp is None else self.raw_mtp.map(close))

    def to_dict(self, leading_in=None) -> dict:
        """The shape of `derive --format json`: formulas as text that sympy.parse_expr reads back,
        with leading terms in `leading_in` (default: the input's size, as derive prints)."""
        from .render.model import derivation_data

        return derivation_data(self, self.default_leading if leading_in is None else leading_in)

    @property
    def tuned(self) -> bool:
        """Whether a fine-tune freezes weights: the figures then split trainable from frozen parameters."""
        return self.spec.finetune is not None and not self.spec.finetune.trains_all

    def held(self, subst) -> dict[str, int]:
        """Under a fine-tune, its trainable and frozen parameters at `subst` (dim values); else nothing."""
        return {m: int(e.xreplace(subst)) for m, e in self.total.held.items()} if self.tuned else {}

    @property
    def default_leading(self) -> list[str]:
        """The dim whose growth derive shows the leading terms in: the input's size, when free."""
        return [n for n in ("image_size", "seq_len") if n in self.free_symbols][:1]

    def text(self, width: int | None = None) -> str:
        from .render.model import derivation_text

        return derivation_text(self, width, formulas=True)

    def summary(self):
        from .render.text import pretty

        t = self.total
        rows = [(label(m), pretty(e)) for m, e in t.metrics(self.tuned).items()
                if not (m == "active_params" and e == t.params)]
        return f"{self.spec.name} ({self.convention.name})", rows

    def _repr_latex_(self) -> str:
        from .render.model import latex

        return latex(self, display=True)

    def to_pandas(self):
        """One row per component, formulas as sympy expressions."""
        from .results import frame

        return frame([{"path": n.path, "kind": n.kind, **n.cost.metrics(self.tuned)} for n in self.nodes])

    @property
    def input_unit(self) -> str:
        """What the main stream reads: images, or tokens (CLIP's text, beside its image encoder)."""
        return "image" if input_flow(self.spec).spatial is not None else "token"

    @property
    def inputs(self) -> sympy.Expr:
        """What one forward pass reads: batch x seq_len tokens, or batch images."""
        flow = input_flow(self.spec)
        return self.spec.input_dim("batch", 1) * (flow.length if flow.length is not None else 1)

    def reuse(self, cost: Cost) -> sympy.Expr | None:
        """How often each active weight is used per input (token or image): forward FLOPs /
        (FLOPs per multiply-add x active params x inputs). 1 for a dense layer, 0 for a table
        read, H x W for a convolution over H x W outputs; attention adds its n² work on top.
        None for parts with no parameters."""
        if cost.active_params == 0:
            return None
        return sympy.cancel(cost.forward / (self.convention.flops_per_mac * self.inputs * cost.active_params))

    @property
    def raw_total(self) -> Cost:
        return total(n.cost for n in self.raw)

    @property
    def compound_counts(self) -> tuple[sympy.Expr, ...]:
        """The top-level repeat counts that are not one dim (`n_layers - n_dense`): shown as factors."""
        return tuple(dict.fromkeys(b.count for b in self.blocks if isinstance(b.count, sympy.Add)))

    @property
    def free_symbols(self) -> list[str]:
        syms: set[sympy.Symbol] = set()
        for e in self.total.metrics().values():
            syms |= e.free_symbols
        return sorted(str(s) for s in syms)


def tunable_kinds() -> list[str]:
    from .components import REGISTRY

    return [kind for kind in REGISTRY if REGISTRY[kind].tunable]


def input_flow(spec: Spec) -> Flow:
    """The stream a spec starts from: images of image_size x image_size when that dim is
    declared (and no image encoder reads the images: CLIP's main stream is its text), else
    sequences of seq_len tokens (when declared). Raw inputs carry no gradient."""
    image_encoder = any(isinstance(item, Encoder) and item.image for item in spec.layers)
    if "image_size" in spec.dimset and not image_encoder:
        size = spec.input_dim("image_size", None)
        return Flow(spatial=(size, size))
    return Flow(length=spec.input_dim("seq_len", None) if "seq_len" in spec.dimset else None)


CONTEXT = "context"  # the dim a decode step is derived in: tokens already in the cache


def derive(
    spec: Spec, convention: str | Convention = "pytorch", keep: Iterable[str] = (), decode: bool = False
) -> Derivation:
    """The symbolic cost of `spec`: per component, and in total, under `convention`.

    With `decode`, the cost of one decode step instead: one new token per sequence,
    attending to `context` cached tokens (a symbol; declare a `context` dim to give it a
    default), with whatever prefill computed once (an encoder, cross-attention keys)
    cached. The cache then holds context + 1 tokens.
    """
    conv = conventions.get(convention) if isinstance(convention, str) else convention
    if spec.quantization is not None and spec.finetune is not None:
        raise spec.doc.error(("quantization",), "a fine-tune trains in the weights' dtype, or over its own quantized "
                             "base (method qlora, `quant`): drop the quantization block to fine-tune")
    walker = _Walker(spec, conv, spec.input_dim("batch", 1), decode)
    flow = Flow(length=sympy.Integer(1)) if decode else input_flow(spec)
    raw, _ = walker.walk(spec.layers, ("layers",), "layers", flow)
    raw = walker.tie(raw)
    walker.check_targets()
    if spec.quantization is not None and not any(n.cost.packed != 0 for n in raw):
        raise spec.doc.error(("quantization", "which"), f"{spec.quantization.which}: no linear of this spec is "
                             "stored so" + (" (it has no moe layer)" if spec.quantization.which == "experts" else ""))
    mtp, mtp_sites = mtp_cost(spec, conv) if spec.mtp is not None and not decode else (None, ())
    return Derivation(spec, conv, tuple(keep), tuple(raw), tuple(walker.sites), decode, tuple(walker.blocks),
                      tuple(walker.linears), mtp, mtp_sites)


def mtp_subject(derivation: Derivation, values) -> tuple[str, bool] | None:
    """A note's start naming the spec's MTP modules and their parameters at the dims `values` (checked by the
    caller), its parenthesis open, and whether they are several; None without them."""
    if derivation.mtp is None:
        return None
    subst = derivation.spec.dimset.overridden(dict(values or {})).values()
    n = derivation.spec.mtp.depth
    return (f"multi-token prediction: the spec's {n} MTP module{'s' if n > 1 else ''} "
            f"({int(derivation.mtp.params.xreplace(subst)):,} parameters", n > 1)


def mtp_notes(derivation: Derivation, values, use: str) -> list[str]:
    """What a memory or serve figure at the dims `values` leaves out of a spec's MTP modules, said once (none
    without them)."""
    if (named := mtp_subject(derivation, values)) is None:
        return []
    subject, several = named
    return [f"{subject}; derive reports them apart) {'are' if several else 'is'} not in these figures: {use}"]


def mtp_cost(spec: Spec, conv: Convention) -> tuple[Cost, tuple[Site, ...]]:
    """The multi-token prediction modules' cost, apart from the main model's: `depth` times a module's layers
    (their parameters and FLOPs) and the shared head's FLOPs (not its parameters), the module's stream starting
    from the shared embedding's (looked up again: no FLOPs); and the sites walked, for their checks."""
    from .components.embedding import Embedding

    embedding, head = (component_of(spec.layers[i])[1] if not is_container(spec.layers[i]) else None for i in (0, -1))
    if not isinstance(embedding, Embedding) or not getattr(head, "holds_logits", False):
        raise spec.doc.error(("mtp",), "multi-token prediction shares the model's embedding and head: the spec must "
                             "start with an embedding and end with an lm_head")
    walker = _Walker(spec, conv, spec.input_dim("batch", 1), False)
    _, flow = walker.walk(spec.layers[:1], ("layers",), "layers", input_flow(spec))
    module, flow = walker.walk(spec.mtp.layers, ("mtp", "layers"), "mtp.layers", flow)
    last = len(spec.layers) - 1
    shared, _ = walker.walk(spec.layers[-1:], ("layers",), f"layers.{last}", flow)
    head_cost = total(n.cost for n in shared)
    compute = Cost(forward=head_cost.forward, backward=head_cost.backward, saved=head_cost.saved)
    return (total(n.cost for n in module) + compute) * spec.mtp.depth, tuple(walker.sites)


class _Walker:
    def __init__(self, spec: Spec, conv: Convention, batch, decode: bool) -> None:
        self.spec, self.conv, self.batch, self.decode = spec, conv, batch, decode
        self.context = symbols.dim(CONTEXT) if decode else sympy.Integer(0)
        self.sites: list[Site] = []
        self.blocks: list[Block] = []
        self.pending = False  # see Block.then
        self.linears: list = []  # (name, d_in, d_out, quantized values) of each linear a fine-tune sees, as met
        self.checked = 0  # of those, how many have had their rank check
        self.ties: dict[str, tuple[tuple, list]] = {}  # tied name -> (where, layers) of its first block
        self.tied_paths: dict[str, str] = {}  # the node path of each tied block -> its name
        self.first_pass: dict[str, Node] = {}  # the nodes of each name's first block, one pass of them

    def walk(self, layers, where: tuple, path: str, flow: Flow) -> tuple[list[Node], Flow]:
        """One pass over `layers`, starting from `flow`."""
        nodes: list[Node] = []
        for i, item in enumerate(layers):
            inner = where + (i, "layers")
            if isinstance(item, (Repeat, Encoder)):
                field_name = "repeat" if isinstance(item, Repeat) else "encoder"
                count = getattr(item, field_name)
                self.sites.append(Site(where + (i,), Count(field_name, count), Ctx(self.conv, self.batch, flow)))
            if isinstance(item, Repeat):
                block, flow = (self.top_block if where == ("layers",) else self.repeat)(
                    item, inner, f"{path}/{i}/repeat", flow)
                nodes += block
                continue
            if isinstance(item, Encoder):
                if where != ("layers",) or flow.memory is not None:
                    raise self.spec.doc.error(where + (i, "encoder"), "one encoder per spec, at the top level")
                # The source stream starts afresh from its own input (no gradient); it may
                # share the token table, and leaves its output as memory.
                block, out = self.encoder(item, inner, f"{path}/{i}/encoder", item.source(flow.embedding))
                if out.length is None:
                    raise self.spec.doc.error(where + (i, "encoder"), "an encoder's output is read as tokens: end "
                                              "an image encoder with patch_embedding, flatten or pool_tokens")
                if out.width is None:
                    raise self.spec.doc.error(where + (i, "encoder"), "an encoder's output is read as features: "
                                              "start it with a layer that reads its input (an embedding, conv or linear)")
                nodes += block
                flow = replace(flow, memory=Memory.of(out), embedding=out.embedding)
                continue
            if isinstance(item, Residual):
                block, flow = self.residual(item, where + (i,), f"{path}/{i}", flow)
                nodes += block
                continue
            if isinstance(item, Tied):
                block, flow = self.tied(item, where + (i,), f"{path}/{i}/tied", flow)
                nodes += block
                continue
            kind, component = component_of(item)
            here = where + (i, kind)
            store = None if component.holds_logits else self.spec.quantization  # the LM head keeps its dtype
            ctx = Ctx(self.conv, self.batch, flow, self.context, self.decode, self.tuning(kind, component, here), store)
            try:
                if self.decode and not component.decodes:
                    raise FieldError(None, f"a {kind} layer has no decode step (one token at a time against a cache)")
                parts = component.parts(ctx)
                saved = self.saved(component, ctx)
                flow = component.after(flow)
                if ctx.tune is not None and not ctx.flow.grad and total(parts.values()).trainable == 0:
                    flow = replace(flow, grad=False)  # nothing before or in it trains: no gradient flows yet
            except FieldError as e:
                raise self.spec.doc.error(here + ((e.field,) if e.field else ()), e.message) from None
            self.sites.append(Site(here, component, ctx))
            self.rank_checks(ctx, here)
            if self.pending:
                self.blocks[-1] = replace(self.blocks[-1], then=(f"{path}/{i}/{kind}", self.unkept(component, ctx)))
                self.pending = False
            nodes.append(Node(f"{path}/{i}/{kind}", kind, total(parts.values()) + saved, parts))
        return nodes, flow

    def tuning(self, kind: str, component, where: tuple):
        """The component's share of the spec's fine-tune, refused where no rule models it."""
        finetune = self.spec.finetune
        tuning = None if finetune is None else finetune.tuning(kind, self.linears)
        if tuning is not None and not component.tunable:
            raise self.spec.doc.error(where, f"a {kind} layer has no fine-tuning rule (frozen weights, adapters); "
                                      f"fine-tuning covers {', '.join(tunable_kinds())}")
        return tuning

    def rank_checks(self, ctx: Ctx, here: tuple) -> None:
        """A site checking each adapted linear the component just named against the rank."""
        if ctx.tune is None:
            return
        for name, d_in, _, _ in self.linears[self.checked:]:
            if ctx.tune.adapts(name):
                self.sites.append(Site(("finetune",), RankFits(self.spec.finetune.rank, name, d_in), ctx))
        self.checked = len(self.linears)

    def check_targets(self) -> None:
        """Every target a fine-tune names must be a linear some layer has."""
        finetune = self.spec.finetune
        if finetune is None or not finetune.adapted or isinstance(finetune.targets, str):
            return
        names = sorted({linear[0] for linear in self.linears})
        if missing := [t for t in finetune.targets if t not in names]:
            raise self.spec.doc.error(("finetune", "targets"), f"no linear an adapter can reach is named "
                                      f"{', '.join(missing)}; those here: {', '.join(names) or 'none'}")

    @staticmethod
    def saved(component, ctx: Ctx) -> Cost:
        """Its activation-memory rule; unknown (NaN), not an error, where the rule needs what the
        spec leaves out (a token count without seq_len): FLOPs and parameters do not need it."""
        try:
            kept = component.saved(ctx)
        except FieldError:
            return Cost(saved=sympy.nan)
        if component.recompute_part is None:
            return kept
        try:  # what a checkpoint of the whole layer would keep instead (a recompute list naming its part)
            return kept + Cost(checkpoint=ctx.input_saved(component.in_width()))
        except FieldError:
            return kept + Cost(checkpoint=sympy.nan)

    def unkept(self, component, ctx: Ctx) -> sympy.Expr:
        """What it would add to what it keeps if no earlier layer kept its input stream."""
        alone = replace(ctx, flow=replace(ctx.flow, kept=False))
        return self.saved(component, alone).saved - self.saved(component, replace(alone, flow=replace(alone.flow, kept=True))).saved

    def top_block(self, item: Repeat, where: tuple, path: str, flow: Flow) -> tuple[list[Node], Flow]:
        """A top-level repeat, and the Block full recomputation checkpoints pass by pass."""
        held = self.input_bytes(flow)
        holds_memory = flow.memory is not None and reads_memory(item)
        if holds_memory and not any(b.holds_memory for b in self.blocks):
            # the checkpoint holds the encoder's output too, for its cross-attention layers
            held += flow.memory.bytes(self.batch, flow.memory.width)
        holds_embedding = reads_embedding(item)
        if holds_embedding and not any(b.holds_embedding for b in self.blocks) and flow.embedding is not None:
            held += self.batch * flow.length * flow.embedding[1] * symbols.ACT  # the copy, once
        nodes, out, (first, later) = self.passes(item, where, path, flow)
        self.blocks.append(Block(path, item.repeat, held, self.input_bytes(replace(out, kept=False)), holds_memory,
                                 holds_embedding, first, later))
        self.pending = out.kept
        return nodes, out

    def input_bytes(self, flow: Flow) -> sympy.Expr:
        try:
            return Ctx(self.conv, self.batch, flow).input_saved()
        except FieldError:  # an image of unknown channels
            return sympy.nan

    def residual(self, item: Residual, where: tuple, path: str, flow: Flow) -> tuple[list[Node], Flow]:
        """body(x) + shortcut(x), the shortcut the identity unless given; the add is a node of its own."""
        if item.streams is not None:
            return self.hyper(item, where, path, flow)
        first = len(self.sites)
        body, out = self.walk(item.residual, where + ("residual",), f"{path}/residual", flow)
        # both branches read the block's input: if the body's first layer saved it, that is one storage
        head = self.sites[first]
        if not head.ctx.flow.kept and self.unkept(head.component, head.ctx) != 0:
            flow = replace(flow, kept=True)
        short, skip = (
            self.walk(item.shortcut, where + ("shortcut",), f"{path}/shortcut", flow) if item.shortcut else ([], flow)
        )
        ctx = Ctx(self.conv, self.batch, out)
        self.sites.append(Site(where + ("residual",), Join(out, skip), ctx))
        try:
            add = ctx.elementwise(ctx.elements(out.width), "residual")
        except FieldError as e:
            raise self.spec.doc.error(where + ("residual",), e.message) from None
        return body + short + [Node(f"{path}/add", "add", add, {"add": add})], fresh(out, grad=out.grad or skip.grad)

    def hyper(self, item: Residual, where: tuple, path: str, flow: Flow) -> tuple[list[Node], Flow]:
        """A hyper-connected residual (components/hyper.py): the site's own cost as one node, then its body's."""
        if item.shortcut is not None:
            raise self.spec.doc.error(where + ("shortcut",), "a hyper-connected residual (streams) mixes its streams "
                                      "itself: it takes no shortcut")
        if self.spec.finetune is not None:
            raise self.spec.doc.error(where + ("streams",), "a hyper-connected residual has no fine-tuning rule (its "
                                      "mixing weights' share of a fine-tune is not modelled)")
        if flow.width is None or flow.length is None:
            raise self.spec.doc.error(where + ("streams",), "hyper-connections widen a token stream: put "
                                      "hyper_expand after the embedding")
        width = flow.width / item.streams
        ctx = Ctx(self.conv, self.batch, flow, self.context, self.decode)
        parts = hyper.site(ctx, item.streams, width, item.sinkhorn_iters)
        saved = Cost() if self.decode else hyper.site_saved(ctx, item.streams, width, item.sinkhorn_iters)
        body, out = self.walk(item.residual, where + ("residual",), f"{path}/residual", fresh(flow, width=width))
        self.sites.append(Site(where + ("residual",), Join(out, replace(flow, width=width)), ctx))
        node = Node(f"{path}/hyper", "hyper_connection", total(parts.values()) + saved, parts)
        return [node] + body, fresh(out, width=flow.width, grad=True)

    def tied(self, item: Tied, where: tuple, path: str, flow: Flow) -> tuple[list[Node], Flow]:
        """A block whose weights every block of its name shares: walked as any, its parameters settled by `tie`."""
        if where[0] == "mtp" or any(path.startswith(p + "/") for p in self.tied_paths if p != path):
            raise self.spec.doc.error(where + ("tied",), "tied blocks stand in the model's layers, not inside "
                                      "another tied block or the MTP modules")
        if self.spec.finetune is not None:
            raise self.spec.doc.error(where + ("tied",), "a fine-tune of tied blocks is not modelled (an adapter on a "
                                      "tied linear serves every use)")
        first_where, layers = self.ties.setdefault(item.tied, (where, item.layers))
        if layers != item.layers:
            raise self.spec.doc.error(where + ("layers",), f"these layers differ from those of the first `tied: "
                                      f"{item.tied}` block (at {'.'.join(map(str, first_where))}), whose weights "
                                      "they would share")
        self.tied_paths[path] = item.tied
        nodes, out = self.walk(item.layers, where + ("layers",), path, flow)
        if first_where == where:
            self.first_pass |= {n.path: n for n in nodes}
        return nodes, out

    def tie(self, nodes: list[Node]) -> list[Node]:
        """Each tied block's nodes with their parameters settled: the first block of a name holds one pass's
        (whatever repeats enclose it), the others none; a part named `adapter` stays each use's own."""
        out = []
        for node in nodes:
            block = next((p for p in self.tied_paths if node.path.startswith(p + "/")), None)
            if block is None:
                out.append(node)
                continue
            one = self.first_pass.get(node.path)
            parts = {k: c if k == PER_USE else _with_params(c, one.parts[k] if one else Cost())
                     for k, c in node.parts.items()}
            out.append(replace(node, cost=_with_params(node.cost, total(parts.values())), parts=parts))
        return out

    def encoder(self, item: Encoder, where: tuple, path: str, source: Flow) -> tuple[list[Node], Flow]:
        """The encoder's layers over the source. A decode step reuses its output: no cost."""
        decode, self.decode, context, self.context = self.decode, False, self.context, sympy.Integer(0)
        try:
            block, out = self.walk(item.layers, where, path, source)
        finally:
            self.decode, self.context = decode, context
        return ([] if decode else block), out

    def repeat(self, item: Repeat, where: tuple, path: str, flow: Flow) -> tuple[list[Node], Flow]:
        nodes, out, _ = self.passes(item, where, path, flow)
        return nodes, out

    def passes(self, item: Repeat, where: tuple, path: str, flow: Flow) -> tuple[list[Node], Flow, tuple[Cost, Cost]]:
        """The repeat's nodes (all passes), the flow after it, and the cost of its first pass and of each later one."""
        count = item.repeat
        sites = len(self.sites)
        first, after_first = self.walk(item.layers, where, path, flow)
        for inner in {s.count for s in self.sites[sites:]}:  # nested counts multiply: keep the product short
            terms = expr.expanded_terms((inner * count).xreplace(self.spec.dimset.substitution()))
            if terms > expr.MAX_TERMS:
                raise self.spec.doc.error(where[:-1] + ("repeat",), (
                    f"with the repeat counts nested inside it, this count multiplies out to {terms:,} terms (more "
                    f"than {expr.MAX_TERMS}); sizes are short polynomials"))
        if after_first == flow:
            self.sites[sites:] = [s.times(count) for s in self.sites[sites:]]
            one = total(n.cost for n in first)
            return [_weights_once(replace(n.map(lambda e: e * count), count=n.count * count), n, item.shared)
                    for n in first], flow, (one, one)
        one_pass = len(self.sites)
        later, after_later = self.walk(item.layers, where, path, after_first)
        self.sites[sites:one_pass] = _runs(self.sites[sites:one_pass], self.sites[one_pass:], count)
        del self.sites[one_pass:]  # one site per component, with the contexts its later passes see
        # A gradient or a rotary table arrives once; a shape that keeps changing (a class token
        # added, a strided conv) would make every pass cost something else.
        if after_later != after_first:
            raise self.spec.doc.error(
                where[:-1] + ("repeat",),
                "this block changes the stream's shape (tokens, features or image size) on every pass, so "
                "its passes would cost different amounts; write those layers out, or repeat a block that keeps the shape",
            )
        combined = [
            _weights_once(Node(f.path, f.kind, f.cost + l.cost * (count - 1),
                               {k: f.parts[k] + l.parts[k] * (count - 1) for k in f.parts}, f.count * count), f,
                          item.shared)
            for f, l in zip(first, later)
        ]
        return combined, after_first, (total(n.cost for n in first), total(n.cost for n in later))


def _runs(first: list[Site], later: list[Site], count: sympy.Expr) -> list[Site]:
    """The first pass's sites, each with its runs in the first pass and in the count - 1 later ones."""
    again = {s.where: s for s in later if isinstance(s.component, Component)}
    out = []
    for s in first:
        if s.where not in again:
            out.append(s.times(count))
            continue
        runs: list[tuple[Ctx, sympy.Expr]] = []  # a fine-tune's lists make a context unhashable
        for ctx, n in (*s.runs, *((c, k * (count - 1)) for c, k in again[s.where].runs)):
            same = [i for i, (c, _) in enumerate(runs) if c == ctx]
            if same:
                runs[same[0]] = (ctx, runs[same[0]][1] + n)
            else:
                runs.append((ctx, n))
        # later passes repeat the first's structure, so the runs add up to count passes of its count
        out.append(replace(s, count=s.count * count, later=tuple(runs) if len(runs) > 1 else ()))
    return out


PER_USE = "adapter"  # the part of a tied block's layer that each use holds its own of (Zamba2's adapters)


def _with_params(cost: Cost, held: Cost) -> Cost:
    """`cost` with the parameters (and their fine-tune and storage splits) of `held`; its work as it was."""
    return replace(cost, params=held.params, active_params=held.active_params, frozen=held.frozen,
                   packed=held.packed, packed_bytes=held.packed_bytes, active_packed=held.active_packed,
                   active_packed_bytes=held.active_packed_bytes)


def _weights_once(node: Node, one_pass: Node, shared: bool) -> Node:
    """A repeated node; with shared weights, its parameters are one pass's (the work stays N passes')."""
    if not shared:
        return node
    return replace(node, cost=_with_params(node.cost, one_pass.cost),
                   parts={k: _with_params(c, one_pass.parts[k]) for k, c in node.parts.items()})
