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
                      "crossover, compare, approx, budget, memory, inference, plan, flops-per-token, scaling, page, "
                      "import-hf (symcost --help)"),
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
