"""The library for notebooks, terminal output that fits, honest errors, start-up and the cache."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import ARCHITECTURES, ROOT, arch
from symcost.cli import COMMANDS

SPECS = sorted(p.stem for p in ARCHITECTURES.glob("*.yaml"))


def run(*args, env=None, cache=None):
    """`python -m symcost ARGS` in a subprocess (the real entry point, real terminal width logic)."""
    environment = {**os.environ, "COLUMNS": "100", **(env or {})}
    if cache is not None:
        environment["SYMCOST_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-m", "symcost", *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=120)


# -- the API -------------------------------------------------------------------------------

def test_evaluate_takes_a_path_and_dims_as_keywords():
    # Before: symcost.evaluate(path) raised AttributeError until you called derive yourself.
    assert symcost.evaluate(arch("llama"), seq_len=2048).to_dict()["params"] == 6738415616
    e = symcost.evaluate(arch("transformer"), batch=2)
    assert e.dims["batch"] == 2 and e.to_dict()["flops"]["forward"] == 2 * 291_648_307_200


def test_every_input_form_gives_the_same_answer():
    text = Path(arch("transformer")).read_text()
    spec = symcost.load(arch("transformer"))
    forms = [arch("transformer"), Path(arch("transformer")), text, spec, symcost.derive(spec)]
    assert {symcost.evaluate(f).total["params"] for f in forms} == {124_439_808}


@pytest.mark.slow
def test_results_print_convert_and_display():
    e = symcost.evaluate(arch("mixtral"))
    assert repr(e).startswith("<Evaluation: mixtral-8x7b") and "active params" in repr(e) and len(repr(e)) < 1000
    assert "<table>" in e._repr_html_() and e._repr_latex_().startswith("$$\\begin{aligned}")
    assert e.to_dict() == json.loads(symcost_eval_json("mixtral"))
    d = symcost.derive(arch("llama"))
    assert d.to_dict()["params"] == json.loads(run("derive", arch("llama"), "--format", "json").stdout)["params"]
    assert "\\mathrm{d\\_model}" in d._repr_latex_()
    assert "active params" not in repr(d)  # dense: params shown once
    m = symcost.memory(arch("llama"), batch=8)
    assert m.to_dict()["bytes"]["weights_bytes"] == 13_476_831_232 and "GiB" in repr(m)
    s = symcost.sweep(arch("llama"), {"seq_len": [1024, 2048]})
    assert [p["seq_len"] for p in s.to_dict()["points"]] == [1024, 2048]
    solution = symcost.solve(arch("llama"), "params", "7e9", "d_model", n_layers=32)
    assert solution.to_dict()["roots"][0]["below"]["value"] == 4160
    assert symcost.compare(arch("llama"), arch("mistral")).to_dict()["b"] == "mistral-7b"
    assert len(symcost.crossover(arch("transformer"), "attention:scores", "mlp", "seq_len").roots) == 1


def test_options_after_the_spec_are_keywords_never_dims():
    """An option given by keyword (metrics, metric, target, unknown) binds the option; before, the
    positional-only signatures let it fall into **dims ('expected a positive integer (not tuple)')."""
    s = symcost.sweep(arch("llama"), vary={"seq_len": [1024]}, metrics=("params",))
    assert list(s.to_dict()["points"][0]) == ["seq_len", "params"]
    assert s.to_dict()["points"][0]["params"] == 6_738_415_616
    by_keyword = symcost.crossover(arch("transformer"), part_a="attention:scores", part_b="mlp", unknown="seq_len",
                                   metric="params")
    assert by_keyword.to_dict() == symcost.crossover(arch("transformer"), "attention:scores", "mlp", "seq_len",
                                                     metric="params").to_dict()
    solution = symcost.solve(arch("llama"), metric="params", target="7e9", unknown="d_model", n_layers=32)
    assert solution.to_dict()["roots"][0]["below"]["value"] == 4160


def symcost_eval_json(name):
    return run("eval", arch(name), "--format", "json", "--no-cache").stdout


def test_to_pandas():
    pd = pytest.importorskip("pandas")
    frame = symcost.evaluate(arch("transformer")).to_pandas()
    assert isinstance(frame, pd.DataFrame) and frame["params"].sum() == 124_439_808
    grid = symcost.sweep(arch("llama"), {"d_model": [4096, 4100]}).to_pandas()
    assert grid["invalid"].isna().tolist() == [True, False]


@pytest.mark.parametrize("call, fragment", [
    (lambda: symcost.evaluate(arch("llama"), d_model=768.5), "d_model=768.5: expected a positive integer"),
    (lambda: symcost.evaluate(arch("llama"), d_model=True), "not bool"),
    (lambda: symcost.evaluate(arch("llama"), {"d_model": 0}), "expected a positive integer"),
    (lambda: symcost.evaluate(42), "spec: expected a path"),
    (lambda: symcost.derive(arch("llama"), "nope"), "convention 'nope'"),
    (lambda: symcost.evaluate("no/such/file.yaml"), "no such file"),
    (lambda: symcost.sweep(arch("llama"), {"seq_len": "1024"}), "expected a list of sizes"),
])
def test_api_errors_name_the_argument(call, fragment):
    # Before: AttributeError or KeyError from inside, or 768.5 quietly used as 768.
    with pytest.raises(symcost.SpecError, match=None) as info:
        call()
    assert fragment in str(info.value)


# -- terminal output -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("command", ["derive", "eval"])
def test_output_fits_100_columns(tmp_path, name, command):
    # Before: 249 columns for GPT-2, 399 for Llama and 3,162 for DeepSeek-V3.
    out = run(command, arch(name), cache=tmp_path)
    assert out.returncode == 0, out.stderr
    assert max(map(len, out.stdout.splitlines())) <= 100
    assert "**" not in out.stdout and "CRootOf" not in out.stdout


@pytest.mark.slow
def test_results_text_takes_a_width():
    results = [symcost.evaluate(arch("deepseek_v3")), symcost.derive(arch("deepseek_v3")),
               symcost.memory(arch("deepseek_v3")), symcost.sweep(arch("llama"), {"seq_len": [1024, 2048]}),
               symcost.solve(arch("llama"), "params", "7e9", "d_model"),
               symcost.compare(arch("llama"), arch("deepseek_v3"))]
    for result in results:
        assert max(map(len, result.text(60).splitlines())) <= 60, type(result).__name__
    for result in (symcost.memory(arch("deepseek_v3")), symcost.plan(arch("llama"), tp=8),
                   symcost.inference(arch("llama"))):  # their closed forms too, on request
        assert max(map(len, result.text(60, formulas=True).splitlines())) <= 60, type(result).__name__


def test_numbers_come_first_and_closed_forms_on_request(cli):
    """plan, memory and inference print numbers (and the sizes they are at); --formulas adds each
    figure's closed form."""
    for args in (("plan", arch("llama"), "--tp", "8"), ("memory", arch("llama")), ("inference", arch("llama"))):
        short, long = cli(*args).stdout, cli(*args, "--formulas").stdout
        assert "·d_model" not in short.split("*")[0] and "·d_model" in long and len(long) > len(short), args


