"""Every public function is a command first: each returns a Result whose to_dict() is what the
command prints with --format json for the same inputs (load and loads return the Spec itself, the
input every other function takes)."""

import json

import pytest

import symcost
from conftest import arch
from published import DATA
from symcost.results import Result

LLAMA, TINY = arch("llama"), {"n_layers": 2, "seq_len": 64}
SETS = ["--set", "n_layers=2", "--set", "seq_len=64"]

CASES = {
    "derive": (lambda: symcost.derive(LLAMA), ["derive", LLAMA]),
    "evaluate": (lambda: symcost.evaluate(LLAMA, TINY), ["eval", LLAMA, *SETS, "--no-cache"]),
    "memory": (lambda: symcost.memory(LLAMA, TINY), ["memory", LLAMA, *SETS]),
    "sweep": (lambda: symcost.sweep(LLAMA, {"seq_len": [64, 128]}, {"n_layers": 2}, metrics=("params", "forward")),
              ["sweep", LLAMA, "--vary", "seq_len=64,128", "--set", "n_layers=2", "--metric", "params", "--metric",
               "forward"]),
    "solve": (lambda: symcost.solve(LLAMA, "params", "7e9", "d_model", n_layers=32),
              ["solve", LLAMA, "--target", "params=7e9", "--for", "d_model", "--set", "n_layers=32"]),
    "crossover": (lambda: symcost.crossover(arch("transformer"), "attention:scores", "mlp", "seq_len"),
                  ["crossover", arch("transformer"), "--between", "attention:scores", "mlp", "--in", "seq_len"]),
    "compare": (lambda: symcost.compare(LLAMA, arch("mixtral")), ["compare", LLAMA, arch("mixtral")]),
    "approx": (lambda: symcost.approx(LLAMA, TINY), ["approx", LLAMA, *SETS]),
    "budget": (lambda: symcost.budget(LLAMA, TINY, tokens="2e12"), ["budget", LLAMA, *SETS, "--tokens", "2e12"]),
    "inference": (lambda: symcost.inference(LLAMA, TINY, new_tokens=16), ["inference", LLAMA, *SETS, "--new", "16"]),
    "plan": (lambda: symcost.plan(LLAMA, TINY, gpus=8, tp=2, zero=1, tokens=10**9),
             ["plan", LLAMA, *SETS, "--gpus", "8", "--tp", "2", "--zero", "1", "--tokens", "1e9"]),
    "verify": (lambda: symcost.verify(LLAMA, {"n_layers": 1, "seq_len": 16}),
               ["verify", LLAMA, "--set", "n_layers=1", "--set", "seq_len=16"]),
    "verify_memory": (lambda: symcost.verify_memory(arch("transformer"), {"n_layers": 1, "seq_len": 16, "d_model": 64,
                                                                           "n_heads": 4, "vocab": 100}),
                      ["verify", arch("transformer"), "--memory", "--set", "n_layers=1", "--set", "seq_len=16",
                       "--set", "d_model=64", "--set", "n_heads=4", "--set", "vocab=100"]),
}


def test_every_public_function_is_in_the_table():
    assert set(symcost._API) - {"load", "loads", "verify_hf"} == set(CASES)  # verify_hf: below


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_public_function_returns_the_result_its_command_prints(cli, name):
    call, args = CASES[name]
    if name.startswith("verify"):
        pytest.importorskip("torch")
    result = call()
    assert isinstance(result, Result)
    out = cli(*args, "--format", "json")
    assert out.exit_code == 0, out.stderr
    assert result.to_dict() == json.loads(out.stdout)
    assert result.text() and result.summary()[0] and result._repr_html_()
    assert repr(result).startswith(f"<{type(result).__name__}: ")  # the summary, not a dataclass's fields


def test_verify_hf_returns_the_result_verify_hf_prints(cli, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from symcost.hf import import_config

    config = json.loads((DATA / "Llama-3.2-1B-Instruct.json").read_text()) | {"num_hidden_layers": 1, "vocab_size": 128}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "spec.yaml").write_text(import_config(config, "config.json"))
    result = symcost.verify_hf(str(tmp_path / "spec.yaml"), config, {"seq_len": 8})
    out = cli("verify", tmp_path / "spec.yaml", "--hf", tmp_path / "config.json", "--set", "seq_len=8",
              "--format", "json")
    assert isinstance(result, Result) and result.to_dict() == json.loads(out.stdout)
