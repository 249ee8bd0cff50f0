"""fit-efficiency on timed training runs (symcost/plan/calibrate.py) and the training entry it ships
(symcost/plan/training.yaml): the runs file holds the published runs it names (tests/published.py), refitting them
gives the shipped entry, its predictions of the runs it was not fitted on are within the issue's 3 % on average and
6 % at worst, and plan predicts what the fit reports; what a runs file cannot say is one line with its place."""

import json

import pytest
import yaml

import symcost
from conftest import ROOT, unknown_keys
from published import KORTHIKANTI_2022
from symcost.plan.efficiency import shipped

RUNS = ROOT / "examples" / "efficiency" / "megatron-a100-runs.yaml"
GPT = ROOT / "architectures" / "megatron_gpt.yaml"


@pytest.fixture(scope="module")
def fitted():
    return symcost.fit_efficiency(str(RUNS))


def published_runs():
    """Each published run as the runs file should write it: (dims, plan settings, seconds, held out)."""
    for name, d, layers, heads, gpus, pp, v, mb, gb, full, selective, role in KORTHIKANTI_2022:
        for mode, seconds in (("full", full), ("selective", selective)):
            settings = {"gpus": gpus, "tp": 8, **({"pp": pp} if pp > 1 else {}),
                        **({"virtual_stages": v} if v > 1 else {}), "micro_batch": mb, "global_batch": gb,
                        "recompute": mode, **({"sequence_parallel": True} if mode == "selective" else {}),
                        "attention": "eager"}
            yield {"d_model": d, "n_layers": layers, "n_heads": heads}, settings, seconds, role == "held out"


def test_the_runs_file_holds_the_published_runs():
    runs = yaml.safe_load(RUNS.read_text())["runs"]
    assert [(r["set"], r["plan"], r["measured"], r.get("held_out", False)) for r in runs] == list(published_runs())
    assert {r["dtype"] for r in runs} == {"fp16"}


def test_refitting_the_runs_gives_the_shipped_entry(fitted, cli, tmp_path):
    assert fitted.entry == shipped("train")["a100-80gb"]
    out = cli("fit-efficiency", RUNS, "-o", tmp_path / "eff.yaml", "--format", "json")
    assert out.exit_code == 0, out.output
    assert yaml.safe_load((tmp_path / "eff.yaml").read_text()) == {
        "a100-80gb": shipped("train")["a100-80gb"].model_dump(exclude_defaults=True)}
    assert not unknown_keys(json.loads(out.stdout))


def test_the_held_out_runs_are_predicted_within_3_percent_on_average_and_6_at_worst(fitted):
    """The issue's bar (Calculon's figures on such runs: 3.65 % and 8.87 %), on the 175B and 530B runs, both
    recomputations, which the entry was not fitted on."""
    held = [abs(r["prediction_error"]) for r in fitted.rows if r["held_out"]]
    assert len(held) == 4 and sum(held) / len(held) <= 0.03 and max(held) <= 0.06
    assert fitted.entry.held_out_error == round(max(held), 3)
    assert all(r["step_seconds_bound"] < r["measured_step_seconds"] for r in fitted.rows)


def test_plan_predicts_what_the_fit_reports(fitted, cli):
    """Each run planned with the shipped entry predicts the step time the fit's table gives it."""
    for (dims, settings, _, _), row in zip(published_runs(), fitted.rows):
        p = symcost.plan(str(GPT), dims, hardware="a100-80gb", precision="fp16", **settings)
        assert p.numbers["step_seconds_predicted"] == pytest.approx(row["step_seconds_predicted"], rel=1e-12)
    out = cli("plan", GPT, "--hardware", "a100-80gb", "--dtype", "fp16", "--gpus", "8", "--tp", "8",
              "--micro-batch", "4", "--global-batch", "4", "--set", "d_model=6144", "--set", "n_layers=48", "--set",
              "n_heads=64", "--recompute", "full", "--attention", "eager", "--format", "json")
    data = json.loads(out.stdout)
    assert data["time"]["step_seconds_predicted"] == pytest.approx(fitted.rows[0]["step_seconds_predicted"])
    assert any("efficiency entry 'a100-80gb'" in n and "22B, full recompute" in n for n in data["notes"])
    assert not unknown_keys(data)
    other = json.loads(cli("plan", "architectures/llama.yaml", "--gpus", "8", "--format", "json").stdout)
    assert "step_seconds_predicted" not in other["time"]  # no training entry for the H100: nothing predicted


HEAD = "phase: train\nhardware: a100-80gb\nsource: mine\ndate: x\nruns:\n"
RUN = f"  - {{spec: {GPT}, measured: 1, plan: {{gpus: 8, tp: 8}}}}\n"


@pytest.mark.parametrize("text, messages", [
    (HEAD + RUN.replace("tp: 8", "tpp: 8") * 3,
     ("runs.yaml:6:", ": runs.0.plan.tpp: unknown setting 'tpp'; expected gpus, tp")),
    (HEAD + RUN.replace("measured: 1", "measured: 0") * 3,
     ("runs.yaml:6:", ": runs.0.measured: Input should be greater than 0")),
    (HEAD + RUN * 2, ("runs.yaml:5:", "runs: List should have at least 3 items")),
    (HEAD + RUN.replace("measured: 1", "measured: 1, concurrency: 4") * 3,
     ("runs.0.concurrency: Extra inputs are not permitted",)),
    (HEAD + RUN.replace("gpus: 8", "gpus: 6") * 3, ("runs.yaml:6:5: runs.0: ", "gpus")),
])
def test_what_a_training_runs_file_cannot_say_is_one_line(text, messages, cli, write):
    out = cli("fit-efficiency", write(text, "runs.yaml"))
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert all(m in out.output for m in messages), out.output