def test_derive_formulas_fit_too(tmp_path):
    out = run("derive", arch("deepseek_v3"), "--formulas", cache=tmp_path).stdout
    assert max(map(len, out.splitlines())) <= 100 and "layers/3/repeat/3/moe  (moe)" in out


def test_numbers_use_one_set_of_suffixes():
    from symcost.render.text import bytes_human, human

    assert [human(n) for n in (999, 124_439_808, 6_738_415_616, 29_261_612_187_648, 1_151_599_380_529_152)] == [
        "999", "124.44M", "6.74B", "29.26T", "1.15e15"]
    assert bytes_human(13_476_831_232) == "12.55 GiB" and bytes_human(2**41) == "2.00 TiB"


def test_eval_shows_flops_per_token_and_dense_params_once():
    out = run("eval", arch("llama"), "--set", "seq_len=2048", "--no-cache").stdout
    assert "forward FLOPs per token  14,287,896,576" in out  # 29,261,612,187,648 / 2048
    assert "active params" not in out
    moe = run("eval", arch("mixtral"), "--no-cache").stdout
    assert "active params" in moe
    data = json.loads(run("eval", arch("resnet50"), "--format", "json", "--no-cache").stdout)
    assert data["input_unit"] == "image" and data["flops_per_input"]["forward"] == data["flops"]["forward"]


# -- honesty ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_decoder_without_a_causal_layer_gets_a_note(tmp_path):
    # Before: a 0-byte KV cache, without a word.
    text = Path(arch("transformer")).read_text().replace("causal: true", "causal: false")
    spec = tmp_path / "bidirectional.yaml"
    spec.write_text(text)
    for command in (["memory"], ["inference", "--context", "100"]):
        out = run(*command[:1], spec, *command[1:]).stdout
        assert "no attention layer is causal" in out, command
    assert "no attention layer is causal" not in run("memory", arch("transformer")).stdout


