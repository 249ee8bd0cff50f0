"""The planner takes no number on trust: hardware files, plan's options and the API's run record
are typed strictly (finite, positive, bounded, no booleans or strings for numbers), each refusal one
line naming the file:line and field, or the option, with the value as given."""

import json
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch
from strategies import HOSTILE_NUMBERS

ENTRY = {"name": "mine", "tflops": {"bf16": 100}, "memory_GB": 80, "memory_GBps": 3350, "intra_node_GBps": 900,
         "gpus_per_node": 8, "inter_node_GBps": 50, "inter_node_source": "x", "source": "y", "date": "2026-12-06"}


def hardware_file(tmp_path, **change) -> str:
    """A file of one entry, `change`'s values written as given (tflops_bf16: the bf16 peak)."""
    entry = {k: json.dumps(v) if isinstance(v, str) else v for k, v in ENTRY.items()} | {"tflops": "{bf16: 100}"}
    for key, value in change.items():
        if key.startswith("tflops_"):
            entry["tflops"] = f"{{{key.removeprefix('tflops_')}: {value}}}"
        else:
            entry[key] = value
    path = tmp_path / "hw.yaml"
    lines = ["mine:"] + [f"  {k}: {v}" for k, v in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def plan_line(cli, *args):
    out = cli("plan", arch("llama"), "--gpus", "8", "--tp", "8", *args)
    assert out.exit_code == 2 and "Traceback" not in out.output and out.stderr.count("\n") == 1, out.output
    return out.stderr.strip()


@pytest.mark.parametrize("field, written, message", [
    ("memory_GBps", ".inf", "mine.memory_GBps: Input should be a finite number, got inf"),
    ("intra_node_GBps", ".inf", "mine.intra_node_GBps: Input should be a finite number, got inf"),
    ("gpus_per_node", "true", "mine.gpus_per_node: Input should be a valid integer, got True"),
    ("tflops_bf16", "true", "mine.tflops.bf16: Input should be a valid number, got True"),
    ("memory_GB", '"80"', "mine.memory_GB: Input should be a valid number, got '80'"),
    ("memory_GB", "1000000000.0", "mine.memory_GB: Input should be less than or equal to 1000000, got 1000000000.0"),
    ("memory_GB", "1e300", "mine.memory_GB: Input should be a valid number, got '1e300'"),  # YAML 1.2 reads a string
    ("tflops_bf16", ".inf", "mine.tflops.bf16: Input should be a finite number, got inf"),
    ("memory_GB", ".nan", "mine.memory_GB: Input should be a finite number, got nan"),
    ("memory_GB", "-80", "mine.memory_GB: Input should be greater than or equal to 0.001, got -80"),
    ("memory_GBps", "1.0e-308", "mine.memory_GBps: Input should be greater than or equal to 0.001, got 1e-308"),
])
def test_a_hardware_number_is_typed_strictly(cli, tmp_path, field, written, message):
    path = hardware_file(tmp_path, **{field: written})
    line = plan_line(cli, "--hardware", "mine", "--hardware-file", path)
    assert line.startswith(f"error: {path}:") and line.endswith(message), line


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["memory_GB", "memory_GBps", "intra_node_GBps", "inter_node_GBps", "gpus_per_node",
                              "tflops_bf16"]), value=HOSTILE_NUMBERS)
def test_any_hostile_hardware_number_is_refused_or_plans_finitely(tmp_path, field, value):
    entry = json.loads(json.dumps(ENTRY))
    if field == "tflops_bf16":
        entry["tflops"]["bf16"] = value
    else:
        entry[field] = value
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump({"mine": entry}))
    try:
        p = symcost.plan(arch("llama"), gpus=8, tp=8, hardware="mine", hardware_file=str(tmp_path / "hw.yaml"))
    except symcost.SpecError as e:
        assert "\n" not in str(e) and "hw.yaml" in str(e)
        return
    assert all(math.isfinite(float(v)) for v in p.numbers.values() if isinstance(v, (int, float)))
    json.loads(json.dumps(p.to_dict()), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))


