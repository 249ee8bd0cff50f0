"""Fuzzing: random specs, valid and near-valid, through load, derive and evaluate. Each either
succeeds or raises symcost's own SpecError — never another exception."""

import typing

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symcost
from symcost.components import REGISTRY
from symcost.components.base import COUNT, RATIO, SIZE, _domain
from symcost.errors import SpecError

NAMES = ["d", "h", "n", "seq_len", "batch", "image_size", "x"]
FIELDS = sorted({f for cls in REGISTRY.values() for f in cls.model_fields} | {"bogus"})

sizes = st.one_of(
    st.integers(-2, 64),
    st.sampled_from(NAMES),
    st.builds(lambda a, op, b: f"{a} {op} {b}", st.sampled_from(NAMES + ["2", "3"]), st.sampled_from("+-*/")
              | st.just("//") | st.just("**"), st.sampled_from(NAMES + ["2", "0"])),
    st.sampled_from(["min(d, 4)", "ceil(d / 3)", "floor(h / 2)", "d.real", "__import__('os')", "1.5", "", "((("]),
)
values = st.one_of(sizes, st.booleans(), st.none(), st.lists(st.integers(0, 3), max_size=2),
                   st.sampled_from(["relu", "silu", "max", "first", "gelu_tanh"]))


def good(info):
    """A value the field accepts (the shapes may still disagree: derive then says so)."""
    domain = _domain(info)
    if domain is SIZE:
        return st.sampled_from(["d", "d", "2 * h", 4, "d // 2", "max(h, 2)", "seq_len"])
    if domain is COUNT:
        return st.sampled_from([0, 1, "h"])
    if domain is RATIO:
        return st.sampled_from(["5/4", 1, "1/2"])
    args = typing.get_args(info.annotation)
    if typing.get_origin(info.annotation) is typing.Literal:
        return st.sampled_from(args)
    if info.annotation is int:
        return st.integers(1, 10_000)
    return st.booleans()


def valid_component(kind):
    fields = REGISTRY[kind].model_fields
    required = {n: good(i) for n, i in fields.items() if i.is_required()}
    optional = {n: good(i) for n, i in fields.items() if not i.is_required()}
    return st.fixed_dictionaries(required, optional=optional).map(lambda f: {kind: f})


noisy_component = st.builds(lambda kind, fields: {kind: fields}, st.sampled_from(sorted(REGISTRY) + ["nope"]),
                            st.dictionaries(st.sampled_from(FIELDS), values, max_size=6))
valid = st.sampled_from(sorted(REGISTRY)).flatmap(valid_component)
component = st.one_of(valid, valid, valid, valid, noisy_component)
layers = st.recursive(
    st.lists(component, min_size=1, max_size=4),
    lambda inner: st.lists(st.one_of(component, st.builds(lambda n, ls: {"repeat": n, "layers": ls}, sizes, inner),
                                     st.builds(lambda ls: {"residual": ls}, inner),
                                     st.builds(lambda ls: {"encoder": "seq_len", "layers": ls}, inner)),
                           min_size=1, max_size=4),
    max_leaves=10,
)
dims = st.builds(lambda extra, image: {"d": 8, "h": 4, "seq_len": 4, **({"image_size": 9} if image else {}), **extra},
                 st.dictionaries(st.sampled_from(["n", "x", "batch"]), sizes, max_size=3), st.booleans())
specs = st.fixed_dictionaries({"name": st.sampled_from(["f"] * 8 + ["", 3]), "dims": dims, "layers": layers})


def corrupt(text: str, cut: int, junk: str) -> str:
    return text[: cut % (len(text) + 1)] + junk


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(specs, st.booleans(), st.integers(0, 10_000), st.sampled_from(["", ":", "- [", "\t", "&a *a", "{{", "'"]))
def test_random_specs_end_in_spec_errors(spec, broken, cut, junk):
    text = yaml.safe_dump(spec, sort_keys=False)
    if broken:
        text = corrupt(text, cut, junk)
    try:
        loaded = symcost.loads(text)
        for convention in ("pytorch", "full"):
            symcost.evaluate(symcost.derive(loaded, convention))
        symcost.evaluate(symcost.derive(loaded, decode=True), {"context": 3})
    except SpecError:
        pass


# Found by the fuzzer, kept as examples: each once escaped as a Python error.
@pytest.mark.parametrize(
    "layers, where, fragment",
    [
        ("  - residual:\n      - rotary: {dim: d}\n", "layers.0.residual", "width is unknown"),
        ("  - batchnorm: {dim: d}\n  - pool: {kernel: 2}\n", "layers.1.pool", "needs an image stream"),
        ("  - pool_tokens: {mode: mean}\n", "layers.0.pool_tokens", "width is unknown"),
        ("  - pool_grid: {kernel: 2}\n", "layers.0.pool_grid", "width is unknown"),
        ("  - pool_tokens: {mode: first}\n  - pool_tokens: {mode: mean}\n", "layers.1.pool_tokens", "width is unknown"),
        ("  - encoder: seq_len\n    layers:\n      - pool_tokens: {}\n  - embedding: {vocab: 3, dim: d}\n"
         "  - cross_attention: {dim: d, heads: 2}\n", "layers.0.encoder", "read as features"),
        ("  - repeat: 2\n    layers:\n      - class_token: {dim: d}\n", "layers.0.repeat", "on every pass"),
        ("  - linear: {dim: d, out: 100000000000000000000000}\n", "layers.0.linear.out", "too large"),
    ],
)
def test_found_by_fuzzing(cli, write, layers, where, fragment):
    result = cli("eval", write(f"name: f\ndims: {{d: 8, seq_len: 4}}\nlayers:\n{layers}"))
    assert result.exit_code == 2, result.stdout
    assert f": {where}: " in result.stderr and fragment in result.stderr, result.stderr
