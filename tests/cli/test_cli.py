"""The CLI: help with examples, every output format, and no torch outside verify."""

import json
import subprocess
import sys

import pytest

from conftest import arch


@pytest.mark.parametrize("command", [[], ["derive"], ["eval"], ["verify"]])
def test_help_has_examples(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "symcost " in result.stdout


def test_derive_text(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = cli("derive", arch("transformer")).stdout
    assert "convention: pytorch" in out
    assert "free dims: batch, d_model, max_pos, n_layers, seq_len, vocab" in out
    assert "12·d_model²·n_layers + d_model·max_pos + 13·d_model·n_layers + d_model·vocab + 2·d_model" in out
    assert "layers/2/repeat/1/attention" in out
    assert "**" not in out and "oo" not in out.replace("pool", "")
    formulas = cli("derive", arch("transformer"), "--formulas").stdout
    assert "forward FLOPs   8·batch·d_model²·n_layers·seq_len + 4·batch·d_model·n_layers·seq_len²" in formulas


def test_derive_markdown_and_latex(cli):
    md = cli("derive", arch("llama"), "--format", "markdown").stdout
    assert md.startswith("## llama-2-7b") and "| component | type | params | active params | forward FLOPs | uses/weight/input |" in md
    latex = cli("derive", arch("llama"), "--format", "latex").stdout
    assert r"\begin{align*}" in latex and r"\mathrm{d\_model}" in latex and r"d_{model}" not in latex


def test_eval_text_is_exact_and_readable(cli):
    out = cli("eval", arch("transformer")).stdout
    assert "124,439,808  (124.44M)" in out
    assert "convention: pytorch" in out


def test_eval_macs_convention(cli):
    pytorch = json.loads(cli("eval", arch("llama"), "--format", "json").stdout)
    macs = json.loads(cli("eval", arch("llama"), "--format", "json", "--convention", "macs").stdout)
    assert macs["convention"] == "macs"
    assert 2 * macs["flops"]["forward"] == pytorch["flops"]["forward"]


@pytest.mark.parametrize("command", ["derive", "eval"])
def test_no_torch_outside_verify(command):
    code = (
        "import sys\n"
        "from symcost.cli import main\n"
        f"try:\n    main([{command!r}, {arch('llama')!r}, '--format', 'json'])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


class _Terminal:
    """stderr as a terminal would be, keeping what is written."""

    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("tty, fmt, shown", [(True, "text", True), (True, "json", False), (False, "text", False)])
def test_a_long_command_says_what_it_does_on_a_terminal_only(monkeypatch, tty, fmt, shown):
    """A line on stderr while a long step runs (then cleared), on a terminal; never when piped or under
    --format json, whose stdout is the document."""
    import sys
    import time

    from symcost.cli._options import working

    terminal = _Terminal(tty)
    monkeypatch.setattr(sys, "stderr", terminal)
    with working("fitting 9 runs", fmt, after=0.05):
        time.sleep(0.3)
    assert ("\rfitting 9 runs… 0 s" in terminal.text) == shown and terminal.text.endswith("\r\033[K") == shown
    assert shown or terminal.text == ""


@pytest.mark.parametrize("args, message", [
    (["plan", "SPEC", "--top", "0"], "error: Invalid value for '--top': 0 is not in the range 1<=x<=1000000000. "
                                     "(symcost plan --help)"),
    (["evl", "SPEC"], "error: No such command 'evl'. Did you mean 'eval'? Commands: derive, eval, verify, sweep, solve, "
                      "crossover, compare, approx, budget, memory, inference, serve, fit-efficiency, plan, "
                      "flops-per-token, scaling, page, import-hf (symcost --help)"),
    (["derive"], "error: Missing argument 'SPEC'. (symcost derive --help)"),
    (["eval", "SPEC", "--format", "yaml"], "error: Invalid value for '--format': 'yaml' is not one of 'text', 'json', "
                                           "'markdown', 'latex'. (symcost eval --help)"),
    (["scaling", "fit", "SPEC", "--grid", "x"], "error: Invalid value for '--grid': 'x' is not one of 'default', "
                                                "'hoffmann'. (symcost scaling fit --help)"),
])
def test_a_usage_error_is_one_line_too(cli, args, message):
    """click's own checks (a range, a choice, a missing argument) end as every other error does: one
    line, exit 2 (before: a usage block of four lines)."""
    out = cli(*(arch("llama") if a == "SPEC" else a for a in args))
    assert out.exit_code == 2 and out.stderr == message + "\n"


@pytest.mark.parametrize("command", [["eval"], ["memory"], *(pytest.param(c, marks=pytest.mark.slow) for c in (
    ["derive"], ["inference"], ["sweep", "--vary", "seq_len=64,128"],
    ["solve", "--target", "peak_training_bytes=24e9", "--for", "seq_len"]))])
def test_finetune_option_equals_the_block_in_the_spec(cli, tmp_path, command):
    """--finetune qlora,rank=16,targets=q_proj+v_proj prints what a spec with that block prints."""
    spec = tmp_path / "llama.yaml"
    spec.write_text(open(arch("llama")).read() + "finetune: {method: qlora, rank: 16, targets: [q_proj, v_proj]}\n")
    written = cli(command[0], str(spec), *command[1:], "--format", "json")
    given = cli(command[0], arch("llama"), *command[1:], "--finetune", "qlora,rank=16,targets=q_proj+v_proj",
                "--format", "json")
    assert written.exit_code == given.exit_code == 0, given.output
    assert json.loads(written.stdout) == json.loads(given.stdout)


def test_a_fine_tune_s_documents_carry_its_trainable_and_frozen_params(cli):
    """eval, memory, plan and solve: params_trainable and params_frozen beside the usual keys, the
    counts peft gives (tests/core/test_finetune.py); a full training's documents have neither."""
    tuned = ("--finetune", "lora,rank=16")
    llama2 = {"params_trainable": 39_976_960, "params_frozen": 6_738_415_616}  # peft on Llama-2-7B, r = 16
    documents = {c: json.loads(cli(c, arch("llama"), *tuned, "--format", "json").stdout) for c in ("memory", "plan")}
    assert {k: documents["memory"][k] for k in llama2} == {k: documents["plan"][k] for k in llama2} == llama2
    assert {k: json.loads(cli("eval", arch("llama"), *tuned, "--format", "json").stdout)[k]
            for k in llama2} == llama2
    solved = json.loads(cli("solve", arch("llama"), *tuned, "--target", "peak_training_bytes=24e9", "--for", "seq_len",
                            "--format", "json").stdout)
    assert {k: solved["roots"][0]["below"][k] for k in llama2} == llama2
    plain = json.loads(cli("plan", arch("llama"), "--format", "json").stdout)
    assert not set(llama2) & set(plain)


@pytest.mark.parametrize("value, message", [
    ("lora", "--finetune: lora needs `rank`"),
    ("lora,rank=0", "--finetune rank: must be a positive integer, got 0"),
    ("lora,rank=8,targets=q_proj+wq", "--finetune targets: no linear an adapter can reach is named wq; those here: "
     "down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj"),
    ("lora,rank=5000", "--finetune rank: rank 5000 exceeds q_proj's input width 4096"),
    ("lora,rank", "--finetune 'rank': expected key=value"),
    ("lora,rank=8,rank=4", "--finetune rank: given twice"),
    ("lora,rank=8,bogus=1", "--finetune bogus: unknown field 'bogus'"),
    ("sgd,rank=8", "--finetune method: Input should be 'full', 'freeze', 'lora', 'dora' or 'qlora'"),
])
def test_a_bad_finetune_option_is_one_line_naming_the_option(cli, value, message):
    for command in ("eval", "memory"):
        result = cli(command, arch("llama"), "--finetune", value)
        assert result.exit_code == 2 and result.output.startswith(f"error: {message}"), result.output
        assert len(result.output.strip().splitlines()) == 1


def test_a_finetune_option_is_never_cached_as_the_spec_s_answer(tmp_path):
    """The cache keys the spec's bytes: a --finetune answer is not stored under them."""
    import os

    env = {**os.environ, "SYMCOST_CACHE_DIR": str(tmp_path)}
    run = lambda *args: subprocess.run([sys.executable, "-m", "symcost", "eval", arch("llama"), *args, "--format",
                                        "json"], capture_output=True, text=True, env=env, check=True).stdout
    tuned = json.loads(run("--finetune", "lora,rank=8"))
    plain = json.loads(run())
    assert "params_trainable" in tuned and "params_trainable" not in plain and json.loads(run()) == plain
