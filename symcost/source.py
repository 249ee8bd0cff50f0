"""Reading a spec file: YAML to plain data, remembering the line and column of every field.

YAML is composed into nodes with PyYAML's safe loader (no tags that build objects) and
converted here, so that duplicate keys, alias bombs and absurd nesting are refused with
a location instead of being silently accepted or expanded without bound.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError, dotted
from .limits import MAX_FILE_BYTES

# Limits for hostile files (documented in the README, "Limits").
MAX_NODES = 100_000  # after expanding aliases: a "billion laughs" file stops here
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


@dataclass
class Document:
    """A spec file's data and where each field of it was written."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    digest: str = ""  # sha256 of the bytes read: what the cache keys derived forms by
    given: tuple[str, ...] = ()  # top-level fields given as parameters (finetune=…), not written in the file

    def locate(self, path: Path_) -> tuple[int, int]:
        """The line and column of `path`, or of its nearest written ancestor."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, (1, 1))

    def error(self, path: Path_, message: str) -> SpecError:
        if path and path[0] in self.given:  # no line of the file says it: the parameter that did
            inside = dotted(path[1:])
            return SpecError(f"{path[0]} {inside}: {message}" if inside else f"{path[0]}: {message}", param=path[0])
        line, column = self.locate(path)
        return SpecError(message, file=self.file, line=line, column=column, path=path)


def read(path: str | Path) -> Document:
    """Read and parse a spec file; every failure is a SpecError naming the file."""
    return parse(read_bytes(path, "a YAML spec file", "specs"), str(path))


def read_bytes(path: str | Path, expected: str = "a file", kind: str = "inputs") -> bytes:
    """A file's bytes, at most MAX_FILE_BYTES of them; every failure is a SpecError naming the file."""
    name = str(path)
    p = Path(path)
    try:
        if p.is_dir():
            raise SpecError(f"is a directory, expected {expected}", file=name)
        with p.open("rb") as f:  # at most one byte past the limit: /dev/zero and pipes report no size
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise SpecError(f"more than {MAX_FILE_BYTES:,} bytes; {kind} are limited to that", file=name)
    except FileNotFoundError:
        raise SpecError("no such file", file=name) from None
    except OSError as e:
        raise SpecError(f"cannot read: {e.strerror or e}", file=name) from None
    return raw


def parse(raw: bytes, name: str = "<spec>") -> Document:
    if len(raw) > MAX_FILE_BYTES:  # text given to loads() is bounded as a file is
        raise SpecError(f"more than {MAX_FILE_BYTES:,} bytes; specs are limited to that", file=name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError("not UTF-8 text; a spec is a YAML text file", file=name, line=line, column=column) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise SpecError("contains a NUL byte; a spec is a YAML text file", file=name, line=line)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "malformed YAML"
        raise SpecError(
            f"malformed YAML: {problem}",
            file=name,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as e:
        raise SpecError(f"malformed YAML: {e}", file=name) from None
    except RecursionError:
        raise SpecError(f"YAML nested too deeply (limit {MAX_DEPTH} levels)", file=name) from None
    if node is None:
        raise SpecError("empty file; expected a mapping with `dims:` and `layers:`", file=name, line=1, column=1)
    doc = Document(file=name, data=None, digest=hashlib.sha256(raw).hexdigest())
    doc.data = _Converter(doc).convert(node, ())
    return doc


class _Converter:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.nodes = 0
        self.scalars = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, path: Path_, message: str) -> SpecError:
        mark = node.start_mark
        return SpecError(message, file=self.doc.file, line=mark.line + 1, column=mark.column + 1, path=path)

    def convert(self, node: yaml.Node, path: Path_) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, path, f"more than {MAX_NODES:,} YAML nodes (after expanding aliases); refusing")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, path, f"nested deeper than {MAX_DEPTH} levels")
        self.doc.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if node.tag not in _PLAIN_TAGS | _COLLECTION_TAGS:
            raise self.fail(node, path, f"YAML tag {node.tag!r} is not allowed; use plain values")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and node.style is None:
            self.check_number(node, path)
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
            return node.value  # YAML 1.2's core schema: yes, no, on and off are words (a dim named `on`)
        return self.scalars.construct_object(node)

    def check_number(self, node: yaml.ScalarNode, path: Path_) -> None:
        """Refuse what YAML 1.1 reads unlike anyone would: 032000 as octal, 1:30 as base 60."""
        text = node.value.replace("_", "")
        value = self.scalars.construct_object(node)
        if ":" in text:
            raise self.fail(node, path, f"{node.value} is a base-60 number in YAML 1.1 (= {value}); write the "
                                        "number, or quote it")
        digits = text.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
            raise self.fail(node, path, f"{node.value}: a leading zero makes YAML 1.1 read an octal number "
                                        f"(= {value}); write it without the zero")

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key_node, path, "YAML merge keys (<<) are not supported; write the fields out")
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                raise self.fail(key_node, path, "mapping keys must be plain names")
            key = key_node.value  # as written: YAML 1.1 would turn `on:` into True
            here = path + (key,)
            if key in out:
                raise self.fail(key_node, here, f"duplicate key {key!r}")
            self.doc.marks[here] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.convert(value_node, here)
        return out
