"""Every public function is a command first: each returns a Result whose to_dict() is what the
command prints with --format json for the same inputs (load and loads return the Spec itself, the
input every other function takes). The three commands that print no JSON — page, import-hf and
flops-per-token write a file or a program — are compared by what they write."""

import json

import pytest

import symcost
from conftest import ROOT, arch
from published import DATA
from symcost.results import Result

LLAMA, TINY = arch("llama"), {"n_layers": 2, "seq_len": 64}
SETS = ["--set", "n_layers=2", "--set", "seq_len=64"]
RUNS = str(ROOT / "examples" / "runs_synthetic.csv")

TIMED = str(ROOT / "examples" / "efficiency" / "trtllm-h100-runs.yaml")
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
    "fit_efficiency": (lambda: symcost.fit_efficiency(TIMED), ["fit-efficiency", TIMED]),
    "serve": (lambda: symcost.serve(symcost.quantize(LLAMA, format="fp8"), TINY, tp=2, prompt=64),
              ["serve", LLAMA, *SETS, "--tp", "2", "--prompt-tokens", "64", "--weights-format", "fp8"]),
    "plan": (lambda: symcost.plan(LLAMA, TINY, gpus=8, tp=2, zero=1, tokens=10**9),
             ["plan", LLAMA, *SETS, "--gpus", "8", "--tp", "2", "--zero", "1", "--tokens", "1e9"]),
    "verify": (lambda: symcost.verify(LLAMA, {"n_layers": 1, "seq_len": 16}),
               ["verify", LLAMA, "--set", "n_layers=1", "--set", "seq_len=16"]),
    "verify_memory": (lambda: symcost.verify_memory(arch("transformer"), {"n_layers": 1, "seq_len": 16, "d_model": 64,
                                                                           "n_heads": 4, "vocab": 100}),
                      ["verify", arch("transformer"), "--memory", "--set", "n_layers=1", "--set", "seq_len=16",
                       "--set", "d_model=64", "--set", "n_heads=4", "--set", "vocab=100"]),
    "plan_search": (lambda: symcost.plan_search(LLAMA, TINY, gpus=2, top=2),
                    ["plan", LLAMA, *SETS, "--gpus", "2", "--search", "--top", "2"]),
    "scaling_fit": (lambda: symcost.scaling_fit(RUNS, bootstrap=0), ["scaling", "fit", RUNS, "--bootstrap", "0"]),
    "scaling_optimal": (lambda: symcost.scaling_optimal(LLAMA, {"seq_len": 64}, flops="1e21", unknown="n_layers",
                                                        serve="1e12"),
                        ["scaling", "optimal", LLAMA, "--set", "seq_len=64", "--flops", "1e21", "--for", "n_layers",
                         "--serve", "1e12"]),
    "scaling_compare": (lambda: symcost.scaling_compare([LLAMA, arch("mixtral")], flops=1e23, law="besiroglu2024"),
                        ["scaling", "compare", LLAMA, arch("mixtral"), "--flops", "1e23", "--law", "besiroglu2024"]),
}
WRITERS = {  # the function's text is the file the command writes
    "page": (lambda: symcost.page(LLAMA, TINY), ["page", LLAMA, *SETS]),
    "import_hf": (lambda: symcost.import_hf(str(DATA / "Mixtral-8x7B-v0.1.json")),
                  ["import-hf", DATA / "Mixtral-8x7B-v0.1.json"]),
    "flops_per_token": (lambda: symcost.flops_per_token(LLAMA, recompute="full"),
                        ["flops-per-token", LLAMA, "--recompute", "full"]),
}


def test_every_public_function_is_in_the_table():
    # verify_hf: below; load, loads, finetune and quantize give a Spec, which every other function takes
    assert set(symcost._API) - {"load", "loads", "finetune", "quantize", "verify_hf"} == set(CASES) | set(WRITERS)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] * (n in ("plan_search", "scaling_fit", "approx")))
                                  for n in sorted(CASES)])  # the three slowest in the full suite
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


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_public_function_returns_what_its_command_writes(cli, tmp_path, name):
    call, args = WRITERS[name]
    result = call()
    out = cli(*args, "-o", tmp_path / "out")
    assert out.exit_code == 0, out.stderr
    assert isinstance(result, Result) and result.text() and result.summary()[0] and result._repr_html_()
    written = (tmp_path / "out").read_text()
    assert written == getattr(result, "html", result.text())
    expected = {"page": lambda: {"name": "llama-2-7b", "bytes": len(written.encode())},
                "import_hf": lambda: {"name": "Mixtral-8x7B-v0.1", "yaml": written, "notes": [],
                                      "ignored": out.stderr.splitlines()[0].split(": ", 1)[1].split(", ")},
                "flops_per_token": lambda: {"name": "llama-2-7b", "recompute": "full", "source": written}}
    assert result.to_dict() == expected[name]()


def test_the_results_without_json_are_usable_in_python(tmp_path):
    """What a notebook does with them: call the FLOPs-per-token function, validate the imported
    spec, save the page."""
    per_token = symcost.flops_per_token(LLAMA)
    at = symcost.evaluate(LLAMA, seq_len=2048)
    assert per_token.function(seq_len=2048) == at.total["train"] / 2048  # batch 1: 2048 tokens a step
    imported = symcost.import_hf({**json.loads((DATA / "Mixtral-8x7B-v0.1.json").read_text())})
    assert symcost.evaluate(imported.spec()).total["params"] == 46_702_792_704  # Mixtral-8x7B, published
    symcost.page(LLAMA).write(tmp_path / "p.html")
    assert (tmp_path / "p.html").stat().st_size > 10_000


def test_render_is_the_one_entry_the_commands_print_through():
    from symcost.render import render

    e = symcost.evaluate(LLAMA, TINY)
    assert json.loads(render(e, "json")) == e.to_dict() and render(e, "text") == e.text()
    assert render(e, "markdown").startswith("## llama-2-7b")
    b = symcost.budget(LLAMA, TINY, tokens="2e12")  # no renderer of its own: the protocol
    assert json.loads(render(b, "json")) == b.to_dict() and render(b) == b.text()
    with pytest.raises(ValueError, match="text or json"):
        render(b, "latex")


def test_the_api_bounds_what_it_is_given():
    """What the commands bound, the functions bound too, each in one SpecError naming the argument."""
    with pytest.raises(symcost.SpecError, match=r"^convention: expected a name \(pytorch, macs, kernel, full\), got dict; "
                       r"derive takes no dims"):
        symcost.derive(LLAMA, {"d_model": 1536})  # before: TypeError, unhashable dict
    assert symcost.evaluate(LLAMA, {"d_model": 1536}).dims["d_model"] == 1536  # values as a positional mapping
    with pytest.raises(symcost.SpecError, match=r"^<spec>: more than 1,000,000 bytes; specs are limited to that$"):
        symcost.loads("name: x\n" + "a" * 50_000_000)  # before: 10 s parsing, then an error
    with pytest.raises(symcost.SpecError, match=r"^the grid has 10,000,000 points or more; the limit is 100,000$"):
        symcost.sweep(LLAMA, {"seq_len": range(1, 10**7 + 1)})
    with pytest.raises(symcost.SpecError, match=r"^vary seq_len: 100,000 sizes; compare evaluates each exactly, up to 500"):
        symcost.compare(LLAMA, arch("mixtral"), varied=("seq_len", list(range(1, 100_001))))
    with pytest.raises(symcost.SpecError, match=r"is not a size; sweep varies sizes \(positive integers below 10\^18\)"):
        symcost.sweep(LLAMA, {"d_model": [2**63]})