def test_set_obeys_the_spec_bounds():
    # Before: --set d_model=1e30 was accepted past the spec's own bound of 10^18.
    for value in ("1e30", "1e999999999", "2.5"):
        out = run("eval", arch("llama"), "--set", f"d_model={value}")
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_did_you_mean_and_aliases(write, cli):
    spec = Path(arch("transformer")).read_text()
    typo = cli("eval", write(spec.replace("- layernorm: {dim: d_model}\n  - lm_head", "- layernrom: {dim: d_model}\n  - lm_head")))
    assert typo.exit_code == 2 and "did you mean 'layernorm'" in typo.stderr
    alias = cli("eval", write(spec.replace("activation: gelu_new", "activation: swiglu")))
    assert alias.exit_code == 2 and "silu" in alias.stderr and "gated: true" in alias.stderr
    command = run("evl", arch("llama"))
    assert command.returncode == 2 and "Did you mean 'eval'" in command.stderr


def test_solve_names_the_fixed_dims_and_why_neighbours_were_skipped():
    out = run("solve", arch("llama"), "--target", "params=7e9", "--for", "d_model").stdout
    # Before: nothing said d_ff stayed at 11008 while d_model moved.
    assert "held fixed:" in out and "d_ff=11,008" in out
    assert "skipped" in out and "dims.d_head" in out  # 4215 is not a multiple of 32 heads


# -- errors without extras, start-up and layout ------------------------------------------------

BARE = ("sympy", "mpmath", "pydantic", "pydantic_core", "annotated_types", "typing_extensions",
        "typing_inspection", "click", "yaml", "_yaml", "numpy", "numpy.libs")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """A venv holding only symcost and its required dependencies (no torch, matplotlib,
    transformers, pandas), linked from this environment's site-packages."""
    import site
    import sysconfig

    root = tmp_path_factory.mktemp("bare")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    target = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                 capture_output=True, text=True, check=True).stdout.strip())
    source = Path(sysconfig.get_path("purelib"))
    for entry in source.iterdir():
        if entry.name.split("-")[0].split(".")[0] in {b.split(".")[0] for b in BARE} or entry.name in BARE:
            (target / entry.name).symlink_to(entry)
    (target / "symcost.pth").write_text(str(ROOT) + "\n")
    del site
    return python


