"""The efficiency file (symcost/plan/efficiency.py, efficiency.yaml; training.yaml's in test_plan_calibrate.py): its
entries are the least-squares fit of the published runs they name (TensorRT-LLM 0.6.1's throughput tables,
tests/published.py), their predictions of every published run they were fitted on or held out from are within
15 %, and no bound is above a measurement."""

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symcost
from published import TRTLLM_0_6_1, config, run_name
from symcost.plan.efficiency import Efficiency, fit, shipped
from symcost.precision import Precision

TOLERANCE = 0.15  # the issue's: a prediction within 15 % of the published throughput


def served(run, **settings):
    """The run served as TensorRT-LLM ran it: FP8 weights (per tensor), matmuls and KV cache on H100; FP16 on
    A100; a static batch of `batch` requests; the whole GPU's memory (its engine is built for the batch)."""
    model, hardware, dtype, tp, batch, prompt, output, *_ = run
    spec = symcost.import_hf(config(model)).spec()
    if dtype == "fp8":
        spec = symcost.quantize(spec, format="fp8")
    precision = Precision("fp16", kv=dtype)
    return symcost.serve(spec, hardware=hardware, precision=precision, tp=tp, concurrency=batch, prompt=prompt,
                         output=output, memory_utilization=1.0, **settings).numbers["throughput"]


@pytest.fixture(scope="module")
def throughputs():
    return {run: served(run) for run in TRTLLM_0_6_1}


def test_each_shipped_entry_is_the_fit_of_the_runs_it_names(throughputs):
    """Refitting the named runs gives the shipped shares (to the 3 decimals stored), and the held-out error is
    the one the held-out runs give: the file cannot drift from its data."""
    assert set(shipped()) == {"h100-sxm", "a100-80gb"}
    for key, entry in shipped().items():
        runs = [r for r in TRTLLM_0_6_1 if r[1] == key]
        fitted = [r for r in runs if r[-1] == "fit"]
        held = [r for r in runs if r[-1] == "held out"]
        assert entry.fitted_on == [run_name(*r) for r in fitted]
        assert entry.held_out == [run_name(*r) for r in held]
        assert entry.dtypes == sorted({r[2] for r in fitted})
        data = [(t["compute_seconds"], t["memory_seconds"], t["comm_seconds"],
                 float(t["output_tokens"]) / (r[7] * r[3])) for r in fitted for t in (throughputs[r],)]
        assert tuple(round(x, 3) for x in fit(data)) == (entry.matmul, entry.memory)
        errors = [throughputs[r]["tokens_per_second_per_gpu_predicted"] / r[7] - 1 for r in held]
        assert entry.held_out_error == round(max(map(abs, errors)), 3)


@pytest.mark.parametrize("run", [r for r in TRTLLM_0_6_1 if r[-1] != "bound"], ids=lambda r: run_name(*r))
def test_predictions_are_within_15_percent_of_published_throughputs(run, throughputs):
    predicted = throughputs[run]["tokens_per_second_per_gpu_predicted"]
    assert abs(predicted / run[7] - 1) <= TOLERANCE


@pytest.mark.parametrize("run", TRTLLM_0_6_1, ids=lambda r: run_name(*r))
def test_no_bound_is_above_a_measurement(run, throughputs):
    """The roofline throughput is at least the measured one (its time at most the measured time), every
    published row, the GQA rows left out of the fit included; and a prediction is never faster than its bound."""
    t = throughputs[run]
    assert t["tokens_per_second_per_gpu_bound"] >= run[7]
    assert t["seconds_predicted"] >= t["seconds_bound"]


def test_the_fit_refuses_runs_that_cannot_tell_compute_from_memory():
    with pytest.raises(symcost.SpecError, match="at least 2 runs"):
        fit([(1.0, 1.0, 0.0, 2.0)])
    with pytest.raises(symcost.SpecError, match=r"matmul 2, memory 0.5: not all in \(0, 1\]"):
        fit([(1.0, 0.0, 0.0, 0.5), (0.0, 1.0, 0.0, 2.0)])  # matmuls faster than the peak
    with pytest.raises(symcost.SpecError, match="no longer than its communication"):
        fit([(1.0, 0.0, 0.5, 0.5), (0.0, 1.0, 0.0, 2.0)])
    assert tuple(round(x, 12) for x in fit([(1.0, 0.0, 1.0, 3.0), (0.0, 1.0, 0.5, 2.5)])) == (0.5, 0.5)  # 2 s left each


