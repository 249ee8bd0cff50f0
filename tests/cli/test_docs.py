"""Every `$ symcost …` block in README.md and docs/ is run, and its output must be the block's text
(so an example can never drift from what the command prints). A block may end in a line `...`: the
output goes on past what is shown, and the lines shown must be its beginning. A command that writes
a file (`-o`, `--output`, `--plot`) must leave a non-empty one. `SYMCOST_WRITE_DOCS=1 pytest
tests/cli/test_docs.py` writes the outputs into the blocks instead (then read the diff)."""

import os
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```[a-z]*\n(\$ symcost (?:[^\n]*\\\n)*[^\n]*)\n(.*?)^```\n", re.M | re.S)  # `\` continues a line
NEEDS = {"verify": "torch", "--hf": "transformers", "fit": "scipy", "--plot": "matplotlib"}


SLOW = ("scaling fit",)  # a fit with its bootstrap: tens of seconds on two cores


def blocks() -> list:
    return [pytest.param(page, m.group(1), m.group(2), id=f"{page.name}:{' '.join(m.group(1)[2:].split())[:70]}",
                         marks=[pytest.mark.slow] if any(w in m.group(1) for w in SLOW) else [])
            for page in PAGES for m in BLOCK.finditer(page.read_text())]


def test_the_pages_have_blocks_to_run():
    assert len(list(blocks())) >= 10


@pytest.mark.parametrize("page, command, shown", blocks())
def test_a_command_block_prints_what_it_shows(cli, tmp_path, monkeypatch, page, command, shown):
    args = shlex.split(command[2:].replace("\\\n", " "))[1:]
    for word, extra in NEEDS.items():
        if word in args:
            pytest.importorskip(extra)
    monkeypatch.chdir(ROOT)
    outputs = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "--output", "--plot")]
    args = [str(tmp_path / Path(a).name) if a in outputs else a for a in args]
    result = cli(*args)
    printed = (result.stdout + (result.stderr if result.exit_code else "")).rstrip("\n").split("\n")
    printed = [line.rstrip() for line in printed]
    for out in outputs:
        assert (tmp_path / Path(out).name).stat().st_size > 0, out
    if os.environ.get("SYMCOST_WRITE_DOCS"):
        _write(page, command, shown, printed)
        return
    want = [line.rstrip() for line in shown.rstrip("\n").split("\n")] if shown.strip() else []
    if want and want[-1] == "...":
        assert printed[:len(want) - 1] == want[:-1], "\n".join(printed)
    else:
        assert printed == want, "\n".join(printed)


def _write(page: Path, command: str, shown: str, printed: list[str]) -> None:
    text = page.read_text()
    keep_going = shown.rstrip("\n").split("\n")[-1] == "..."
    lines = printed[:len(shown.rstrip("\n").split("\n")) - 1] + ["..."] if keep_going else printed
    new = "\n".join(lines) + "\n" if lines != [""] else ""
    page.write_text(text.replace(f"{command}\n{shown}```", f"{command}\n{new}```", 1))