@pytest.mark.parametrize("args, hint", [
    (["verify", arch("transformer")], "pip install 'symcost[torch]'"),
    (["sweep", arch("transformer"), "--vary", "seq_len=128,256", "--plot", "out.png"], "pip install 'symcost[plot]'"),
    (["verify", arch("llama"), "--hf", "config.json"], "pip install 'symcost[torch]'"),
])
def test_missing_extras_give_one_line(bare_python, tmp_path, args, hint):
    # Before: a 25-line ModuleNotFoundError traceback.
    assert subprocess.run([bare_python, "-c", "import torch"], capture_output=True).returncode != 0
    (tmp_path / "config.json").write_text("{}")
    out = subprocess.run([bare_python, "-m", "symcost", *args], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "SYMCOST_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 2 and hint in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_bare_venv_runs_the_main_job(bare_python, tmp_path):
    out = subprocess.run([bare_python, "-m", "symcost", "eval", arch("transformer")], capture_output=True, text=True,
                         env={**os.environ, "SYMCOST_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 0 and "124,439,808" in out.stdout


def test_bare_venv_writes_a_page_without_torch(bare_python, tmp_path):
    page = tmp_path / "llama.html"
    out = subprocess.run([bare_python, "-m", "symcost", "page", arch("llama"), "-o", str(page)], capture_output=True,
                         text=True, env={**os.environ, "SYMCOST_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 0 and "wrote" in out.stdout and page.read_text().startswith("<!DOCTYPE html>")
    assert not {"torch", "matplotlib"} & imports_of("page", arch("llama"), "-o", str(tmp_path / "again.html"))


def imports_of(*args, cache=None):
    code = ("import sys; from symcost.cli import run\n"
            f"try:\n    run({list(args)!r})\nexcept SystemExit:\n    pass\n"
            "print(' '.join(m for m in ('sympy', 'pydantic', 'numpy', 'torch', 'matplotlib', 'click') if m in sys.modules),"
            " file=sys.stderr)")
    env = {**os.environ, "SYMCOST_CACHE_DIR": str(cache)} if cache else None
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return set(out.stderr.strip().splitlines()[-1].split()) if out.stderr.strip() else set()


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_help_imports_nothing_heavy(command):
    assert imports_of(*command, "--help") <= {"click"}


def test_python_m_symcost_lists_every_command():
    from symcost.cli import COMMANDS, _group

    out = run("--help").stdout
    assert all(name in out for name in COMMANDS)
    group = _group()
    for name, (_, _, summary) in COMMANDS.items():  # the lazy table matches the commands it names
        command = group.get_command(None, name)
        assert command.name == name and command.help


def test_a_spec_builds_only_the_layer_types_it_uses():
    """Start-up: the 27 component models are imported and built on first use, not at import."""
    code = ("import sys, symcost\n"
            f"symcost.load({str(arch('transformer'))!r})\n"
            "print(' '.join(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('symcost.components.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "attention" in out and "mlp" in out
    assert not {"recurrent", "conv", "moe", "mla", "pool"} & set(out)


def test_the_registry_names_each_class_by_its_kind():
    from symcost.components import KINDS, REGISTRY

    assert len(REGISTRY) == len(KINDS) == 46
    assert all(REGISTRY[kind].kind == kind for kind in KINDS)


# -- the cache -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_repeated_eval_imports_no_sympy_and_is_never_stale(tmp_path):
    spec = tmp_path / "gpt.yaml"
    spec.write_text(Path(arch("transformer")).read_text())
    cache = tmp_path / "cache"
    first = run("eval", spec, cache=cache)
    assert imports_of("eval", str(spec), cache=cache).isdisjoint({"sympy", "pydantic", "numpy", "click"})
    assert run("eval", spec, cache=cache).stdout == first.stdout
    assert run("eval", spec, "--no-cache", cache=cache).stdout == first.stdout
    # an edit to the spec changes the answer at once
    spec.write_text(spec.read_text().replace("n_layers: 12", "n_layers: 13"))
    edited = run("eval", spec, cache=cache)
    assert edited.stdout != first.stdout and "n_layers=13" in edited.stdout
    assert imports_of("eval", str(spec), "--set", "seq_len=77", cache=cache) >= {"sympy"}  # a new point: checked
    # ... and then added to the existing entry: answered from it, the same as the full path
    assert not imports_of("eval", str(spec), "--set", "seq_len=77", cache=cache) & {"sympy"}
    assert run("eval", spec, "--set", "seq_len=77", cache=cache).stdout == run(
        "eval", spec, "--set", "seq_len=77", "--no-cache", cache=cache).stdout
    assert not imports_of("eval", str(spec), cache=cache) & {"sympy"}  # the earlier point is still there


@pytest.mark.slow
@pytest.mark.parametrize("name", SPECS)
def test_cached_answers_equal_the_full_path(tmp_path, name):
    sets = {"transformer": ["--set", "seq_len=100"], "llama": ["--set", "d_model=2048", "--set", "n_heads=16", "--set", "n_kv_heads=16"],
            "resnet50": ["--set", "image_size=97"]}.get(name, [])
    for fmt in ("text", "json"):
        full = run("eval", arch(name), *sets, "--format", fmt, cache=tmp_path)
        cached = run("eval", arch(name), *sets, "--format", fmt, cache=tmp_path)
        assert full.returncode == 0 and cached.stdout == full.stdout
    assert not imports_of("eval", arch(name), *sets, cache=tmp_path) & {"sympy"}


def test_a_fine_tunes_cached_answer_equals_the_full_path(tmp_path):
    """Trainable and frozen parameters come from the cache as from the full path."""
    spec = tmp_path / "qlora.yaml"
    spec.write_text(Path(arch("llama")).read_text() + "finetune: {method: qlora, rank: 16}\n")
    for fmt in ("text", "json"):
        full = run("eval", spec, "--format", fmt, cache=tmp_path)
        cached = run("eval", spec, "--format", fmt, cache=tmp_path)
        assert full.returncode == 0 and cached.stdout == full.stdout
        assert ("39,976,960" if fmt == "text" else '"params_trainable": 39976960') in full.stdout
    assert not imports_of("eval", spec, cache=tmp_path) & {"sympy"}


def test_an_invalid_point_is_never_answered_from_the_cache(tmp_path):
    run("eval", arch("llama"), cache=tmp_path)
    bad = run("eval", arch("llama"), "--set", "d_model=4100", cache=tmp_path)
    assert bad.returncode == 2 and "d_head" in bad.stderr


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text("ab·²", min_size=1, max_size=30), min_size=1, max_size=20),
       st.lists(st.sampled_from([" + ", " - ", ", ", " ", "·"]), min_size=20, max_size=20),
       st.integers(0, 8), st.integers(20, 120))
def test_wrap_fits_and_keeps_every_character(words, separators, lead, limit):
    from symcost.render.text import wrap

    text = " " * lead + words[0] + "".join(s + w for s, w in zip(separators, words[1:]))
    lines = wrap(text, limit)
    assert all(len(line) <= limit for line in lines)
    assert "".join(text.split()) == "".join("".join(lines).split())  # nothing lost, only spaces moved
    assert all(line.strip() not in ("+", "-") for line in lines)  # an operator stays with its term
