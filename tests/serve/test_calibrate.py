"""fit-efficiency (symcost/serve/calibrate.py): an efficiency entry fitted on a file of timed runs. Given the published
runs the shipped H100 entry names, it fits that entry again, end to end through the command line; what the file
cannot say is one line with its place."""

import json

import pytest
import yaml

import symcost
from conftest import ROOT, unknown_keys
from published import TRTLLM_0_6_1, config
from symcost.plan.efficiency import shipped

ENTRY = "hardware: h100-sxm\nsource: mine\ndate: '2026-12-07'\nruns:\n"


def runs_file(tmp_path, rows) -> str:
    """The H100 rows of TensorRT-LLM 0.6.1's table as a runs file: each model's spec imported beside it."""
    for model in {r[0] for r in rows}:
        (tmp_path / f"{model}.yaml").write_text(symcost.import_hf(config(model)).yaml)
    runs = [{"spec": f"{m}.yaml", "dtype": "fp16", "kv_dtype": "fp8", "quantization": {"format": "fp8"}, "tp": tp,
             "concurrency": b, "prompt": p, "output": o, "measured": float(x), "held_out": role == "held out"}
            for m, hw, dtype, tp, b, p, o, x, role in rows]
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump({"hardware": "h100-sxm", "source": "TensorRT-LLM 0.6.1", "date": "2026-12-07",
                                    "runs": runs}, sort_keys=False))
    return str(path)


def test_the_published_runs_fit_the_shipped_entry_again(cli, tmp_path):
    rows = [r for r in TRTLLM_0_6_1 if r[1] == "h100-sxm" and r[-1] != "bound"]
    out = cli("fit-efficiency", runs_file(tmp_path, rows), "-o", tmp_path / "eff.yaml")
    assert out.exit_code == 0, out.output
    written = yaml.safe_load((tmp_path / "eff.yaml").read_text())["h100-sxm"]
    ours = shipped()["h100-sxm"]
    assert (written["matmul"], written["memory"], written["held_out_error"]) == (ours.matmul, ours.memory,
                                                                                 ours.held_out_error)
    assert written["dtypes"] == ["fp8"] and len(written["fitted_on"]) == 4 and len(written["held_out"]) == 4
    assert "held-out error 8.6%" in out.output
    served = cli("serve", "architectures/llama.yaml", "--efficiency-file", tmp_path / "eff.yaml", "--format", "json")
    assert served.exit_code == 0 and '"seconds_predicted"' in served.output


@pytest.mark.parametrize("text, message", [
    (ENTRY + "  - {spec: a.yaml, concurrency: 1, prompt: 1, output: 1, measured: 0}\n",
     "runs.yaml:5:58: runs.0.measured: Input should be greater than 0"),
    (ENTRY + "  - {spec: a.yaml, concurrency: 1, prompt: 1, output: 1, measured: 1, speed: 2}\n",
     "runs.0.speed: Extra inputs are not permitted"),
    (ENTRY + "  - {spec: a.yaml, concurrency: 1, prompt: 1, output: 1, measured: 1}\n",
     "runs: List should have at least 2 items"),
    (ENTRY + "  - {spec: missing.yaml, concurrency: 1, prompt: 1, output: 1, measured: 1}\n" * 2,
     "runs.yaml:5:5: runs.0: missing.yaml: "),
])
def test_what_a_runs_file_cannot_say_is_one_line(text, message, cli, write):
    out = cli("fit-efficiency", write(text, "runs.yaml"))
    assert out.exit_code == 2 and out.output.count("\n") == 1 and message in out.output, out.output


def test_the_shipped_example_fits_the_entry_from_its_fitted_runs_and_speaks_the_vocabulary(cli):
    """examples/efficiency/trtllm-h100-runs.yaml: the four Llama-2-7B runs (architectures/llama.yaml is Llama-2-7B)
    fit the shipped H100 entry's shares; its JSON's every key is in the one vocabulary (metrics.py)."""
    out = cli("fit-efficiency", ROOT / "examples" / "efficiency" / "trtllm-h100-runs.yaml", "--format", "json")
    data = json.loads(out.stdout)
    ours = shipped()["h100-sxm"]
    assert (data["efficiency"]["matmul"], data["efficiency"]["memory"]) == (ours.matmul, ours.memory)
    assert unknown_keys(data) == set()


def test_more_runs_than_the_bound_are_refused_in_one_line(cli, write):
    from symcost.serve.calibrate import MAX_RUNS

    run = "  - {spec: a.yaml, concurrency: 1, prompt: 1, output: 1, measured: 1}\n"
    out = cli("fit-efficiency", write(ENTRY + run * (MAX_RUNS + 1), "runs.yaml"))
    assert out.exit_code == 2 and f"runs: List should have at most {MAX_RUNS} items" in out.output