def test_the_readme_is_the_pitch_and_the_two_commands():
    """The manual lives in docs/; README.md stays short enough to read, with the CI's marker line."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200 and "<!-- ci: test command" in text
    for guide in ("specs", "explore", "import-hf", "memory", "plan", "scaling", "page", "reference", "architecture"):
        assert f"(docs/{guide}.md)" in text and (ROOT / "docs" / f"{guide}.md").exists(), guide


def test_the_readme_limits_are_the_code_s():
    """The Limits section states each bound with the number the code enforces."""
    from symcost.explore import compare, sweep
    from symcost.plan import execution, search
    from symcost.scaling import fit

    text = " ".join((ROOT / "README.md").read_text().split("## Limits", 1)[1].split("## ", 1)[0].split())
    stated = {f"`sweep` {sweep.MAX_POINTS:,} points", f"`compare --vary` {compare.MAX_POINTS}",
              f"`--top` {search.MAX_TOP} layouts", f"`scaling fit` {fit.MAX_RUNS:,} runs",
              f"{fit.MAX_BOOTSTRAP:,} bootstrap refits", f"Hoffmann's grid: {fit.MAX_START_RUNS // 4500} runs"}
    assert all(s in text for s in stated), [s for s in stated if s not in text]
    assert execution.MAX_GPUS == 10**7 and "`plan` 10⁷ GPUs" in text
    assert fit.MAX_START_RUNS == 10**6 and fit.MAX_BOOTSTRAP_RUNS == 5 * 10**5 and search.MAX_CANDIDATES == 10**6


def test_the_examples_are_import_hf_s_specs_of_their_configs(monkeypatch):
    """examples/*.yaml are what `symcost import-hf` writes for the published config each names."""
    import symcost

    monkeypatch.chdir(ROOT)  # the configs are named from the repository's root, as the docs run them
    paths = sorted((ROOT / "examples").glob("*.yaml"))
    assert paths
    for path in paths:
        assert symcost.import_hf(symcost.load(path).source).yaml == path.read_text(), path.name


@pytest.mark.slow  # a solve and two memory reports at Llama-3's sizes
def test_the_readme_fine_tuning_figures_are_the_tool_s():
    """The README's fine-tuning sentence states what the commands answer (docs/finetune.md runs them)."""
    import symcost

    text = " ".join((ROOT / "README.md").read_text().split("## Fine-tuning", 1)[1].split("## ", 1)[0].split())
    eight, seventy = (symcost.load(ROOT / "examples" / f"llama-3-{n}.yaml") for n in ("8b", "70b"))
    (root,) = symcost.solve(symcost.finetune(eight, method="qlora", rank=16), "peak_training_bytes", 24 * 10**9,
                            "seq_len").to_dict()["roots"]
    lora = symcost.memory(symcost.finetune(seventy, method="lora", rank=16), seq_len=2048).numbers
    qlora = symcost.memory(symcost.finetune(seventy, method="qlora", rank=16), seq_len=2048, recompute="full").numbers
    assert f"{root['below']['value']:,} tokens fit 24 GB" in text
    assert f"{lora['weights_bytes'] / 1e9:.1f} GB of bf16 weights" in text and lora["weights_bytes"] > 80e9
    assert f"a {qlora['peak_training_bytes'] / 2**30:.1f} GiB peak" in text and qlora["peak_training_bytes"] < 80e9
    two = lambda n: symcost.plan(symcost.finetune(seventy, method="lora", rank=16), seq_len=n, gpus=2, zero=3,
                                 recompute="full", precision="bf16")
    n = two(2048).numbers
    assert (f"{n['total_bytes'] / 2**30:.2f} GiB per GPU at 2,048 tokens, a {n['peak_bytes'] / 2**30:.2f} GiB peak"
            in text and not two(2048).fits)
    assert "1,792 fit" in text and two(1792).fits


def test_the_fine_tuning_page_s_figures_are_the_tool_s():
    """docs/finetune.md's sentence on two GPUs: the total and the peak at 2,048 tokens, and the logits' transient."""
    import symcost

    text = " ".join((ROOT / "docs" / "finetune.md").read_text().split())
    lora = symcost.finetune(symcost.load(ROOT / "examples" / "llama-3-70b.yaml"), method="lora", rank=16)
    longer = symcost.plan(lora, seq_len=2048, gpus=2, zero=3, recompute="full", precision="bf16")
    total, peak = (longer.numbers[k] / 2**30 for k in ("total_bytes", "peak_bytes"))
    memory = longer.hardware.memory_bytes / 2**30
    assert f"At 2,048 the total is {total:.2f} GiB, and the peak {peak:.2f} GiB, past the {memory:.2f}" in text
    assert not longer.fits and symcost.plan(lora, seq_len=1792, gpus=2, zero=3, recompute="full",
                                            precision="bf16").fits and "1,792-token sequences fit" in text
    logits = 2048 * 128256 * (8 + 2)  # tokens x vocabulary: the bf16 logits and two fp32 gradients of them
    assert f"logits' transient ({logits / 2**30:.2f} GiB at 2,048 tokens)" in text


def test_the_readme_serving_figures_are_the_tool_s():
    """The README's serving sentence states what `serve` answers (docs/serve.md runs the commands)."""
    import symcost

    section = (ROOT / "README.md").read_text().split("## Fine-tuning and serving", 1)[1].split("## ", 1)[0]
    text = " ".join(section.split())
    seventy = symcost.quantize(symcost.load(ROOT / "examples" / "llama-3-70b.yaml"), format="fp8-channel")
    kw = dict(tp=2, precision=symcost.precision.Precision("bf16", "fp8"), prompt=1024, output=256)
    n = symcost.serve(seventy, **kw).numbers
    assert (f"{n['per_gpu']['weights_bytes'] / 2**30:.2f} GiB of weights a GPU, a KV pool of "
            f"{n['kv']['capacity_tokens']:,} tokens, {n['max_concurrency']} requests of 1,024 + 256 tokens") in text
    assert f"TTFT ≥ {n['ttft_seconds'] * 1e3:.1f} ms, TPOT ≥ {n['tpot_seconds'] * 1e3:.1f} ms" in text
    ttft, tpot = n["ttft_seconds_predicted"] * 1e3, n["tpot_seconds_predicted"] * 1e3
    assert f"(bounds; predicted: {ttft:.1f} and {tpot:.1f} ms)" in text
    from published import TRTLLM_0_6_1
    from symcost.plan.efficiency import shipped

    checked = [r for r in TRTLLM_0_6_1 if r[-1] != "bound"]  # tests/plan/test_efficiency.py checks each
    worst = max(e.held_out_error for e in shipped().values())
    assert f"within 15 % of all {len(checked)}" in text and f"{worst * 100:.1f} % at worst" in text
    drafted = symcost.serve(seventy, **kw, concurrency=8, draft=ROOT / "examples" / "llama-3-70b.yaml",
                            draft_values={"n_layers": 1}, acceptance=0.7).numbers["speculative"]
    assert f"acceptance 0.7 yields {drafted['tokens_per_step']:.2f} tokens a step" in text


def test_the_readme_s_frontier_table_is_the_tool_s():
    """The README's table of shipped frontier specs: each row's parameters and active parameters as `evaluate`
    gives them, and its MTP modules' parameters as `derive` reports them apart."""
    import symcost
    from symcost.evaluate import dim_values

    rows = [r.split(" | ") for r in (ROOT / "README.md").read_text().split("\n") if r.startswith("| `") and
            ".yaml`" in r.split(" | ")[0] and len(r.split(" | ")) == 5]
    assert len(rows) == 7
    for name, params, active, mtp, _ in rows:
        spec = ROOT / "architectures" / (name[3:name.index(".yaml")] + ".yaml")
        total, d = symcost.evaluate(spec).total, symcost.derive(spec)
        apart = f"{int(d.mtp.params.xreplace(dim_values(d))):,}" if d.mtp is not None else "–"
        assert [params, active, mtp] == [f"{total['params']:,}", f"{total['active_params']:,}", apart], name
