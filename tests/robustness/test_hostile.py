"""Hostile specs: each ends in one clear error (file:line:column, field path), exit status 2,
in bounded time and memory, with nothing executed or written. The limits are documented
in the README ("Errors")."""

import os
import resource
import signal
import subprocess
import sys
import typing

import pytest
from pydantic import StrictBool

from symcost.components import REGISTRY
from symcost.components.base import RATE, RATIO, _domain

SECONDS = 20  # a guard against hangs, far above what any case takes


@pytest.fixture(autouse=True)
def bounded_time():
    def stop(*_):
        raise TimeoutError(f"took more than {SECONDS} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def run_bad(cli, path, *args, where=None, fragment=""):
    before = set(os.listdir(os.path.dirname(path)))
    result = cli("eval", path, *args)
    assert result.exit_code == 2, result.stdout
    message = result.stderr.strip()
    assert message.startswith(f"error: {path}") and "\n" not in message and "Traceback" not in message, message
    if where:
        assert f": {where}: " in message, message
    assert fragment in message, message
    assert set(os.listdir(os.path.dirname(path))) == before  # nothing written
    return message


BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def nested_repeats(depth):
    text, indent = "name: n\ndims: {seq_len: 2}\nlayers:\n", "  "
    for _ in range(depth):
        text += f"{indent}- repeat: 2\n{indent}  layers:\n"
        indent += "    "
    return text + f"{indent}- linear: {{dim: 2, out: 2}}\n"


SPEC = "name: h\ndims: {{d: 8, seq_len: 4{dims}}}\nlayers:\n  - linear: {{dim: {field}, out: 8}}\n"

CASES = [
    ("billion-laughs", BILLION_LAUGHS, None, "YAML nodes"),
    ("nested-repeats", nested_repeats(17), None, "nested deeper than 16"),
    ("nested-lists", "name: n\nlayers: " + "[" * 200 + "]" * 200 + "\n", None, "nested"),
    ("huge-int-dim", SPEC.format(dims=", e: 100000000000000000000000", field="e"), "dims.e", "too large"),
    ("huge-int-field", SPEC.format(dims="", field="10**40"), "layers.0.linear.dim", "exponent"),
    ("tower-exponent", SPEC.format(dims="", field="'10**10**10'"), "layers.0.linear.dim", "exponent"),
    ("expansion-bomb", SPEC.format(dims=", e: '(d + seq_len + 1)**16'", field="e"), "dims.e", "expands to more"),
    ("product-bomb", SPEC.format(dims=", f: 3, e: 'd + seq_len + f + 1'", field="'e * e * e'"), "layers.0.linear.dim",
     "expands to more"),
    ("attribute", SPEC.format(dims="", field="'d.__class__'"), "layers.0.linear.dim", "attribute access"),
    ("call", SPEC.format(dims="", field="\"__import__('os').system('touch pwned')\""), "layers.0.linear.dim", "calls"),
    ("lambda", SPEC.format(dims="", field="'(lambda: 1)()'"), "layers.0.linear.dim", "calls"),
    ("dunder", SPEC.format(dims="", field="__builtins__"), "layers.0.linear.dim", "unknown name"),
    ("f-string", SPEC.format(dims="", field="\"f'{d}'\""), "layers.0.linear.dim", "f-strings"),
    ("subscript", SPEC.format(dims="", field="'d[0]'"), "layers.0.linear.dim", "subscripts"),
    ("walrus", SPEC.format(dims="", field="'(x := 3)'"), "layers.0.linear.dim", "assignment"),
    ("dim-call", SPEC.format(dims=", e: 'open(\"x\", \"w\")'", field="e"), "dims.e", "calls"),
    ("python-tag", "name: !!python/object/apply:os.system ['touch pwned']\n", "name", "tag"),
    ("merge-key", "base: &b {vocab: 3}\nname: m\nlayers:\n  - embedding: {<<: *b, dim: 2}\n", None, "merge keys"),
    ("duplicate-key", "name: a\nname: b\n", "name", "duplicate key"),
    ("empty", "", None, "empty file"),
    ("only-comments", "# nothing\n", None, "empty file"),
    ("not-a-mapping", "[1, 2]\n", None, "expected a mapping"),
    ("layers-not-a-list", "name: a\nlayers: 3\n", "layers", "valid list"),
    ("repeat-without-count", "name: a\ndims: {seq_len: 2}\nlayers:\n  - layers: []\n", "layers.0.repeat", "required"),
]


@pytest.mark.parametrize("text, where, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_text(cli, write, tmp_path, text, where, fragment):
    run_bad(cli, write(text), where=where, fragment=fragment)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("raw, fragment", [
    (b"\xff\xfe\x00\x00binary", "not UTF-8"),
    (b"name: a\x00\n", "NUL byte"),
    (b"name: " + b"x" * 1_100_000, "specs are limited"),
])
def test_hostile_bytes(cli, tmp_path, raw, fragment):
    path = tmp_path / "x.yaml"
    path.write_bytes(raw)
    run_bad(cli, str(path), fragment=fragment)


def test_missing_and_directory(cli, tmp_path):
    for path, fragment in ((tmp_path / "missing.yaml", "no such file"), (tmp_path, "is a directory")):
        result = cli("derive", path)
        assert result.exit_code == 2 and fragment in result.stderr


@pytest.mark.needs("torch")
def test_verify_refuses_what_torch_cannot_hold(cli, tmp_path):
    text = "name: big\ndims: {n: 100000000000000, seq_len: 2}\nlayers:\n  - repeat: n\n    layers:\n      - linear: {dim: 2, out: 2}\n"
    path = tmp_path / "big.yaml"
    path.write_text(text)
    assert cli("eval", path).exit_code == 0  # the formulas do not unroll
    result = cli("verify", path)
    assert result.exit_code == 2 and "100,000,000,000,001 layer modules is more than 20,000" in result.stderr


@pytest.mark.parametrize("name", ["billion-laughs", "expansion-bomb", "tower-exponent"])
def test_bounded_memory(tmp_path, name):
    """In a process capped at 1 GiB of address space, the worst cases still end cleanly."""
    text = next(c[1] for c in CASES if c[0] == name)
    path = tmp_path / "x.yaml"
    path.write_text(text)

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    done = subprocess.run([sys.executable, "-m", "symcost", "eval", str(path)], capture_output=True, text=True,
                          timeout=60, preexec_fn=cap)
    assert done.returncode == 2 and done.stderr.startswith("error:"), done.stderr


# -- every layer type, every field, wrong in type and in range ----------------------------------

def _wrong_values(annotation, info):
    """(value, fragment) pairs: one of the wrong type, one out of range where a range exists."""
    domain = _domain(info)
    if domain is not None and domain.least is not None:  # sizes, counts, Mamba-2's contracted sizes (>= 2)
        return [([1], "expected a size"), (domain.least - 1, f"must be {domain.wanted}")]
    if domain is RATIO:
        return [([1], "expected a size"), (0, "must be positive")]
    if domain is RATE:
        return [([1], "a rate is a number in [0, 1)"), (1, "a rate is a number in [0, 1)")]
    args = typing.get_args(annotation)
    if annotation is bool or bool in args or StrictBool in args:
        return [("maybe", "expected true or false, got 'maybe'"), (3, "expected true or false, got 3")]
    if typing.get_origin(annotation) is typing.Literal:
        return [(["relu"], "Input should be"), ("nope", "Input should be")]
    if annotation is int:
        return [("ten", "valid integer"), (0, "greater than 0")]
    raise AssertionError(f"no wrong values for {annotation}")


FIELD_CASES = [
    pytest.param(kind, field, value, fragment, id=f"{kind}.{field}={value!r}")
    for kind, cls in sorted(REGISTRY.items())
    for field, info in cls.model_fields.items()
    for value, fragment in _wrong_values(info.annotation, info)
]


@pytest.mark.parametrize("kind, field, value, fragment", FIELD_CASES)
def test_every_field_wrong(cli, write, kind, field, value, fragment):
    import yaml

    fields = {name: 4 for name, info in REGISTRY[kind].model_fields.items() if info.is_required()}
    fields[field] = value
    text = yaml.safe_dump({"name": "f", "dims": {"seq_len": 4}, "layers": [{kind: fields}]}, sort_keys=False)
    run_bad(cli, write(text), where=f"layers.0.{kind}.{field}", fragment=fragment)
