"""Bad input: one message with file:line:column and the field path, exit status 2, no traceback."""

import pytest

import symcost
from conftest import arch
from symcost.errors import SpecError

BASE = """\
name: tiny
dims:
  d_model: 64
  n_heads: 4
  n_layers: 2
  seq_len: 16
  vocab: 100
  d_ff: 4 * d_model
layers:
  - embedding: {vocab: vocab, dim: d_model}
  - repeat: n_layers
    layers:
      - layernorm: {dim: d_model}
      - attention: {dim: d_model, heads: n_heads, causal: true}
      - mlp: {dim: d_model, hidden: d_ff}
  - lm_head: {dim: d_model, vocab: vocab, tied: true}
"""


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


# (spec text, line:column, field path, message fragment)
CASES = [
    pytest.param(edit("dims:", "dims: [oops"), "3:10", "", "malformed YAML", id="malformed-yaml"),
    pytest.param(edit("causal: true}", "causal: true, heds: 2}"), "14:", "layers.1.layers.1.attention.heds",
                 "unknown field 'heds'", id="unknown-field"),
    pytest.param(edit("causal: true", "causal: 'yes'"), "14:", "layers.1.layers.1.attention.causal",
                 "expected true or false, got 'yes'", id="wrong-type"),
    pytest.param(edit("- mlp:", "- mpl:"), "15:", "layers.1.layers.2", "unknown layer type 'mpl'; did you mean 'mlp'?",
                 id="unknown-layer-type"),
    pytest.param(edit("hidden: d_ff", "hidden: d_fff"), "15:", "layers.1.layers.2.mlp.hidden",
                 "unknown name 'd_fff'", id="undefined-dim"),
    pytest.param(edit("d_ff: 4 * d_model", "d_ff: 4 * d_big\n  d_big: d_ff + 1"), "8:", "dims.d_ff",
                 "cyclic definition: d_ff -> d_big -> d_ff", id="cyclic-dim"),
    pytest.param(edit("n_layers: 2", "n_layers: 0"), "5:", "dims.n_layers", "must be a positive integer",
                 id="non-positive-dim"),
    pytest.param(edit("hidden: d_ff", "hidden: -3"), "15:", "layers.1.layers.2.mlp.hidden",
                 "must be a positive integer", id="non-positive-size"),
    pytest.param(edit("hidden: d_ff", "hidden: d_model - 64"), "15:", "layers.1.layers.2.mlp.hidden",
                 "must be a positive integer", id="size-non-positive-at-values"),
    pytest.param(edit("n_heads: 4", "n_heads: 5"), "14:", "layers.1.layers.1.attention.heads",
                 "5 heads do not divide dim 64", id="heads-not-dividing"),
    pytest.param(edit("d_ff: 4 * d_model", "d_ff: d_model / 3"), "8:", "dims.d_ff",
                 "a dim must be a positive integer", id="derived-dim-not-integer"),
    pytest.param(edit("heads: n_heads", "heads: \"__import__('os').system('touch pwned')\""), "14:",
                 "layers.1.layers.1.attention.heads", "not allowed", id="code-injection"),
    pytest.param(edit("d_model: 64", "d_model: 64\n  d_model: 65"), "4:", "dims.d_model", "duplicate key",
                 id="duplicate-key"),
    pytest.param(edit("- lm_head: {dim: d_model", "- linear: {dim: d_model, out: 7}\n  - lm_head: {dim: d_model"),
                 "17:", "layers.3.lm_head.dim", "expects 64 features per token, but the layer before gives 7",
                 id="width-mismatch"),
    pytest.param(edit("  - embedding: {vocab: vocab, dim: d_model}\n", ""), "15:", "layers.1.lm_head.tied",
                 "needs a token `embedding`", id="tied-without-embedding"),
    pytest.param(edit("seq_len: 16", "seq_len: 16\n  max_pos: 8").replace(
        "  - repeat:", "  - position_embedding: {max_len: max_pos, dim: d_model}\n  - repeat:"),
        "12:", "layers.1.position_embedding.max_len", "seq_len 16 exceeds max_len 8", id="seq-len-over-table"),
    pytest.param(edit("name: tiny", "name: tiny\nlayer: []"), "2:", "layer", "unknown field 'layer'",
                 id="unknown-top-level-field"),
    pytest.param(edit("  seq_len: 16\n", ""), "12:9", "layers.1.layers.0.layernorm", "declare `seq_len`",
                 id="missing-seq-len"),
    pytest.param(edit("vocab: 100", "vocab: 100.5"), "7:", "dims.vocab", "not an integer", id="float-size"),
    pytest.param(edit("repeat: n_layers", "repeat: n_layers\n    count: 3"), "12:", "layers.1.count",
                 "unknown field 'count'", id="repeat-unknown-field"),
    pytest.param("", "1:1", "", "empty file", id="empty-file"),
    pytest.param("just a string\n", "1:1", "", "expected a mapping", id="not-a-mapping"),
    pytest.param(edit("name: tiny", "name: !!python/object:os.system tiny"), "1:", "name", "tag",
                 id="python-tag"),
]


