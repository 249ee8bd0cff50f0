"""The Spec: a named set of dims and a list of typed layers, with `repeat` blocks.

A layer is a one-key mapping, the key naming its type (`attention: {dim: d_model, …}`),
or a `repeat: N` block with nested `layers:`. Each layer is validated by the pydantic
model of its type, chosen by that key, so one bad field gives one error at its path.
The models are built on first use: a spec pays only for the layer types it holds.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import sympy
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, ValidationError, create_model

from . import source, symbols
from .components import REGISTRY, Component, Flow, Size
from .dims import Dims
from .errors import SpecError
from .finetune import Finetune
from .quantization import Quantization
from .source import Document

MAX_NESTING = 16
MAX_LAYERS = 1_000  # written out, containers included: a derivation's time grows with them, never with repeat counts
_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True, defer_build=True)
Layers = list[Any]  # each item validated by `_layers`, against the model its key names


class Repeat(BaseModel):
    """`repeat: N` copies of `layers`, run one after another; costs multiply by N symbolically.
    `shared: true`: one set of weights used by every pass (ALBERT, Universal Transformers):
    parameters once, FLOPs and activations N times."""

    model_config = _CONFIG
    repeat: Size
    layers: Layers = Field(min_length=1)
    shared: StrictBool = False


class Encoder(BaseModel):
    """`encoder: S` runs `layers` over a second input of S tokens (the source sequence) or,
    with `image: true`, of S x S images; its output is the memory that later
    `cross_attention` and `contrastive` layers read. The main stream passes by unchanged."""

    model_config = _CONFIG
    encoder: Size
    image: StrictBool = False
    layers: Layers = Field(min_length=1)

    def source(self, embedding=None) -> Flow:
        """The stream the encoder starts from: raw tokens, features or pixels (no gradient)."""
        if self.image:
            return Flow(spatial=(self.encoder, self.encoder), embedding=embedding)
        return Flow(length=self.encoder, embedding=embedding)


class Residual(BaseModel):
    """`residual: [layers]` adds their output to the block's input, or to `shortcut:
    [layers]` applied to that input (a projection shortcut, as in ResNet). With `streams: N`,
    a manifold-constrained hyper-connection instead (DeepSeek-V4): the stream holds N copies of the
    width the layers read (after `hyper_expand`), collapsed into their input and mixed with their
    output by weights made from the streams, with `sinkhorn_iters` normalisations (components/hyper.py)."""

    model_config = _CONFIG
    residual: Layers = Field(min_length=1)
    shortcut: Layers | None = Field(None, min_length=1)
    streams: Size | None = None
    sinkhorn_iters: Size = 20


class Tied(BaseModel):
    """`tied: NAME` holds `layers` whose weights are the same as every other `tied: NAME` block's, wherever it
    stands (Zamba2's shared transformer blocks, used every sixth layer in turn): parameters once, FLOPs and
    activations at every use. Every block of a name holds the same layers; a part named `adapter` (Zamba2's
    low-rank adapters) stays each use's own."""

    model_config = _CONFIG
    tied: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)
    layers: Layers = Field(min_length=1)


CONTAINERS: dict[str, type[BaseModel]] = {"repeat": Repeat, "encoder": Encoder, "residual": Residual, "tied": Tied}
LAYER_LISTS = ("layers", "residual", "shortcut")  # the fields of containers that hold layers


def is_container(item: BaseModel) -> bool:
    return isinstance(item, tuple(CONTAINERS.values()))


def sublists(item: BaseModel) -> list[tuple[str, list]]:
    """(field, layers) for each list of layers a container holds."""
    return [(f, getattr(item, f)) for f in LAYER_LISTS if f in type(item).model_fields and getattr(item, f)]


@functools.cache
def layer_model(kind: str) -> type[BaseModel]:
    """The one-key model `{kind: fields}` of a layer type."""
    cls = REGISTRY[kind]
    return create_model(f"{cls.__name__}Layer", __config__=_CONFIG, **{kind: (cls, ...)})


LAYER_TYPES = ", ".join(sorted(REGISTRY)) + ", " + ", ".join(CONTAINERS)


def _tag(value: Any) -> str | None:
    """The layer type an item of a layer list claims to be, or None."""
    if not isinstance(value, dict):
        return None
    kinds = [k for k in value if k in CONTAINERS] or [k for k in value if k in REGISTRY]
    if not kinds and "layers" in value:
        return "repeat"  # `layers:` without a count: report the missing `repeat:` there
    return kinds[0] if kinds else None


class MTP(BaseModel):
    """Multi-token prediction (DeepSeek-V3 report, Sec. 2.2): `depth` modules, each `layers` run from the main
    model's last hidden state (DeepSeek-V3's: two norms and a 2d x d projection of the hidden state beside the next
    token's embedding, then a block), then the model's own head. The embedding and the head are shared; the
    modules' parameters and FLOPs are reported apart from the main model's, which serving drops them from."""

    model_config = _CONFIG
    depth: int = Field(strict=True, ge=1, le=16)
    layers: Layers = Field(min_length=1)


class Spec(BaseModel):
    model_config = _CONFIG
    name: str = Field(min_length=1)
    description: str | None = None
    source: str | None = None  # where the sizes come from (paper, config)
    dims: dict[str, Any] = {}
    layers: Layers = Field(min_length=1)
    finetune: Finetune | None = None  # how training after pretraining treats the weights (finetune.py)
    quantization: Quantization | None = None  # how a served checkpoint stores its linears (quantization.py)
    mtp: MTP | None = None  # multi-token prediction modules, reported apart

    _dims: Dims = PrivateAttr()
    _doc: Document = PrivateAttr()

    @property
    def dimset(self) -> Dims:
        return self._dims

    @property
    def doc(self) -> Document:
        return self._doc

    def input_dim(self, name: str, default: int | None) -> sympy.Expr:
        """A reserved input dim (`batch`, default 1; `seq_len`; `image_size`) as a symbol."""
        if name in self._dims:
            return symbols.dim(name)
        if default is None:
            raise self._doc.error(("dims",), f"declare `{name}`")
        return sympy.Integer(default)

    def walk(self, containers: bool = False) -> Iterator[tuple[tuple, Any]]:
        """Every component with its YAML path, in order; repeat blocks visited once. With
        `containers`, each container too (path to it, the container), before its layers."""

        def visit(layers, prefix):
            for i, item in enumerate(layers):
                if is_container(item):
                    if containers:
                        yield prefix + (i,), item
                    for field, inner in sublists(item):
                        yield from visit(inner, prefix + (i, field))
                else:
                    kind = next(iter(type(item).model_fields))
                    yield prefix + (i, kind), getattr(item, kind)

        yield from visit(self.layers, ("layers",))
        if self.mtp is not None:
            yield from visit(self.mtp.layers, ("mtp", "layers"))


def component_of(item: BaseModel) -> tuple[str, Component]:
    kind = next(iter(type(item).model_fields))
    return kind, getattr(item, kind)


def reads_memory(item: BaseModel) -> bool:
    """Whether a layer, or any layer in a container, reads the encoder's output."""
    if is_container(item):
        return any(reads_memory(inner) for _, layers in sublists(item) for inner in layers)
    return component_of(item)[1].reads_memory


def reads_embedding(item: BaseModel) -> bool:
    """Whether a layer, or any layer in a container, reads the token embedding's output (concat_embedding)."""
    if is_container(item):
        return any(reads_embedding(inner) for _, layers in sublists(item) for inner in layers)
    return component_of(item)[0] == "concat_embedding"


def load(path: str | Path) -> Spec:
    """Read and validate a spec file. Every problem is a SpecError with file:line:column."""
    return from_document(source.read(path))


def loads(text: str, name: str = "<spec>") -> Spec:
    return from_document(source.parse(text.encode(), name))


def from_document(doc: Document) -> Spec:
    if not isinstance(doc.data, dict):
        raise doc.error((), "expected a mapping with `name:`, `dims:` and `layers:`")
    dims = Dims.parse(doc.data.get("dims"), doc)
    _check_nesting(doc)
    spec = _validated(Spec, doc.data, (), {"dims": dims}, doc)
    if spec.mtp is not None:
        spec = spec.model_copy(update={"mtp": _validated(MTP, doc.data["mtp"], ("mtp",), {"dims": dims}, doc)})
    spec._dims = dims
    spec._doc = doc
    for where, component in spec.walk():
        for name in type(component).model_fields:
            value = getattr(component, name)
            if isinstance(value, sympy.Expr):
                dims.check_terms(value, where + (name,), str(value))
    return spec


def _validated(model: type[BaseModel], data: Any, path: tuple, context: dict, doc: Document) -> BaseModel:
    """`data` as `model`, its lists of layers validated item by item; the first error raised at its path."""
    try:
        node = model.model_validate(data, context=context)
    except ValidationError as e:
        raise _first_error(e, model, path, doc) from None
    lists = {field: _layers(getattr(node, field), path + (field,), context, doc)
             for field in LAYER_LISTS if field in model.model_fields and getattr(node, field) is not None}
    return node.model_copy(update=lists) if lists else node


def _layers(items: list, path: tuple, context: dict, doc: Document) -> list[BaseModel]:
    out = []
    for i, item in enumerate(items):
        kind = _tag(item)
        if kind is None:
            raise doc.error(path + (i,), _unknown_layer(item))
        model = CONTAINERS[kind] if kind in CONTAINERS else layer_model(kind)
        out.append(_validated(model, item, path + (i,), context, doc))
    return out


def _unknown_layer(item: Any) -> str:
    if isinstance(item, dict) and len(item) == 1:
        written = str(next(iter(item)))
        close = difflib.get_close_matches(written, [*REGISTRY, *CONTAINERS], n=1)
        return f"unknown layer type {written!r}" + (
            f"; did you mean {close[0]!r}?" if close else f"; expected one of: {LAYER_TYPES}")
    return f"expected one key naming the layer type: {LAYER_TYPES}"


def _check_nesting(doc: Document) -> None:
    """Refuse blocks nested too deeply, and more layers than MAX_LAYERS once YAML aliases are
    expanded (a few hundred bytes of aliases can write tens of thousands of layers)."""
    written = 0

    def depth(layers, path, level):
        nonlocal written
        if level > MAX_NESTING:
            raise doc.error(path, f"repeat and encoder blocks nested deeper than {MAX_NESTING}")
        if isinstance(layers, list):
            for i, item in enumerate(layers):
                written += 1
                if written > MAX_LAYERS:
                    raise doc.error(path + (i,), f"more than {MAX_LAYERS:,} layers written out (after expanding YAML "
                                                 "aliases); a repeat block multiplies layers without writing them")
                if isinstance(item, dict):
                    for field in LAYER_LISTS:
                        if isinstance(item.get(field), list):
                            depth(item[field], path + (i, field), level + 1)

    depth(doc.data.get("layers"), ("layers",), 0)
    if isinstance(doc.data.get("mtp"), dict):
        depth(doc.data["mtp"].get("layers"), ("mtp", "layers"), 0)


def with_finetune(spec: Spec, finetune: dict) -> Spec:
    """`spec` trained as `finetune` says (the fields of a `finetune:` block), in place of any block it
    has. The result no longer keys the eval cache: the bytes read do not describe it."""
    return _with_block(spec, "finetune", Finetune, finetune)


def with_quantization(spec: Spec, quantization: dict) -> Spec:
    """`spec` stored as `quantization` says (the fields of a `quantization:` block), in place of any it has."""
    return _with_block(spec, "quantization", Quantization, quantization)


def _with_block(spec: Spec, field: str, model: type[BaseModel], fields: dict) -> Spec:
    if not isinstance(fields, dict):
        raise SpecError(f"{field}: expected the fields of a {field} block, got {type(fields).__name__}",
                        param=field)
    doc = replace(spec.doc, digest="", given=(*spec.doc.given, field))
    block = _validated(model, fields, (field,), {"dims": spec.dimset}, doc)
    changed = spec.model_copy(update={field: block})
    changed._dims, changed._doc = spec.dimset, doc
    return changed


def _first_error(e: ValidationError, model: type[BaseModel], prefix: tuple, doc: Document) -> SpecError:
    """pydantic's first error validating `model` at `prefix`, at its YAML path, with line and column."""
    errors = e.errors(include_url=False)
    # A typo gives "unknown field" and "missing" together; the unknown field is the news.
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    path = prefix + loc
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = f"unknown field {loc[-1]!r}"
        allowed = _allowed_fields(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif allowed:
            message += f"; expected one of: {', '.join(allowed)}"
    elif (err["type"] == "literal_error" and loc[-1] == "activation" and isinstance(err.get("input"), str)
          and err["input"] in ALIASES):
        message += f"; {err['input']} is written {ALIASES[err['input']]}"
    elif err["type"] == "missing":
        message = "required field missing"
    elif err["type"] == "bool_type":
        message = f"expected true or false, got {err.get('input')!r}"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return doc.error(path, message)


# Names people write for gated activations, and how a spec says them.
ALIASES = {
    "swiglu": "`activation: silu` with `gated: true` (SwiGLU)",
    "geglu": "`activation: gelu` with `gated: true` (GeGLU)",
    "reglu": "`activation: relu` with `gated: true` (ReGLU)",
    "swish": "`activation: silu`",
    "gelu_pytorch_tanh": "`activation: gelu_tanh`",
}


def _allowed_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid where an unknown field was found, `loc` inside `model`."""
    if len(loc) == 1:
        return list(model.model_fields)
    if len(loc) == 2 and loc[0] in REGISTRY and loc[0] in model.model_fields:
        return list(REGISTRY[loc[0]].model_fields)
    return []