def test_a_training_fit_finds_the_link_s_share_too():
    """Runs timed at matmul 0.8, memory 0.5 and link 0.25 of their figures give those shares back; two runs cannot
    fix three."""
    shares = (0.8, 0.5, 0.25)
    runs = [(c, m, k, c / 0.8 + m / 0.5 + k / 0.25) for c, m, k in ((4.0, 1.0, 1.0), (2.0, 2.0, 0.5), (1.0, 0.5, 2.0),
                                                                    (3.0, 0.0, 0.2))]
    assert tuple(round(x, 12) for x in fit(runs, link=True)) == shares
    with pytest.raises(symcost.SpecError, match="a fit of 3 shares needs at least 3 runs"):
        fit(runs[:2], link=True)
    with pytest.raises(symcost.SpecError, match=r"link 2: not all in \(0, 1\]"):
        fit([(c, m, k, c / 0.8 + m / 0.5 + k / 2) for c, m, k, _ in runs], link=True)


ENTRY = "h100-sxm:\n  matmul: 0.5\n  memory: 0.8\n  dtypes: [fp8]\n  fitted_on: [my run]\n  source: mine\n  date: x\n"


@pytest.mark.parametrize("text, place, message", [
    (ENTRY.replace("memory: 0.8", "memory: -0.5"), ":3:", "memory: Input should be greater than 0, got -0.5"),
    (ENTRY.replace("matmul: 0.5", "matmul: 1.5"), ":2:", "matmul: Input should be less than or equal to 1"),
    (ENTRY.replace("  memory: 0.8\n", ""), ":1:", "h100-sxm.memory: Field required"),  # the entry's line
    (ENTRY.replace("[fp8]", "[fp9]"), ":4:", "dtypes: unknown dtype 'fp9'"),
    (ENTRY.replace("source", "sauce"), ":6:", "unknown field 'sauce'"),
])
@pytest.mark.parametrize("command", ["serve", "plan"])  # serving's and training's entries are read alike
def test_a_bad_entry_is_one_line_with_its_place(command, text, place, message, write, cli):
    out = cli(command, "architectures/llama.yaml", "--efficiency-file", write(text, "eff.yaml"))
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert "eff.yaml" + place in out.output and message in out.output, out.output


def test_a_user_entry_replaces_the_shipped_one_and_is_named(write):
    r = symcost.serve(symcost.load("architectures/llama.yaml"), efficiency_file=write(ENTRY, "eff.yaml"))
    d = r.numbers["decode"]
    assert d["seconds_predicted"] > d["seconds_bound"]
    assert any("matmuls at 0.5 of the dense peak" in n and "my run" in n for n in r.notes)
    assert any("fitted on fp8 matmuls; these run in bf16" in n for n in r.notes)


def test_hardware_without_an_entry_predicts_nothing_and_says_so():
    r = symcost.serve(symcost.load("architectures/llama.yaml"), hardware="l40s")
    assert r.numbers["tpot_seconds_predicted"] is None and r.numbers["throughput"]["seconds_predicted"] is None
    assert any("no efficiency entry for 'l40s'" in n for n in r.notes)


def test_the_serving_page_s_table_is_the_tool_s(throughputs):
    """docs/serve.md's table of the published runs: each row's bound, prediction and error as serve gives them."""
    from conftest import ROOT

    page = (ROOT / "docs" / "serve.md").read_text()
    rows = page.split("| model | hardware | tp |", 1)[1].split("\n\n", 1)[0].split("\n")[2:]
    assert len(rows) == len(TRTLLM_0_6_1)
    for line, run in zip(rows, TRTLLM_0_6_1):
        t = throughputs[run]
        predicted = t["tokens_per_second_per_gpu_predicted"]
        assert line == (f"| {run[0]} | {run[1]} {run[2]} | {run[3]} | {run[4]:,} | {run[5]:,} + {run[6]:,} | "
                        f"{run[7]:,} | {t['tokens_per_second_per_gpu_bound']:,.0f} | {predicted:,.0f} | "
                        f"{predicted / run[7] - 1:+.1%} | {run[8]} |")


@settings(max_examples=40, deadline=None)
@given(matmul=st.floats(0.05, 1), memory=st.floats(0.05, 1),
       runs=st.lists(st.tuples(st.floats(1e-4, 10), st.floats(1e-4, 10), st.floats(0, 1)), min_size=2, max_size=8))
def test_the_fit_recovers_the_shares_that_made_its_runs(matmul, memory, runs):
    """Runs timed by the rule itself (any mix, communication included) give back their shares; a prediction is
    never below the roofline bound of the same phase."""
    import numpy as np

    rows = np.array([(c, m) for c, m, _ in runs])
    assume(np.linalg.matrix_rank(rows / rows.max()) == 2 and np.linalg.cond(rows) < 1e4)  # the runs tell them apart
    entry = Efficiency(matmul=matmul, memory=memory, dtypes=["fp8"], fitted_on=["synthetic"], source="-", date="-")
    timed = [(c, m, k, entry.seconds(c, m, k)) for c, m, k in runs]
    assert all(abs(a / b - 1) < 1e-6 for a, b in zip(fit(timed), (matmul, memory)))
    assert all(t >= max(c, m) for c, m, _, t in timed)
