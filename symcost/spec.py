"""The Spec: a named set of dims and a list of typed layers, with `repeat` blocks.

A layer is a one-key mapping, the key naming its type (`attention: {dim: d_model, …}`),
or a `repeat: N` block with nested `layers:`. The layer list is a pydantic discriminated
union keyed by that name, so one bad field gives one error at its path.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union

import sympy
from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, ValidationError, create_model

from . import source, symbols
from .components import REGISTRY, Component, Size
from .dims import Dims
from .errors import SpecError
from .source import Document

MAX_NESTING = 16
_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True)


class Repeat(BaseModel):
    """`repeat: N` copies of `layers`, run one after another; costs multiply by N symbolically."""

    model_config = _CONFIG
    repeat: Size
    layers: list[Layer] = Field(min_length=1)


class Encoder(BaseModel):
    """`encoder: S` runs `layers` over a second input of S tokens (the source sequence);
    its output is the memory that later `cross_attention` layers read. The main stream
    passes by unchanged."""

    model_config = _CONFIG
    encoder: Size
    layers: list[Layer] = Field(min_length=1)


class Residual(BaseModel):
    """`residual: [layers]` adds their output to the block's input, or to `shortcut:
    [layers]` applied to that input (a projection shortcut, as in ResNet)."""

    model_config = _CONFIG
    residual: list[Layer] = Field(min_length=1)
    shortcut: list[Layer] | None = Field(None, min_length=1)


CONTAINERS: dict[str, type[BaseModel]] = {"repeat": Repeat, "encoder": Encoder, "residual": Residual}
LAYER_LISTS = ("layers", "residual", "shortcut")  # the fields of containers that hold layers


def is_container(item: BaseModel) -> bool:
    return isinstance(item, tuple(CONTAINERS.values()))


def sublists(item: BaseModel) -> list[tuple[str, list]]:
    """(field, layers) for each list of layers a container holds."""
    return [(f, getattr(item, f)) for f in LAYER_LISTS if f in type(item).model_fields and getattr(item, f)]


def _layer_model(kind: str, cls: type[Component]) -> type[BaseModel]:
    return create_model(f"{cls.__name__}Layer", __config__=_CONFIG, **{kind: (cls, ...)})


_LAYER_MODELS = {kind: _layer_model(kind, cls) for kind, cls in REGISTRY.items()}
LAYER_TYPES = ", ".join(sorted(REGISTRY)) + ", " + ", ".join(CONTAINERS)


def _tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):  # already validated
        return next(iter(type(value).model_fields))
    if not isinstance(value, dict):
        return None
    kinds = [k for k in value if k in CONTAINERS] or [k for k in value if k in REGISTRY]
    if not kinds and "layers" in value:
        return "repeat"  # `layers:` without a count: report the missing `repeat:` there
    return kinds[0] if kinds else None


Layer = Annotated[
    Union[
        *(Annotated[model, Tag(kind)] for kind, model in CONTAINERS.items()),
        *(Annotated[model, Tag(kind)] for kind, model in _LAYER_MODELS.items()),
    ],
    Discriminator(
        _tag,
        custom_error_type="unknown_layer",
        custom_error_message=f"expected one key naming the layer type: {LAYER_TYPES}",
    ),
]
for _container in CONTAINERS.values():
    _container.model_rebuild()


class Spec(BaseModel):
    model_config = _CONFIG
    name: str = Field(min_length=1)
    description: str | None = None
    source: str | None = None  # where the sizes come from (paper, config)
    dims: dict[str, Any] = {}
    layers: list[Layer] = Field(min_length=1)

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

    def walk(self) -> Iterator[tuple[tuple, Component]]:
        """Every component with its YAML path, in order; repeat blocks visited once."""

        def visit(layers, prefix):
            for i, item in enumerate(layers):
                if is_container(item):
                    for field, inner in sublists(item):
                        yield from visit(inner, prefix + (i, field))
                else:
                    kind = next(iter(type(item).model_fields))
                    yield prefix + (i, kind), getattr(item, kind)

        yield from visit(self.layers, ("layers",))


def component_of(item: BaseModel) -> tuple[str, Component]:
    kind = next(iter(type(item).model_fields))
    return kind, getattr(item, kind)


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
    try:
        spec = Spec.model_validate(doc.data, context={"dims": dims})
    except ValidationError as e:
        raise _first_error(e, doc) from None
    spec._dims = dims
    spec._doc = doc
    for where, component in spec.walk():
        for name in type(component).model_fields:
            value = getattr(component, name)
            if isinstance(value, sympy.Expr):
                dims.check_terms(value, where + (name,), str(value))
    return spec


def _check_nesting(doc: Document) -> None:
    def depth(layers, path, level):
        if level > MAX_NESTING:
            raise doc.error(path, f"repeat and encoder blocks nested deeper than {MAX_NESTING}")
        if isinstance(layers, list):
            for i, item in enumerate(layers):
                if isinstance(item, dict):
                    for field in LAYER_LISTS:
                        if isinstance(item.get(field), list):
                            depth(item[field], path + (i, field), level + 1)

    depth(doc.data.get("layers"), ("layers",), 0)


def _first_error(e: ValidationError, doc: Document) -> SpecError:
    """pydantic's first error, at its YAML path (union tags removed), with line and column."""
    errors = e.errors(include_url=False)
    # A typo gives "unknown field" and "missing" together; the unknown field is the news.
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    path: list[str | int] = []
    loc = list(err["loc"])
    for i, part in enumerate(loc):
        # The discriminated union puts the tag right after an index into a list of layers.
        if i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] in LAYER_LISTS and isinstance(part, str):
            if part in CONTAINERS or part in REGISTRY:
                continue
        path.append(part)
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = f"unknown field {path[-1]!r}"
        allowed = _allowed_fields(loc)
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif allowed:
            message += f"; expected one of: {', '.join(allowed)}"
    elif err["type"] == "unknown_layer" and isinstance(err.get("input"), dict) and len(err["input"]) == 1:
        written = str(next(iter(err["input"])))
        close = difflib.get_close_matches(written, [*REGISTRY, *CONTAINERS], n=1)
        message = f"unknown layer type {written!r}" + (
            f"; did you mean {close[0]!r}?" if close else f"; expected one of: {LAYER_TYPES}")
    elif (err["type"] == "literal_error" and path and path[-1] == "activation" and isinstance(err.get("input"), str)
          and err["input"] in ALIASES):
        message += f"; {err['input']} is written {ALIASES[err['input']]}"
    elif err["type"] == "missing":
        message = "required field missing"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return doc.error(tuple(path), message)


# Names people write for gated activations, and how a spec says them.
ALIASES = {
    "swiglu": "`activation: silu` with `gated: true` (SwiGLU)",
    "geglu": "`activation: gelu` with `gated: true` (GeGLU)",
    "reglu": "`activation: relu` with `gated: true` (ReGLU)",
    "swish": "`activation: silu`",
    "gelu_new": "`activation: gelu_tanh`",
    "gelu_pytorch_tanh": "`activation: gelu_tanh`",
}


def _allowed_fields(loc: list) -> list[str]:
    """The field names valid at the place an unknown field was found."""
    if len(loc) >= 2 and isinstance(loc[-2], str) and loc[-2] in REGISTRY and loc[-3] == loc[-2]:
        return list(REGISTRY[loc[-2]].model_fields)
    if len(loc) == 1:
        return list(Spec.model_fields)
    if len(loc) >= 2 and loc[-2] in CONTAINERS:
        return list(CONTAINERS[loc[-2]].model_fields)
    return []