@pytest.mark.parametrize("text, where, path, fragment", CASES)
def test_bad_spec(cli, write, tmp_path, text, where, path, fragment):
    file = write(text)
    result = cli("eval", file)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"error: {file}:{where}"), message
    if path:
        assert f": {path}: " in message, message
    assert fragment in message, message
    assert not (tmp_path / "pwned").exists()


@pytest.mark.needs("torch")  # verify is among the commands
def test_every_command_reports_the_same_way(cli, write):
    file = write(edit("n_heads: 4", "n_heads: 5"))
    for command in ("derive", "eval", "verify"):
        result = cli(command, file)
        assert result.exit_code == 2
        assert "5 heads do not divide dim 64" in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--set", "d_model"], "expected NAME=NUMBER"),
        (["--set", "d_model=1.5"], "expected a positive integer (a size)"),
        (["--set", "d_model=abc"], "error: --set d_model 'abc': expected a number"),  # the flag named once
        (["--set", "d_model=1e999999999"], "below 10^18"),  # refused before a billion digits are built
        (["--set", "d_model=1e18"], "below 10^18"),  # the bound a spec's own integers have
        (["--set", "d_model=1e30"], "below 10^18"),
        (["--set", "nope=3"], "--set nope: no such dim"),
        (["--set", "d_model=0"], "expected a positive integer"),
        (["--set", "d_model=-64"], "expected a positive integer"),
    ],
)
def test_bad_set(cli, write, args, fragment):
    result = cli("eval", write(BASE), *args)
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_set_accepts_readable_integers(cli, write):
    result = cli("eval", write(BASE), "--set", "vocab=1_000", "--set", "seq_len=3e1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert '"vocab": 1000' in result.stdout and '"seq_len": 30' in result.stdout


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_bad_files(cli, tmp_path, kind):
    path = tmp_path / "x.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"name: a\n\xff\xfe\x00\x01")
    result = cli("derive", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}")
    assert {"missing": "no such file", "directory": "is a directory", "binary": "not UTF-8"}[kind] in result.stderr


@pytest.mark.parametrize("call, api, flag", [
    (lambda: symcost.evaluate(arch("llama"), d_modle=3), "d_modle: no such dim", ["eval", arch("llama"), "--set", "d_modle=3"]),
    (lambda: symcost.compare(arch("llama"), arch("mixtral"), nope=1), "nope: neither spec declares it",
     ["compare", arch("llama"), arch("mixtral"), "--set", "nope=1"]),
])
def test_the_api_names_parameters_and_the_command_line_names_flags(cli, call, api, flag):
    """One error, two audiences: the API's says the parameter, the command line's the flag."""
    with pytest.raises(SpecError) as info:
        call()
    assert str(info.value).startswith(api) and "--" not in str(info.value)
    result = cli(*flag)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: --set {api}"), result.stderr


def test_a_marked_setting_becomes_its_flag():
    from symcost.cli._options import flagged

    e = SpecError("has no value; give one with `seq_len=N`; use `device=meta`; give `gpus=`", path=("dims", "seq_len"))
    assert flagged(e) == "dims.seq_len: has no value; give one with --set seq_len=N; use --device meta; give --gpus"
    assert flagged(SpecError("vary p: a rate", param="vary")) == "--vary p: a rate"
    assert flagged(SpecError("p=2: a rate", param="dims")) == "--set p=2: a rate"