@pytest.mark.parametrize("option, message", [
    (["--price", "inf"], "error: --price 'inf': expected a finite number such as 0.4 or 2.5"),
    (["--price", "1e309"], "error: --price '1e309': expected a finite number such as 0.4 or 2.5"),
    (["--tokens-per-second", "inf"], "error: --tokens-per-second 'inf': expected a finite number such as 0.4 or 2.5"),
    (["--tokens", "2.5"], "error: --tokens '2.5': expected a whole number below 10^18, e.g. 1024 or 7e9"),
    (["--tokens", "1e-5"], "error: --tokens '1e-5': expected a whole number below 10^18, e.g. 1024 or 7e9"),
    (["--mfu", "nan"], "error: --mfu 'nan': expected a finite number such as 0.4 or 2.5"),
    (["--mfu", "1.5"], "error: --mfu 1.5: expected a number in (0, 1]"),
    (["--price", "1e7"], "error: --price 10000000.0: expected a finite positive number up to 1e+06"),
    (["--tokens-per-second", "1e300"], "error: --tokens-per-second '1e300': expected a finite number such as 0.4 or 2.5"),
    (["--tokens-per-second", "1e16"], "error: --tokens-per-second 1e+16: expected a finite positive number up to 1e+15"),
    (["--tokens-per-second", "1e13"], "error: --tokens-per-second 1e+13: would mean 5.82e+07 of the 8 GPUs' dense "
     "peak (HFU above 1); give the whole run's measured tokens per second"),
    (["--offload", "optimizer"], "error: offload: offloading moves each rank's ZeRO shard to the host: give zero 1, "
     "2 or 3"),
    (["--offload", "all", "--zero", "2"], "error: offload: offloading the weights (all) moves ZeRO-3's weight "
     "shards: give zero 3"),
    (["--offload", "optimizer", "--zero", "1", "--search"], "error: --search ranks layouts with every model state on "
     "the GPUs: plan a layout with --offload"),
    (["--efficiency-file", "eff.yaml", "--search"], "error: --search ranks layouts by their roofline bound, not by a "
     "prediction: plan a layout it finds with --efficiency-file"),
    (["--ep-imbalance", "0.5"], "error: --ep-imbalance 0.5: expected the busiest expert-parallel rank's routed tokens "
     "over the mean, a number in [1, 1000]"),
    (["--ep-imbalance", "2"], "error: --ep-imbalance: routing imbalance stretches the busiest expert-parallel rank; "
     "give ep > 1"),
])
def test_plan_options_are_finite_and_bounded(cli, option, message):
    assert plan_line(cli, *option) == message
    out = cli("plan", arch("llama"), "--tp", "1000000000")
    assert out.stderr == "error: --tp 1000000000: Input should be less than or equal to 10000000\n"


@pytest.mark.parametrize("settings, message", [
    (dict(gpus=8, tp=True), "tp True: Input should be a valid integer"),
    (dict(gpus=8, price=float("inf")), "price inf: expected a finite positive number up to 1e+06"),
    (dict(gpus=10**30), "gpus 1000000000000000000000000000000: expected a positive integer up to 10,000,000"),
    (dict(gpus=8, tokens=2.5), "tokens 2.5: expected a whole number of tokens below 10^18, e.g. 2e12"),
    (dict(gpus=8, overlap=-0.1), "overlap -0.1: expected a number in [0, 1]"),
    (dict(gpus=8, micro_batch=0), "micro_batch 0: Input should be greater than or equal to 1"),
])
def test_the_api_run_and_execution_records_refuse_what_the_options_refuse(settings, message):
    with pytest.raises(symcost.SpecError) as e:
        symcost.plan(arch("llama"), **settings)
    assert str(e.value) == message


def test_search_and_smallest_are_bounded(cli):
    assert plan_line(cli, "--search", "--top", "1000000000") == "error: --top 1000000000: expected an integer from 1 " \
        "to 50 (each is planned exactly)"
    out = cli("plan", arch("llama"), "--gpus", "1000000000", "--smallest", "tp,pp")
    assert out.stderr.strip() == "error: --gpus 1000000000: expected a positive integer up to 10,000,000"


@pytest.mark.slow  # each draw ranks every layout of up to 65,536 GPUs
@settings(max_examples=8, deadline=None)
@given(name=st.sampled_from(["llama", "mixtral", "deepseek_v3", "mamba2", "gemma2"]),
       gpus=st.sampled_from([1, 6, 96, 1000, 4096, 6144, 65536]), batch=st.sampled_from([None, 3, 4096, 65536]))
def test_a_search_answers_or_refuses_in_one_line_and_every_row_it_plans_is_valid(name, gpus, batch):
    """The vectorised prefilter holds every rule the exact plan checks (tp, sp, cp, ep divisibility):
    the rows a search plans exactly are its best rows, none refused."""
    try:
        found = symcost.plan_search(arch(name), gpus=gpus, global_batch=batch, top=3)
    except symcost.SpecError as e:
        assert "\n" not in str(e)
        return
    assert len(found.best) == min(3, len(found.rows))
    for row, p in zip(found.rows, found.best):
        assert (p.execution.tp, p.execution.pp, p.execution.dp) == (row["tp"], row["pp"], row["dp"])
