"""The predicted step time (symcost/plan/time.py): its parts are the plan's exact figures, read by hand — the FLOPs
a rank runs at the dense peak, the activation traffic from the bytes `memory` says a forward keeps (each written
once per forward run and read once in backward), the pipeline's bubble and the communication at the entry's shares."""

import pytest

import symcost
from conftest import arch
from symcost.plan.efficiency import NEUTRAL, Efficiency

ENTRY = Efficiency(matmul=0.8, memory=0.5, link=0.25, dtypes=["bf16"], fitted_on=["a test"], source="here", date="x")


def planned(recompute, efficiency=NEUTRAL, **settings):
    from symcost.plan.execution import Run, execution_of
    from symcost.plan.plan import plan
    from symcost.plan.system import hardware
    from symcost.precision import Precision

    gpus = settings.pop("gpus", None)
    ex = execution_of({"recompute": recompute, "attention": "eager", "global_batch": 4, **settings}, gpus,
                      Precision("bf16"))
    return plan(symcost.derive(arch("llama")), ex, hardware("a100-80gb"), "a100-80gb", {"seq_len": 256, "n_layers": 4},
                Run(), efficiency).numbers


@pytest.fixture(scope="module")
def kept():
    """A micro-batch's activation bytes on one GPU, as `memory` counts them (verified against PyTorch's saved tensors
    in tests/memory): without recomputation, and with selective recomputation."""
    return {mode: symcost.memory(arch("llama"), {"seq_len": 256, "n_layers": 4}, attention="eager", recompute=mode,
                                 precision="bf16").numbers["activation_bytes"] for mode in ("none", "selective")}


def test_the_traffic_is_what_a_forward_keeps_written_and_read(kept):
    """Without recomputation each kept byte is written once and read once; selective recomputation writes again
    what it dropped (the attention core's): 2 x none + (none - selective). Four micro-batches a step."""
    hbm = 2039e9  # the A100 80GB's bandwidth (hardware.yaml)
    none, selective = planned("none"), planned("selective")
    assert none["stage_memory_seconds"] * hbm == pytest.approx(4 * 2 * kept["none"], rel=1e-12)
    assert selective["stage_memory_seconds"] * hbm == pytest.approx(4 * (3 * kept["none"] - kept["selective"]),
                                                                     rel=1e-12)
    assert none["stage_compute_seconds"] * 312e12 == pytest.approx(float(none["rank_flops_per_step"]), rel=1e-12)
    full = planned("full")  # the blocks' forward runs twice: between two and three writes and reads of what it keeps
    assert 2 * 4 * kept["none"] < full["stage_memory_seconds"] * hbm < 3 * 4 * kept["none"]


def test_the_prediction_is_the_stage_at_the_entry_s_shares_stretched_by_the_bubble_then_the_links():
    n = planned("selective", ENTRY, gpus=8, tp=2, pp=4, sequence_parallel=True)
    stage = n["stage_compute_seconds"] / 0.8 + n["stage_memory_seconds"] / 0.5
    assert n["bubble_fraction"] == pytest.approx(3 / 4) and n["comm_seconds"] > 0
    assert n["stage_seconds_predicted"] == pytest.approx(stage, rel=1e-12)
    assert n["step_seconds_predicted"] == pytest.approx(stage * (1 + 3 / 4) + n["comm_seconds"] / 0.25, rel=1e-12)
    assert n["step_seconds_predicted"] > n["step_seconds_bound"]
    step = n["step_seconds_predicted"]
    assert n["mfu_predicted"] == pytest.approx(float(n["mfu_flops_per_step"]) / (8 * 312e12 * step))
