"""plan: per-GPU memory, communication, time and cost on a cluster. Published tables and formulas
replayed (Narayanan et al. 2021 Table 1, its FLOPs and parameter equations, ZeRO's partition table,
Megatron's bytes per parameter), and every refusal (test_schedule.py: the pipeline schedules)."""

import itertools
import json
import math
from fractions import Fraction

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from symcost.errors import SpecError
from conftest import MTP_SPEC, arch
from published import DATA, llama2_7b_params
from strategies import FINETUNES
from symcost.plan.execution import Execution, Run
from symcost.precision import Precision
from symcost.plan.system import catalog

GPT = arch("megatron_gpt")


# --- the hardware catalog ---------------------------------------------------------------------

# (entry, dense BF16 TFLOP/s, the datasheet's figure with 2:4 sparsity): dense is half of it
DENSE = {"a100-40gb": (312, 624), "a100-80gb": (312, 624), "h100-sxm": (989.5, 1979), "h100-pcie": (756.5, 1513),
         "h200": (989.5, 1979), "b200": (2250, 4500), "mi300x": (1307.4, 2614.9), "mi325x": (1307.4, 2614.9),
         "l4": (121, 242),
         "l40s": (362.05, 733), "rtx-4090": (165.2, 330.4)}


def test_catalog_has_every_part_the_issue_names_with_a_source_and_date():
    parts = catalog()
    for key in (*DENSE, "tpu-v5e", "tpu-v5p", "tpu-v6e"):
        entry = parts[key]
        assert entry.source.startswith("https://") and entry.date and entry.inter_node_source
        assert entry.tflops["bf16"] > 0 and entry.memory_GB > 0 and entry.memory_GBps > 0


@pytest.mark.parametrize("key", sorted(DENSE))
def test_catalog_peaks_are_dense_not_sparse(key):
    dense, sparse = DENSE[key]
    assert catalog()[key].tflops["bf16"] == dense
    assert 1.95 < sparse / dense < 2.05  # as printed: L40S's sheet gives 362.05 dense, 733 sparse


def test_google_published_tpu_figures():  # cloud.google.com/tpu/docs/v5e, v5p and v6e
    v5e, v5p, v6e = catalog()["tpu-v5e"], catalog()["tpu-v5p"], catalog()["tpu-v6e"]
    assert (v5e.tflops["bf16"], v5e.memory_GB, v5e.memory_GBps) == (197, 16, 819)
    assert (v5p.tflops["bf16"], v5p.memory_GB, v5p.memory_GBps) == (459, 95, 2765)
    assert (v6e.tflops["bf16"], v6e.tflops["int8"], v6e.memory_GB, v6e.memory_GBps, v6e.intra_node_GBps) == (
        918, 1836, 32, 1638, 800)


def test_aws_published_trainium2_figures():
    """AWS Neuron's Trainium2 pages (trainium2.rst, trn2-arch.rst): 667 BF16/FP16/TF32 and 1,299 FP8 dense TFLOPS
    (2,563 with sparsity), 181 FP32; 96 GiB at 2.9 TB/s; 1,024 GB/s of NeuronLink-v3 a chip inside a 16-chip
    trn2.48xlarge, whose EFAv3 3,200 Gb/s is 25 GB/s a chip."""
    t = catalog()["trainium2"]
    assert (t.tflops["bf16"], t.tflops["fp8"], t.tflops["fp32"]) == (667, 1299, 181)
    assert (t.memory_bytes, t.memory_GBps, t.intra_node_GBps, t.gpus_per_node) == (96 * 2**30, 2900, 1024, 16)
    assert t.inter_node_GBps == 3200 / 8 / 16


def test_host_links_are_the_datasheets_pcie_one_way():
    """Gen4 x16: 64 GB/s both ways on the A100, L4, L40S and RTX 4090 sheets; Gen5 x16: 128 GB/s on the
    H100, H200 and MI300X/MI325X ones; half of it each way. No figure, no entry (TPUs, B200)."""
    links = {k: e.host_link_GBps for k, e in catalog().items()}
    assert {k for k, v in links.items() if v == 32} == {"a100-40gb", "a100-80gb", "l4", "l40s", "rtx-4090"}
    assert {k for k, v in links.items() if v == 64} == {"h100-sxm", "h100-pcie", "h200", "mi300x", "mi325x"}
    assert all(links[k] is None for k in ("b200", "tpu-v5e", "tpu-v5p", "tpu-v6e", "trainium2"))


def test_a_users_hardware_file_adds_entries(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(
        "my-gpu:\n  name: Mine\n  tflops: {bf16: 100}\n  memory_GB: 24\n  memory_GBps: 1000\n  intra_node_GBps: 64\n"
        "  gpus_per_node: 4\n  inter_node_GBps: 10\n  inter_node_source: PCIe\n  source: https://example.com\n"
        "  date: '2026-01-01'\n")
    p = symcost.plan(arch("transformer"), hardware="my-gpu", hardware_file=str(f))
    assert p.hardware.name == "Mine" and p.numbers["peak_flops"] == 100e12


# --- published tables and formulas ------------------------------------------------------------

# Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters Using
# Megatron-LM", Table 1 (weak scaling on Selene, A100 80GB; V = 51,200, s = 2,048):
# params (billions), heads, hidden, layers, tensor, pipeline, GPUs, batch, achieved TFLOP/s per GPU
TABLE_1 = [
    (1.7, 24, 2304, 24, 1, 1, 32, 512, 137),
    (3.6, 32, 3072, 30, 2, 1, 64, 512, 138),
    (7.5, 32, 4096, 36, 4, 1, 128, 512, 142),
    (18.4, 48, 6144, 40, 8, 1, 256, 1024, 135),
    (39.1, 64, 8192, 48, 8, 2, 512, 1536, 138),
    (76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140),
    (145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148),
    (310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155),
    (529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163),
    (1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163),
]


@pytest.mark.parametrize("row", TABLE_1, ids=[f"{r[0]}B" for r in TABLE_1])
def test_narayanan_table_1_replayed(row):
    billions, heads, h, l, t, p, n, B, achieved = row
    s, V = 2048, 51200
    sizes = {"d_model": h, "n_heads": heads, "n_layers": l}
    params = symcost.evaluate(GPT, sizes).total["params"]
    assert round(params / 1e9, 1) == billions  # the table's parameter column
    assert params == 12 * l * h * h + 13 * l * h + (V + s) * h + 2 * h  # Eq. 2, plus the final LayerNorm
    # the layout as run, with activation recomputation: accepted, and it fits 80 GB
    plan = symcost.plan(GPT, sizes, hardware="a100-80gb", gpus=n, tp=t, pp=p, global_batch=B, recompute="full",
                        overlap=1.0)
    assert plan.fits
    # Eq. 3: the FLOPs per iteration, recomputation included, are exactly what the hardware runs
    F = Fraction(96 * B * s * l * h * h) * (1 + Fraction(s, 6 * h) + Fraction(V, 16 * l * h))
    assert plan.numbers["hardware_flops_per_step"] == F
    # the roofline bound (all communication overlapped) is below the measured step time
    assert plan.numbers["step_seconds_bound"] < float(F) / (n * achieved * 1e12)


@given(h=st.sampled_from([64, 128, 256]), l=st.integers(1, 8), B=st.integers(1, 16), s=st.sampled_from([128, 256]))
@settings(max_examples=25, deadline=None)
def test_megatron_model_flops_are_72_bslh2(h, l, B, s):
    """Narayanan et al. 2021, Sec. 5.1: without recomputation 72 B s l h^2 (1 + s/6h + V/12lh),
    exactly, under the pytorch convention (attention counted in full)."""
    V = 51200
    plan = symcost.plan(GPT, {"d_model": h, "n_heads": 4, "n_layers": l, "seq_len": s, "max_pos": s},
                        global_batch=B, micro_batch=B)
    assert plan.numbers["model_flops_per_step"] == Fraction(72 * B * s * l * h * h) * (
        1 + Fraction(s, 6 * h) + Fraction(V, 12 * l * h))


def _state(plan):
    return plan.numbers["weights_bytes"] + plan.numbers["gradient_bytes"] + plan.numbers["optimizer_bytes"]


@given(dp=st.sampled_from([1, 2, 4, 8, 64]), zero=st.integers(0, 3))
@settings(max_examples=20, deadline=None)
def test_zero_partition_table(dp, zero):
    """Rajbhandari et al. 2020, Table 1 / Fig. 1: with mixed-precision Adam (K = 12: fp32 master
    weights and two moments) and Psi parameters, a data-parallel rank holds (2 + 2 + K) Psi, then
    2 Psi + 2 Psi + K Psi / N_d, 2 Psi + (2 + K) Psi / N_d and (2 + 2 + K) Psi / N_d."""
    psi = symcost.evaluate(arch("llama")).total["params"]
    plan = symcost.plan(arch("llama"), dp=dp, zero=zero, global_batch=dp)
    K, N = 12, dp
    expected = [(2 + 2 + K) * psi, 2 * psi + 2 * psi + Fraction(K * psi, N), 2 * psi + Fraction((2 + K) * psi, N),
                Fraction((2 + 2 + K) * psi, N)][zero]
    assert _state(plan) == expected


@given(dp=st.sampled_from([1, 2, 8, 32]))
@settings(max_examples=8, deadline=None)
def test_megatron_bytes_per_parameter(dp):
    """Megatron-LM's theoretical memory (megatron/training/theoretical_memory_usage.py): 18 bytes per
    parameter (bf16 weights, fp32 gradients, fp32 master weights and Adam), 6 + 12/dp with the
    distributed optimizer."""
    psi = symcost.evaluate(arch("llama")).total["params"]
    precision = symcost.precision.Precision("bf16", grads="fp32")
    plain = symcost.plan(arch("llama"), dp=dp, global_batch=dp, precision=precision)
    sharded = symcost.plan(arch("llama"), dp=dp, global_batch=dp, zero=1, precision=precision)
    assert _state(plain) == 18 * psi
    assert _state(sharded) == (6 + Fraction(12, dp)) * psi


# --- one GPU is what `memory` says ------------------------------------------------------------

@pytest.mark.parametrize("name", ["llama"] + [pytest.param(n, marks=pytest.mark.slow) for n in  # an encoder-decoder too:
                                              ("transformer_base", "transformer", "mixtral", "mistral", "megatron_gpt")])
@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
@pytest.mark.parametrize("attention", ["eager", "flash"])
def test_one_gpu_is_the_memory_report(name, recompute, attention):
    sizes = {"seq_len": 64, "batch": 3}
    m = symcost.memory(arch(name), sizes, recompute=recompute, attention=attention)
    p = symcost.plan(arch(name), {"seq_len": 64}, micro_batch=3, recompute=recompute, attention=attention)
    for key in ("weights_bytes", "gradient_bytes", "activation_bytes"):
        assert p.numbers[key] == m.numbers[key], key
    assert p.numbers["optimizer_bytes"] == m.numbers["optimizer_bytes"]


@given(tp=st.sampled_from([1, 2, 4, 8, 16, 32]), pp=st.sampled_from([1, 2, 4, 8, 32]))
@settings(max_examples=25, deadline=None)
def test_weights_on_the_first_and_last_stage(tp, pp):
    """Llama 2 7B (d 4096, MLP 11008, vocabulary 32000, 32 layers, untied head): each tp rank holds
    1/tp of every projection and table and whole norms; the first stage the table, the last the
    final norm and the head, each L/pp layers."""
    d, f, V, L = 4096, 11008, 32000, 32
    layer = Fraction(4 * d * d + 3 * d * f, tp) + 2 * d
    first, last = Fraction(V * d, tp) + L // pp * layer, L // pp * layer + d + Fraction(V * d, tp)
    stages = symcost.plan(arch("llama"), tp=tp, pp=pp).per_stage
    if pp == 1:
        assert stages["only"]["weights_bytes"] == 2 * (first + last - L * layer)
    else:
        assert (stages["first"]["weights_bytes"], stages["last"]["weights_bytes"]) == (2 * first, 2 * last)


# --- communication ----------------------------------------------------------------------------

def test_collective_formulas():
    from symcost.plan import collectives as c

    assert c.ring_all_reduce(8, 4) == 12 and c.ring_all_gather(8, 4) == 6 and c.ring_reduce_scatter(8, 4) == 6
    assert c.all_to_all(8, 4) == 6 and c.send_recv(8) == 8
    assert c.ring_all_reduce(8, 1) == 0


def _by(plan, **match):
    return [(r, payload, sent) for r, payload, sent in plan.comm
            if all(getattr(r, k) == v for k, v in match.items())]


def test_tensor_parallel_collectives_per_layer():
    """Megatron: per layer and micro-batch, one all-reduce of b s h in forward and one in backward
    per region (attention, MLP); with sequence parallelism each becomes an all-gather and a
    reduce-scatter, plus the re-gather of the saved input."""
    sizes = {"seq_len": 128}
    p = symcost.plan(arch("llama"), sizes, gpus=8, tp=8, micro_batch=2)
    b, s, h, L = 2, 128, 4096, 32
    for region in ("attention", "mlp"):
        for passes in ("forward", "backward"):
            (r, payload, sent), = [x for x in _by(p, collective="all_reduce", passes=passes) if x[0].path.endswith(region)]
            assert payload == b * s * h * 2 and r.calls.xreplace(Execution(tp=8, micro_batch=2).values()).subs(
                sympy.Symbol("n_layers", integer=True, positive=True), L) == L
            assert sent == 2 * 7 * payload * L / 8
    sp = symcost.plan(arch("llama"), sizes, gpus=8, tp=8, micro_batch=2, sequence_parallel=True)
    assert not _by(sp, collective="all_reduce")
    regathers = [r for r, _, _ in _by(sp, collective="all_gather", passes="backward") if r.note]
    assert len(regathers) == 3  # attention, MLP and the head re-gather their saved input


@pytest.mark.parametrize("zero,expected", [(0, {("all_reduce", "step")}),
                                           (1, {("reduce_scatter", "step"), ("all_gather", "step")}),
                                           (2, {("reduce_scatter", "backward"), ("all_gather", "step")}),
                                           (3, {("all_gather", "forward"), ("all_gather", "backward"),
                                                ("reduce_scatter", "backward")})])
def test_data_parallel_collectives_by_zero_stage(zero, expected):
    p = symcost.plan(arch("llama"), gpus=16, zero=zero, global_batch=32)
    got = {(r.collective, r.passes) for r, _, _ in _by(p, dim="dp")}
    assert got == expected
    grads = p.numbers["gradient_bytes"] * (16 if zero >= 2 else 1)
    if zero == 0:
        (_, payload, sent), = _by(p, dim="dp")
        assert payload == grads and sent == 2 * 15 * grads / 16


def test_pipeline_and_expert_collectives():
    p = symcost.plan(arch("mixtral"), {"seq_len": 256}, gpus=64, tp=2, pp=4, ep=8, global_batch=64)
    pp = _by(p, dim="pp")
    assert pp and all(r.collective == "send_recv" for r, _, _ in pp)
    ep = _by(p, dim="ep")
    assert {r.collective for r, _, _ in ep} == {"all_to_all"}
    payload = 1 * 256 * 2 * 4096 * 2  # micro-batch x seq x top_k x d_model x bf16
    assert all(x[1] == payload for x in ep)


def test_routing_imbalance_stretches_the_busiest_rank_s_experts_and_all_to_all():
    """ep_imbalance 1.5: the rank's routed experts run half as many FLOPs again — Mixtral's, by hand: 256 tokens x 32
    layers x 3 (forward and backward) x 2 x 3 SwiGLU matrices of 4,096 x 14,336 x top-2 — and its expert all-to-all
    takes half as long again at the node's 450 GB/s (an H100's NVLink, one way); nothing else changes."""
    sizes, layout = {"seq_len": 256}, dict(gpus=16, ep=8, global_batch=16)
    even = symcost.plan(arch("mixtral"), sizes, **layout)
    skewed = symcost.plan(arch("mixtral"), sizes, **layout, ep_imbalance=1.5)
    flops = lambda p: {r["kind"]: r["flops"] for r in p.roofline}
    extra = {k: v - flops(even)[k] for k, v in flops(skewed).items()}
    assert extra == {**dict.fromkeys(extra, 0.0), "moe": 0.5 * 256 * 32 * 3 * 2 * 3 * 4096 * 14336 * 2}
    all_to_all = sum(float(sent) for r, _, sent in _by(even, dim="ep"))
    assert skewed.numbers["comm_seconds"] - even.numbers["comm_seconds"] == pytest.approx(0.5 * all_to_all / 450e9)
    assert {k: v for k, v in skewed.numbers.items() if k.endswith("_bytes")} == {
        k: v for k, v in even.numbers.items() if k.endswith("_bytes")}
    assert any("routing imbalance 1.5 (given)" in n for n in skewed.notes)
    with pytest.raises(symcost.SpecError, match="give ep > 1"):
        symcost.plan(arch("mixtral"), sizes, gpus=16, global_batch=16, ep_imbalance=1.5)


@pytest.mark.parametrize("sp", [False, True])
def test_each_tensor_parallel_rank_sends_its_slice_to_the_next_stage(sp):
    """Megatron-LM sends 1/tp of a stage's output from each tp rank: a sequence shard under sequence parallelism, or
    without it a slice that the receiving ranks all-gather over the node (Narayanan et al. 2021, Sec. 4.1). The first
    rank of 1F1B sends its 8 micro-batches' outputs and receives their gradients."""
    p = symcost.plan(arch("llama"), {"seq_len": 256}, gpus=16, tp=2, pp=4, global_batch=16, sequence_parallel=sp)
    assert p.stage == "first" and p.execution.microbatches == 8
    whole = 1 * 256 * 4096 * 2  # micro-batch x seq x d_model x bf16
    assert [(r.passes, payload, sent) for r, payload, sent in _by(p, dim="pp")] == [("forward", whole // 2,
                                                                                    8 * whole // 2)]
    gathers = [(r.dim, r.passes, payload, sent) for r, payload, sent in _by(p, path="stage boundary", dim="tp")]
    assert gathers == ([] if sp else [("tp", "backward", whole, 8 * whole // 2)])  # a ring all-gather over 2 ranks


# --- offloading to the host ------------------------------------------------------------------------

LLAMA_2_7B = 6_738_415_616  # parameters (architectures/llama.yaml)


@pytest.mark.parametrize("zero, offload, nodes, gpu_states, host_per_node", [
    (2, "optimizer", 1, lambda P, N: 2 * P, lambda P, N: 16 * P),  # estimate_zero2_...
    *((3, "optimizer", nodes, lambda P, N: 2 * P // N, lambda P, N: 16 * P) for nodes in (1, 2)),  # zero_init
    *((3, "all", nodes, lambda P, N: 0, lambda P, N: 18 * P) for nodes in (1, 2)),
])
def test_offloaded_model_states_are_deepspeed_s_estimates(zero, offload, nodes, gpu_states, host_per_node):
    """DeepSpeed's estimators (deepspeed/runtime/zero/stage_1_and_2.py and stage3.py,
    estimate_zero2/3_model_states_mem_needs, fp16 weights): with the optimizer offloaded the GPU holds 2 P bytes of
    weights (ZeRO-2) or its 2 P / N shard (ZeRO-3; the estimator adds 4 bytes of the largest layer, a working set),
    nothing with the weights offloaded too; the host of each node 16 (18) P / nodes bytes (before the estimators'
    1.5 allowance for buffers; ZeRO-2's holds a node's only, where its init's 4 bytes a GPU stay below 16)."""
    gpus = 8 * nodes
    p = symcost.plan(arch("llama"), gpus=gpus, zero=zero, offload=offload, global_batch=gpus)
    n = p.numbers
    assert n["weights_bytes"] + n["gradient_bytes"] + n["optimizer_bytes"] == gpu_states(LLAMA_2_7B, gpus)
    assert n["host_bytes"] * 8 == host_per_node(LLAMA_2_7B, gpus) // nodes
    assert n["peak_bytes"] == n["total_bytes"] + n["transient_bytes"]  # the host's bytes are not the GPU's


@given(tp=st.sampled_from([1, 2, 4]), pp=st.sampled_from([1, 2]), dp=st.sampled_from([1, 2, 4]),
       zero=st.integers(1, 3), everything=st.booleans())
@settings(max_examples=12, deadline=None)
def test_offloading_moves_bytes_to_the_host_and_nothing_else(tp, pp, dp, zero, everything):
    """Against the same layout kept on the GPUs: the host holds the optimizer states (12 bytes a parameter of the
    rank's shard under Adam) and 4 bytes of fp32 gradient for each of them, and the weights too when offloaded; the
    GPU keeps its ZeRO-1 gradients and, unless offloaded, its weights; activations do not move."""
    offload = "all" if everything and zero == 3 else "optimizer"
    layout = dict(gpus=tp * pp * dp, tp=tp, pp=pp, zero=zero, global_batch=2 * dp)
    kept = symcost.plan(arch("llama"), {"n_layers": 4}, **layout).numbers
    moved = symcost.plan(arch("llama"), {"n_layers": 4}, **layout, offload=offload).numbers
    assert moved["host_bytes"] == kept["optimizer_bytes"] * 16 // 12 + (kept["weights_bytes"] if offload == "all"
                                                                         else 0)
    assert moved["weights_bytes"] == (0 if offload == "all" else kept["weights_bytes"])
    assert moved["gradient_bytes"] == (kept["gradient_bytes"] if zero == 1 else 0) and moved["optimizer_bytes"] == 0
    assert moved["activation_bytes"] == kept["activation_bytes"]


@pytest.mark.parametrize("zero, offload", [(1, "optimizer"), (2, "optimizer"), (3, "all")])
def test_offload_copies_cross_the_host_link(zero, offload):
    """The rank's gradient shard goes out once a step (ZeRO-1) or each of the 4 micro-batches (ZeRO-2, 3), its
    updated weights come back once — or, offloaded, its weights come in for each forward and backward; the time
    counts them at the host link's one-way 32 GB/s (an A100's PCIe Gen4)."""
    p = symcost.plan(arch("llama"), gpus=8, zero=zero, offload=offload, global_batch=32, hardware="a100-80gb")
    shard = 2 * LLAMA_2_7B // 8  # bf16 bytes of the rank's eighth
    got = sorted((r.passes, r.path, payload, sent) for r, payload, sent in _by(p, dim="host"))
    out = ("backward", "gradients (to the host)", shard, shard * (1 if zero == 1 else 4))
    expected = [out, ("step", "weights (updated, from the host)", shard, shard)] if offload == "optimizer" else [
        out, ("backward", "weights (from the host)", shard, 4 * shard), ("forward", "weights (from the host)", shard,
                                                                         4 * shard)]
    assert got == sorted(expected)
    others = sum(float(sent) / 300e9 for r, _, sent in p.comm if r.dim != "host")  # ZeRO's, inside the node
    assert p.numbers["comm_seconds"] == pytest.approx(others + sum(e[3] for e in expected) / 32e9, rel=1e-12)


# --- time, cost and what they say about themselves ---------------------------------------------

def test_time_is_labelled_an_estimate_and_costs_follow(cli):
    r = cli("plan", arch("llama"), "--gpus", "8", "--tp", "8", "--tokens", "1e9", "--price", "2", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["time"]["estimate"] is True and data["time"]["mfu_assumed"] == 0.4
    assert any("not a measurement" in n for n in data["notes"]) and any("Llama 3" in n for n in data["notes"])
    t = data["training"]
    assert t["steps"] == -(-10**9 // 4096) and t["gpu_hours"] == pytest.approx(t["train_seconds"] * 8 / 3600)
    assert data["cost"]["total"] == pytest.approx(t["gpu_hours"] * 2)
    assert set(data["per_gpu"]) == {"weights_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes",
                                    "total_bytes", "transient_bytes", "peak_bytes"}
    for key, text in data["formulas"].items():  # each formula gives its number
        e = sympy.parse_expr(text)
        values = {**data["execution"], "microbatches": data["execution"]["microbatches"], "v": 1,
                  "micro_batch": 1, **symcost.evaluate(arch("llama")).dims}
        assert e.subs({s: values[str(s)] for s in e.free_symbols}) == data["per_gpu"][key], key


def test_measured_throughput_gives_mfu_and_hfu():
    p = symcost.plan(arch("megatron_gpt"), {"n_layers": 4}, gpus=8, tp=8, recompute="full", tokens_per_second=2048)
    n = p.numbers
    peak = 8 * 989.5e12
    assert n["mfu_measured"] == pytest.approx(float(n["model_flops_per_step"]) / 2048 * 2048 / peak)
    assert n["hfu_measured"] > n["mfu_measured"]  # recomputation is work the model does not count


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--tp", "3"], "tp 3 does not divide vocab = 32000; pad it as Megatron-LM does, with vocab_multiple "
                    "128"),
    (["--tp", "64"], "tp 64 does not divide heads = 32"),
    (["--pp", "64"], "32 repeated blocks do not split evenly into pp x v = 64"),
    (["--pp", "3"], "do not split evenly"),
    (["--gpus", "10", "--tp", "4"], "gpus 10 is not a multiple of tp x pp x cp = 4"),
    (["--gpus", "16", "--tp", "4", "--dp", "2"], "gpus 16 != tp x pp x dp x cp"),
    (["--hardware", "h900"], "unknown hardware 'h900'; known: a100-40gb"),
    (["--ep", "2", "--gpus", "2"], "no moe layer"),
    (["--ep", "2"], "ep 2 must divide dp x cp = 1"),
    (["--cp", "3", "--set", "seq_len=4096"], "seq_len 4096 does not split evenly over 3 ranks"),
    (["--virtual-stages", "2"], "virtual stages interleave a pipeline"),
    (["--global-batch", "3", "--dp", "2"], "do not split into micro-batches"),
    (["--headroom", "1"], "--headroom 1.0: expected the share of memory kept free, a number in [0, 1)"),
    (["--headroom", "-0.1"], "--headroom -0.1: expected the share of memory kept free"),
])
def test_bad_execution_is_one_message(cli, args, message):
    r = cli("plan", arch("llama"), *args)
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output + r.stderr


def test_tp_not_dividing_a_hidden_size_names_the_field(cli, write):
    spec = write("name: s\ndims: {d: 64, seq_len: 8}\nlayers:\n  - mlp: {dim: d, hidden: 96}\n")
    r = cli("plan", spec, "--tp", "64")
    assert r.exit_code == 2 and "tp 64 does not divide hidden = 96" in r.stderr and "spec.yaml:4" in r.stderr


def test_ep_not_dividing_experts(cli):
    r = cli("plan", arch("mixtral"), "--gpus", "48", "--ep", "3")
    assert r.exit_code == 2 and "ep 3 does not divide 8 experts" in r.stderr


def test_a_layer_type_without_a_tensor_parallel_rule_is_refused(cli):
    r = cli("plan", arch("resnet50"), "--tp", "2")
    assert r.exit_code == 2 and "no tensor-parallel rule" in r.stderr and "run this spec with tp 1" in r.stderr


def test_mla_passes_its_keys_and_values_round_the_ring():
    """Before: MLA sent nothing under cp, and `--search` ranked cp 2048 (two tokens a rank) first for
    DeepSeek-V3. Megatron-Core runs MLA's core as attention over the keys and values kv_b_proj
    expands, every head's: 128 x (128 + 64) + 128 x 128 values a token (DeepSeek-V3), which ring
    attention passes cp - 1 times forward and twice as often backward (their gradients too)."""
    seq, cp = 4096, 4
    p = symcost.plan(arch("deepseek_v3"), {"seq_len": seq}, gpus=256, cp=cp, ep=8)
    ring = [(r, payload) for r, payload, _ in p.comm if r.dim == "cp"]
    assert ring and all(r.path.endswith(".mla") for r, _ in ring)
    assert {payload for _, payload in ring} == {seq // cp * 128 * (128 + 64 + 128) * 2}  # bf16, one sequence
    at = {**p.execution.values(), sympy.Symbol("n_dense", integer=True, positive=True): 3}  # 3 dense layers
    calls = {r.passes: sympy.sympify(r.calls).xreplace(at) for r, _ in ring if r.path == ring[0][0].path}
    assert calls == {"forward": 3 * (cp - 1), "backward": 2 * 3 * (cp - 1)}
    best = symcost.plan_search(arch("deepseek_v3"), gpus=2048, top=1).rows[0]
    assert best["cp"] <= 2  # 2,048 of its 4,096 tokens a rank at least, where the ring's traffic counts


@pytest.mark.parametrize("name", ["transformer_base", "clip"])
def test_a_layer_reading_other_tokens_without_a_ring_rule_is_not_split_by_cp(cli, name):
    """Cross-attention reads the encoder's tokens, a convolution its neighbours: cp would have to pass
    them, which no rule here says how; refused by name, never planned with no communication."""
    r = cli("plan", arch(name), "--gpus", "2", "--cp", "2", "--global-batch", "1")
    assert r.exit_code == 2 and "layers read other tokens" in r.stderr and "run this spec with cp 1" in r.stderr


@pytest.mark.parametrize("name", ["lstm", "mamba", "mamba2"])
def test_a_state_carried_along_the_sequence_is_not_split_by_cp(cli, name):
    """A recurrent or state-space layer's next token needs the last one's state: cp ranks each
    holding a share of the sequence would run one after another, which no rule models. cp > 1
    is refused at the layer, and the search keeps cp at 1."""
    from symcost.plan.search import search

    line = next(i for i, text in enumerate(open(arch(name)), 1) if f"- {name}:" in text)  # the layer's own line
    r = cli("plan", arch(name), "--gpus", "8", "--cp", "2", "--global-batch", "8")
    assert r.exit_code == 2 and f"{name}.yaml:{line}:" in r.stderr, r.stderr
    assert "carry a state from token to token" in r.stderr and "run this spec with cp 1" in r.stderr
    assert cli("plan", arch(name), "--gpus", "8", "--global-batch", "8").exit_code in (0, 1)
    found = search(symcost.derive(arch(name)), 64, {}, global_batch=64, top=1)  # rows: every fitting layout
    assert found.evaluated and {r["cp"] for r in found.rows} == {1}


def test_full_width_qk_norm_is_not_split_by_tp(cli, write):
    """OLMo 2's Q/K norms take statistics over every head: a tp rank holding some heads cannot
    compute them alone. tp > 1 is refused, and the search keeps tp at 1."""
    spec = write("name: s\ndims: {d: 64, seq_len: 8}\nlayers:\n  - attention: {dim: d, heads: 8, qk_norm: full}\n")
    r = cli("plan", spec, "--tp", "2")
    assert r.exit_code == 2 and "qk_norm: full" in r.stderr and "spec.yaml:4" in r.stderr, r.stderr
    assert cli("plan", spec, "--tp", "1").exit_code == 0
    searched = json.loads(cli("plan", spec, "--gpus", "8", "--search", "--format", "json").stdout)
    assert {row["tp"] for row in searched["best"] + searched["pareto_front"]} == {1}
    per_head = write("name: s\ndims: {d: 64, seq_len: 8}\nlayers:\n  - attention: {dim: d, heads: 8, qk_norm: true}\n")
    searched_per_head = json.loads(cli("plan", per_head, "--gpus", "8", "--search", "--format", "json").stdout)
    assert searched["evaluated"] < searched_per_head["evaluated"]  # the tp > 1 candidates are not among them


def test_a_plan_that_does_not_fit_exits_1_with_the_sizes(cli):
    r = cli("plan", arch("llama"), "--hardware", "rtx-4090")
    assert r.exit_code == 1 and "does not fit:" in r.stderr and "GiB > 22.35 GiB" in r.stderr


@pytest.mark.slow
def test_nothing_fits_even_fully_sharded(cli):
    r = cli("plan", arch("mixtral"), "--gpus", "8", "--hardware", "l4", "--search", "--set", "seq_len=1024")
    assert r.exit_code == 1 and "none fits: the smallest needs" in r.output


# --- search -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_search_ranks_valid_fitting_layouts_and_replans_them_exactly():
    from symcost.plan.search import search

    found = search(symcost.derive(arch("llama")), 64, {}, global_batch=64)
    assert found.evaluated > 1000 and found.rows and found.front
    times = [r["step_seconds_bound"] for r in found.rows]
    assert times == sorted(times)
    best = found.best[0]
    assert best.fits and abs(float(best.numbers["peak_bytes"]) - found.rows[0]["memory_bytes"]) < 1
    assert all(r["memory_bytes"] <= 80e9 for r in found.rows)
    mem = [r["memory_bytes"] for r in found.front]
    assert mem == sorted(mem, reverse=True)  # each faster layout on the front needs more memory



def test_every_layout_the_search_ranks_is_one_plan_accepts():
    """The search's vectorised filter holds plan's own rules: a rank's seq_len / cp tokens split over tp under
    sequence parallelism (it once ranked layouts of one token a cp rank split over 2 tp ranks), pp the layers,
    ep the experts and dp x cp, tp the heads, the hidden sizes and the vocabulary."""
    from symcost.evaluate import dim_values
    from symcost.plan.plan import _check
    from symcost.plan.pieces import layer_sites
    from symcost.plan.schedule import main_repeat
    from symcost.plan.search import search

    keys = ("tp", "pp", "dp", "ep", "cp", "micro_batch", "sequence_parallel", "zero", "recompute")
    for name, gpus, sizes in (("llama", 256, {"seq_len": 8}), ("mixtral", 64, {"seq_len": 4})):
        d = symcost.derive(arch(name))
        subst = dim_values(d, sizes)
        value = lambda e: sympy.sympify(e).xreplace(subst)
        found = search(d, gpus, sizes, global_batch=gpus, top=1)
        layouts = {tuple(r[k] for k in keys) for r in found.rows}
        assert any(cp > 1 and sp for _, _, _, _, cp, _, sp, _, _ in layouts)
        for layout in layouts:
            ex = Execution(**dict(zip(keys, layout)), global_batch=gpus)
            _check(d, ex, value, layer_sites(d, ex.tp, ex.cp), main_repeat(d, value))


PIPELINES = [dict(schedule="zb-h1"), dict(schedule="dualpipe"), dict(schedule="dualpipev"), dict(virtual_stages=2),
             dict(first_stage_layers=8), dict(last_stage_layers=8, schedule="zb-h1"),
             dict(first_stage_layers=7, last_stage_layers=5), dict(stage_layers=(7, 9, 9, 7)),
             dict(stage_layers=(7, 9, 9, 7), schedule="dualpipe")]


QUICK_PIPELINES = (0, 6, 8)  # ZB-H1, the two end stages' layers, DualPipe over a stage list; the rest: full suite


@pytest.mark.parametrize("held", [p if i in QUICK_PIPELINES else pytest.param(p, marks=pytest.mark.slow)
                                  for i, p in enumerate(PIPELINES)],
                         ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
def test_with_pipeline_options_the_search_ranks_exactly_the_layouts_plan_takes(held):
    """Held fixed, a schedule, virtual stages, a stage list or the first and last stages' layers: the layouts the
    search evaluates are exactly those of every tp x pp x cp x micro-batch of 64 GPUs plan takes with them
    (found by trying each with plan's own checks), and its fastest rows planned exactly need the memory and the
    bound time the search gave them."""
    from symcost.evaluate import dim_values
    from symcost.plan.execution import execution_of
    from symcost.plan.pieces import layer_sites
    from symcost.plan.plan import _check
    from symcost.plan.schedule import main_repeat
    from symcost.plan.search import Pipeline, candidates, search, splits

    d, gpus, batch = symcost.derive(arch("llama")), 64, 256
    value = lambda e: sympy.sympify(e).xreplace(dim_values(d))
    pipe = Pipeline(**held)
    cols = candidates(splits(d, value, layer_sites(d, 1)), gpus, batch, pipe)
    ranked = set(zip(*(cols[k].tolist() for k in ("tp", "pp", "cp", "micro_batch"))))
    taken = set()
    for tp, pp, cp in itertools.product(*[[1, 2, 4, 8, 16, 32, 64]] * 3):
        for mb in (1, 2, 4, 8, 16, 32, 64, 128, 256):
            if gpus % (tp * pp * cp):
                continue
            try:
                ex = execution_of(dict(tp=tp, pp=pp, cp=cp, micro_batch=mb, global_batch=batch, **held), gpus,
                                  Precision())
                _check(d, ex, value, layer_sites(d, tp, cp), main_repeat(d, value))
            except SpecError:
                continue
            taken.add((tp, pp, cp, mb))
    assert ranked == taken and len(taken) > 3
    found = search(d, gpus, {}, global_batch=batch, top=2, pipeline=pipe)
    for row, exact in zip(found.rows, found.best):
        assert abs(float(exact.numbers["peak_bytes"]) - row["memory_bytes"]) < 1
        assert float(exact.numbers["step_seconds_bound"]) == pytest.approx(row["step_seconds_bound"], rel=1e-9)
        assert {k: getattr(exact.execution, k) for k in held} == held


@pytest.mark.slow  # 8,040 layouts at a million tokens: in the full suite
def test_a_search_past_int64_ranks_in_floats():
    """A 2^20-token Llama-2-7B on 8 GPUs, 2^22 sequences a step: FLOPs and bytes past 2^63, which the search once
    evaluated in int64 — 100 layouts "fit" with negative memory. None fits: the least any layout needs is over 100
    GiB, and no more than the exact plan of a most sharded one."""
    from symcost.plan.search import search

    found = search(symcost.derive(arch("llama")), 8, {"seq_len": 2**20}, global_batch=2**22, top=1)
    assert not found.rows and found.evaluated == 8040
    exact = symcost.plan(arch("llama"), {"seq_len": 2**20}, tp=8, global_batch=2**22, zero=3, recompute="full",
                         micro_batch=1, sequence_parallel=True)
    assert found.smallest_bytes <= float(exact.numbers["peak_bytes"]) and found.smallest_bytes > 100 * 2**30


@pytest.mark.slow  # DeepSeek-V3's 3,456 layouts: in the full suite
def test_deepseek_v3_s_dualpipe_search_as_docs_plan_md_quotes_it():
    from pathlib import Path

    from symcost.plan.search import Pipeline, search

    stages = (1,) + (4,) * 14 + (1,)
    found = search(symcost.derive(arch("deepseek_v3")), 2048, {}, global_batch=4096, top=1,
                   pipeline=Pipeline("dualpipe", stage_layers=stages))
    r = found.rows[0]
    assert (found.evaluated, len(found.rows)) == (3456, 1423)
    assert [r[k] for k in ("tp", "pp", "dp", "ep", "cp", "zero", "recompute")] == [1, 16, 128, 8, 1, 1, "full"]
    text = " ".join((Path(__file__).parents[2] / "docs" / "plan.md").read_text().split())
    from symcost.render.text import bytes_human

    assert (f"ranks 3,456 layouts, 1,423 of them fitting 80 GB (the fastest with ep 8, ZeRO-1 and full "
            f"recomputation: {bytes_human(found.best[0].numbers['peak_bytes'])}, {r['step_seconds_bound']:.3g} s;"
            in text)





@pytest.mark.parametrize("layout, holder", [(dict(pp=2), "last"), (dict(pp=2, tp=2), "last"),
                                            (dict(pp=4, schedule="dualpipe", global_batch=8), "first"),
                                            (dict(), "only")])
def test_mtp_modules_train_on_the_rank_holding_the_head(layout, holder):
    """DeepSeek-V3 keeps its MTP modules with the output head they share: plan puts their weights (sharded as the
    model's), their states and activations on that rank and their FLOPs (each module's head pass included) in the
    step; the other ranks hold what they held without them."""
    text = MTP_SPEC.replace("HEADS", "heads")
    spec, alone = symcost.loads(text), symcost.loads(text.split("mtp:")[0])
    settings = {"global_batch": 4, **layout}
    with_mtp, without = symcost.plan(spec, **settings), symcost.plan(alone, **settings)
    d = symcost.derive(spec)
    tp = layout.get("tp", 1)
    # by hand, per module: two norms and the d x d projection whole on each tp rank (no rule splits a plain
    # linear), attention's four d x d and the gated MLP's three d x hidden split by tp; bf16
    module = 2 * 64 + 64 * 64 + (4 * 64 * 64 + 3 * 64 * 96) // tp
    assert tp > 1 or module == int(d.mtp.params.xreplace(dim_values_of(d))) // 2
    for stage, numbers in with_mtp.per_stage.items():
        more = {k: numbers[k] - without.per_stage[stage][k] for k in ("weights_bytes", "activation_bytes")}
        if stage == holder:
            assert more["weights_bytes"] == 2 * 2 * module and more["activation_bytes"] > 0
        else:
            assert more == {"weights_bytes": 0, "activation_bytes": 0}
    # a sequence's FLOPs (the spec's batch is one) times the step's
    train = (d.mtp.forward + d.mtp.backward).xreplace(dim_values_of(d)) * with_mtp.execution.sequences
    assert with_mtp.numbers["model_flops_per_step"] - without.numbers["model_flops_per_step"] == train
    params = f"{int(d.mtp.params.xreplace(dim_values_of(d))):,}"
    assert any(n.startswith(f"multi-token prediction: the spec's 2 MTP modules ({params} parameters) train on the "
                            "rank holding the model's head") for n in with_mtp.notes)


def dim_values_of(d, **sizes):
    from symcost.evaluate import dim_values

    return dim_values(d, sizes)


# --- flops-per-token --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["llama", "mixtral", "megatron_gpt", "gemma2", "vit_b16"])
@pytest.mark.parametrize("recompute", ["none", "full"])
def test_flops_per_token_module_is_exact(cli, tmp_path, name, recompute):
    out = tmp_path / "flops.py"
    r = cli("flops-per-token", arch(name), "--recompute", recompute, "--output", out)
    assert r.exit_code == 0, r.output
    namespace = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)  # what `import flops` runs
    fn = namespace["flops_per_token"]
    for seq_len in (1, 7, 512):
        sizes = {"seq_len": seq_len} if name != "vit_b16" else {}
        e = symcost.evaluate(arch(name), sizes)
        tokens = e.inputs
        if recompute == "none":
            assert fn(**sizes) == Fraction(e.total["train"], tokens)
        else:  # full recomputation: each repeated layer's forward once more
            p = symcost.plan(arch(name), sizes, recompute="full", micro_batch=e.dims.get("batch", 1))
            assert fn(**sizes) == Fraction(p.numbers["hardware_flops_per_step"]) / tokens


@pytest.mark.parametrize("name", ["llama", "mixtral"])
def test_a_recompute_list_runs_each_checkpointed_layer_s_forward_again(name):
    """HFU's FLOPs under a list of parts: the model's, plus the forward of every MLP or MoE layer it checkpoints
    whole and of every attention core where it names attention, summed from derive's nodes by hand; the plan's
    hardware FLOPs a step and flops_per_token agree."""
    from symcost.plan.tokens import flops_per_token

    d = symcost.derive(arch(name))
    e = symcost.evaluate(d)
    at = dim_values_of(d)
    forward = lambda kinds: sum(n.cost.forward for n in d.nodes if n.kind in kinds).xreplace(at)
    cores = sum(n.parts[k].forward for n in d.nodes if n.kind == "attention" for k in ("scores", "values")).xreplace(at)
    for recompute, extra in (("norm", 0), ("mlp,moe", forward({"mlp", "moe"})), ("attention", cores),
                             ("attention,norm,mlp,moe", cores + forward({"mlp", "moe"})), ("activation", 0)):
        p = symcost.plan(d, recompute=recompute)
        assert p.numbers["hardware_flops_per_step"] == e.total["train"] + extra, recompute
        assert flops_per_token(d, recompute).xreplace(at) * e.inputs == e.total["train"] + extra
    assert symcost.plan(d, recompute="attention").numbers == symcost.plan(d, recompute="selective").numbers


# The Llama Team, "The Llama 3 Herd of Models" (2024), Table 4: Llama 3 405B (126 layers, d_model
# 16,384, 128 heads, 8 kv heads, FFN 53,248, vocabulary 128,256; Table 3) on H100s, 1F1B with one
# layer fewer on the first and the last stage (Sec. 3.3.2): 7 + 14 x 8 + 7 layers.
# GPUs, TP, CP, PP, DP, sequence length, sequences per DP rank, achieved TFLOP/s per GPU
LLAMA_3_TABLE_4 = [(8192, 8, 1, 16, 64, 8192, 32, 430), (16384, 8, 1, 16, 128, 8192, 16, 400),
                   (16384, 8, 16, 16, 8, 131072, 16, 380)]
LLAMA_3_405B = dict(d_model=16384, n_layers=126, n_heads=128, n_kv_heads=8, d_ff=53248, vocab=128256)


@pytest.mark.parametrize("row", LLAMA_3_TABLE_4, ids=["8k-gpus", "16k-gpus", "16k-gpus-cp16"])
def test_llama_3_table_4_replayed(row):
    gpus, tp, cp, pp, dp, seq, per_dp, achieved = row
    assert int(symcost.evaluate(arch("llama"), LLAMA_3_405B).total["params"] / 1e9) == 405
    layout = dict(gpus=gpus, tp=tp, cp=cp, pp=pp, global_batch=dp * per_dp, first_stage_layers=7, last_stage_layers=7,
                  sequence_parallel=True, zero=2, overlap=1.0)
    plan = symcost.plan(arch("llama"), {**LLAMA_3_405B, "seq_len": seq}, **layout)  # as run: no recomputation
    assert plan.execution.dp == dp and plan.numbers["tokens_per_step"] == 16 * 2**20  # "16M tokens per batch"
    assert set(plan.per_stage) == {"first", "middle", "last"}
    measured = float(plan.numbers["model_flops_per_step"]) / (gpus * achieved * 1e12)
    assert plan.numbers["step_seconds_bound"] < measured
    # the paper ran 8k tokens without recomputation; with 1F1B's in-flight micro-batches symcost needs full
    # recomputation to fit 80 GB (the paper's own schedule changes are not modelled)
    assert symcost.plan(arch("llama"), {**LLAMA_3_405B, "seq_len": seq}, **layout, recompute="full").fits


def test_uneven_stages_hold_their_layers():
    d, f, V = 4096, 11008, 32000
    layer = 4 * d * d + 3 * d * f + 2 * d
    stages = symcost.plan(arch("llama"), pp=4, first_stage_layers=5, last_stage_layers=7).per_stage
    assert stages["first"]["weights_bytes"] == 2 * (V * d + 5 * layer)
    assert stages["middle"]["weights_bytes"] == 2 * (10 * layer)
    assert stages["last"]["weights_bytes"] == 2 * (7 * layer + d + V * d)


def test_a_stage_list_is_the_first_and_last_counts_where_they_agree():
    """first 5, last 7 over pp 4 is the list 5, 10, 10, 7 (its middle stage the second rank); a list names each
    middle rank that holds more layers than every rank before it, the one of them most loaded reported."""
    given = symcost.plan(arch("llama"), pp=4, first_stage_layers=5, last_stage_layers=7, global_batch=8).per_stage
    listed = symcost.plan(arch("llama"), stage_layers=[5, 10, 10, 7], global_batch=8)
    assert listed.execution.pp == 4 and set(listed.per_stage) == {"first", "rank 1", "last"}
    assert listed.per_stage["rank 1"] == given["middle"]
    assert {k: listed.per_stage[k] for k in ("first", "last")} == {k: given[k] for k in ("first", "last")}
    ranked = symcost.plan(arch("llama"), {"n_layers": 16}, stage_layers=[2, 3, 5, 4, 2], global_batch=8).per_stage
    assert set(ranked) == {"first", "rank 1", "rank 2", "last"}  # rank 3's 4 layers hold less than rank 2's 5
    act = lambda r: ranked[f"rank {r}"]["activation_bytes"]
    assert act(2) * 3 * 4 == act(1) * 5 * 3  # layers x min(pp - r, m) micro-batches: 5 x 3 against 3 x 4


def test_bloom_176b_replayed_as_its_paper_ran_it():
    """BLOOM (Le Scao et al. 2022, Sec. 3.4): 384 A100 80GB, tp 4, pp 12, dp 8, ZeRO-1, bf16, micro-batch 2, global
    batch 2048 of 2048 tokens, activations recomputed; Megatron-DeepSpeed's partition counts the two embeddings as
    layers, 72 over 12 stages, so 5 + 6 x 10 + 5 transformer layers. By hand, a tp rank of a layer: 12 d^2 / 4
    weights, 7 d / 4 column-parallel biases, and the row-parallel biases and two layernorms whole (6 d); the first
    stage adds a quarter of the table and its layernorm, the last the final layernorm and a copy of the tied table."""
    spec = symcost.import_hf(str(DATA / "bloom.json")).spec()
    assert symcost.evaluate(spec).total["params"] == 176_247_271_424  # the model card's count
    d, V = 14336, 250880
    layer = 12 * d * d // 4 + 7 * d // 4 + 6 * d
    p = symcost.plan(spec, hardware="a100-80gb", tp=4, dp=8, zero=1, micro_batch=2, global_batch=2048,
                     stage_layers=[5] + [6] * 10 + [5], recompute="full")
    assert p.execution.gpus == 384 and p.numbers["tokens_per_step"] == 2048 * 2048
    assert {k: v["weights_bytes"] for k, v in p.per_stage.items()} == {
        "first": 2 * (V * d // 4 + 2 * d + 5 * layer), "rank 1": 2 * 6 * layer,
        "last": 2 * (5 * layer + 2 * d + V * d // 4)}
    assert p.fits and p.stage == "first" and round(float(p.numbers["total_bytes"]) / 2**30, 1) == 28.3
    hfu = float(p.numbers["hardware_flops_per_step"])  # the paper's 156 TFLOP/s counts recomputation, as HFU does
    assert (round(hfu / 1e16), round(hfu / (384 * 156e12), 1)) == (602, 100.5)  # as docs/plan.md says


def test_deepseek_v3_plans_at_pp_16_its_dense_layers_on_the_first_stage():
    """Two top-level repeats (3 dense layers, then 58 MoE ones): the pipeline splits the longer, 1 + 14 x 4 + 1 MoE
    layers here, and the dense ones sit on the first stage with the table; the MTP module on the last, with the
    head. By hand, per GPU at ep 64: latent attention 187,107,328 and two norms 14,336 a layer; a dense MLP 3 x 7168
    x 18432; a MoE layer's shared expert and router 45,875,200 and 1/64 of its 256 experts (3 x 7168 x 2048 each);
    the MTP module's three norms, its 2 x 7168 x 7168 projection and one MoE layer."""
    attention = 187_107_328 + 14_336
    dense, moe = attention + 3 * 7168 * 18432, attention + 45_875_200 + 256 * 3 * 7168 * 2048 // 64
    table, mtp = 129280 * 7168, 3 * 7168 + 2 * 7168 * 7168 + moe
    p = symcost.plan(arch("deepseek_v3"), gpus=2048, pp=16, ep=64, zero=1, first_stage_layers=1, last_stage_layers=1)
    assert {name: stage["weights_bytes"] for name, stage in p.per_stage.items()} == {
        "first": 2 * (table + 3 * dense + moe), "middle": 2 * 4 * moe, "last": 2 * (moe + 7168 + table + mtp)}
    assert any("split layers/3/repeat (58 passes), the longest top-level repeat; layers/2/repeat (3 passes) on the "
               "first stage" in note for note in p.notes)


@pytest.mark.parametrize("args,message", [
    (["--pp", "4", "--first-stage-layers", "5", "--last-stage-layers", "6"], "do not split into stages of first 5"),
    (["--pp", "2", "--first-stage-layers", "5", "--last-stage-layers", "6"], "do not split into stages"),
    (["--first-stage-layers", "5"], "stage layer counts split a pipeline"),
    (["--stage-layers", "7,9,9,6"], "stage_layers 7,9,9,6 hold 31 layers; the repeat has 32"),
    (["--stage-layers", "7,9,x"], "expected whole numbers separated by commas"),
    (["--stage-layers", "7,9,9,7", "--pp", "3"], "4 stages listed for pp 3"),
    (["--stage-layers", "7,0,9,7"], "--stage-layers.1 0: Input should be greater than or equal to 1"),
    (["--stage-layers", "16,16", "--first-stage-layers", "16"], "give every stage's layers or the first and last"),
    (["--stage-layers", "32"], "stage layer counts split a pipeline: give pp > 1"),
])
def test_bad_uneven_split(cli, args, message):
    r = cli("plan", arch("llama"), *args)
    assert r.exit_code == 2 and message in r.stderr


# --- solving for parallel sizes ---------------------------------------------------------------

def test_smallest_tp_pp_that_fits(cli):
    """The smallest tp x pp for Llama 2 7B at 32k tokens on 80 GB: every smaller product does not fit
    (or does not divide the model), the answer does."""
    r = cli("plan", arch("llama"), "--set", "seq_len=32768", "--smallest", "tp,pp", "--zero", "1",
            "--recompute", "selective", "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    tp, pp = data["execution"]["tp"], data["execution"]["pp"]
    assert data["fits"] and f"smallest tp x pp that fits: {tp} x {pp} = {tp * pp}" in r.stderr
    for t in (1, 2, 4, 8, 16, 32):
        for p in (1, 2, 4, 8, 16, 32):
            if t * p < tp * pp:
                smaller = symcost.plan(arch("llama"), {"seq_len": 32768}, tp=t, pp=p, zero=1, recompute="selective")
                assert not smaller.fits, (t, p)


def test_smallest_refuses_what_it_cannot_solve(cli):
    assert "expected distinct names from tp, pp, cp, ep" in cli("plan", arch("llama"), "--smallest", "dp").stderr
    r = cli("plan", arch("llama"), "--smallest", "tp", "--hardware", "rtx-4090", "--gpus", "2")
    assert r.exit_code == 2 and "no tp fits: tried" in r.stderr
    r = cli("solve", arch("llama"), "--target", "params=7e9", "--for", "tp")
    assert r.exit_code == 2 and "plan with --smallest tp finds the smallest that fits" in r.stderr


@pytest.mark.parametrize("text,message", [
    ("my-gpu: [1, 2]\n", "my-gpu: expected a mapping"),
    ("my-gpu:\n  name: x\n  tflops: {bf16: 1}\n", "my-gpu.memory_GB: Field required"),
    ("my-gpu:\n  name: x\n  tflops: {bf17: 1}\n", "unknown dtype 'bf17'"),
    ("my-gpu:\n  name: x\n  colour: red\n", "my-gpu.colour: unknown field 'colour'; expected name, tflops"),
    ("my-gpu: {name: x\n", "my.yaml"),
])
def test_bad_hardware_file(cli, tmp_path, text, message):
    f = tmp_path / "my.yaml"
    f.write_text(text)
    r = cli("plan", arch("llama"), "--hardware", "my-gpu", "--hardware-file", f)
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output


def test_recomputation_with_nothing_to_act_on_says_so():
    p = symcost.plan(arch("mlp"), recompute="selective")
    assert any("this spec has none, so nothing is recomputed" in n for n in p.notes)


def test_search_keeps_tp_1_for_a_layer_type_without_a_rule():
    from symcost.plan.search import search

    found = search(symcost.derive(arch("deepseek_v3")), 256, {"seq_len": 1024}, hardware="h200", top=1)
    assert found.evaluated and {r["tp"] for r in found.rows} == {1}


def test_a_contrastive_head_under_data_parallelism_says_what_it_leaves_out(cli):
    """Each rank's logits cover its own micro-batch; CLIP's gather of every rank's embeddings is named
    as not modelled, where there is more than one data-parallel rank."""
    spread = cli("plan", arch("clip"), "--gpus", "8", "--hardware", "h100-sxm")
    assert spread.exit_code == 0 and "contrastive head: each rank scores its own micro-batch" in spread.stdout
    alone = cli("plan", arch("clip"), "--gpus", "1", "--hardware", "h100-sxm")
    assert alone.exit_code == 0 and "contrastive head" not in alone.stdout


def test_the_plan_command_s_options_are_the_records_fields():
    """Each field of the execution record and of the run's assumptions is one option of `plan`, so a
    field is written once; the other options are the command's own (the cluster, the dtypes, the
    search) — a new field that no option reads, or an option no record knows, fails here."""
    import dataclasses

    from symcost.cli.plan import plan as command
    from symcost.plan.execution import Execution, Run

    options = {p.name for p in command.params} - {"spec"}
    records = (set(Execution.model_fields) - {"precision"}) | {f.name for f in dataclasses.fields(Run)}
    own = {"gpus", "hardware", "hardware_file", "efficiency_file", "dtype", "grad_dtype", "activation_dtype",
           "matmul_dtype", "optimizer_dtype",
           "master_weights", "search", "top", "smallest", "sets", "formulas", "fmt", "finetune"}  # finetune: the spec's
    assert records <= options and options - records == own, (records - options, options - records - own)


# --- fine-tunes -------------------------------------------------------------------------------

@pytest.mark.slow  # test_plan_torch.py's fine-tune checks against FSDP2 and autograd stay quick
@given(finetune=FINETUNES.filter(lambda f: f["method"] != "dora"), recompute=st.sampled_from(["none", "selective", "full"]),
       layers=st.integers(1, 4))
@settings(max_examples=4, deadline=None)
def test_one_gpu_fine_tune_is_the_memory_report(finetune, recompute, layers):
    """On one GPU a fine-tune's plan is `memory`'s report (whose counts are checked against peft and
    PyTorch in tests/core/test_finetune.py): frozen and 4-bit weights, the trainable parameters'
    gradients and optimizer states, the first pass's smaller activations where no gradient flows yet."""
    spec = symcost.finetune(arch("llama"), **finetune)
    sizes = {"seq_len": 64, "n_layers": layers}
    m = symcost.memory(spec, {**sizes, "batch": 3}, recompute=recompute, attention="flash", precision="bf16")
    p = symcost.plan(spec, sizes, micro_batch=3, recompute=recompute, attention="flash", precision="bf16")
    for key in ("weights_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes"):
        assert p.numbers[key] == m.numbers[key], key


@pytest.mark.slow  # test_plan_torch.py's fine-tune checks stay quick
@given(finetune=FINETUNES.filter(lambda f: f["method"] not in ("dora", "qlora")), layers=st.sampled_from([2, 4, 8]),
       dp=st.sampled_from([1, 2, 8]), zero=st.sampled_from([0, 1, 2, 3]))
@settings(max_examples=6, deadline=None)
def test_a_fine_tune_s_stages_and_shards_add_up_to_the_model(finetune, layers, dp, zero):
    """Over two pipeline stages and dp ranks (one micro-batch a step, so one in flight): the stages'
    activations add up to the whole model's (tests/plan/test_plan_torch.py checks each stage's own);
    ZeRO divides the weights (stage 3) and the trainable parameters' gradients (2) and optimizer
    states (1) by dp."""
    spec = symcost.finetune(arch("llama"), **finetune)
    sizes = {"seq_len": 64, "n_layers": layers, "d_model": 256, "n_heads": 8, "n_kv_heads": 8, "d_ff": 512}
    m = symcost.memory(spec, {**sizes, "batch": 1}, attention="flash")
    p = symcost.plan(spec, sizes, pp=2, dp=dp, zero=zero, global_batch=dp, attention="flash")
    stages = p.per_stage.values()
    assert sum(s["activation_bytes"] for s in stages) == m.numbers["activation_bytes"]
    trainable = m.numbers["gradient_bytes"] / 2  # bf16 gradients
    shard = lambda stage: Fraction(1, dp) if zero >= stage else 1
    assert sum(s["gradient_bytes"] for s in stages) == 2 * trainable * shard(2)
    assert sum(s["optimizer_bytes"] for s in stages) == 12 * trainable * shard(1)  # fp32 Adam and master
    assert sum(s["weights_bytes"] for s in stages) == m.numbers["weights_bytes"] * shard(3)


@pytest.mark.parametrize("finetune,args,message", [
    ("lora,rank=8", ["--tp", "2"], "plan does not split adapters by tensor parallelism; plan this fine-tune with tp 1"),
    ("qlora,rank=8", ["--gpus", "2", "--zero", "3"], "ZeRO-3 (FSDP) of QLoRA's quantized weights is not modelled"),
    ("lora,rank=8", ["--pp", "2", "--virtual-stages", "2", "--global-batch", "2"], "a gradient starts inside the "
     "first pass of a repeat"),
])
def test_what_plan_does_not_model_of_a_fine_tune_is_refused(cli, finetune, args, message):
    r = cli("plan", arch("llama"), "--finetune", finetune, *args)
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output + r.stderr


@pytest.mark.slow  # two searches; the refusals above stay quick
def test_freeze_splits_by_tensor_parallelism_and_the_search_keeps_adapters_whole():
    from symcost.plan.search import search

    spec = symcost.finetune(arch("llama"), method="freeze", trainable=["attention"])
    one, two = (symcost.plan(spec, tp=tp).numbers for tp in (1, 2))
    assert two["gradient_bytes"] * 2 == one["gradient_bytes"]
    lora = symcost.derive(symcost.finetune(arch("llama"), method="lora", rank=8))
    assert {row["tp"] for row in search(lora, 8, {}).rows} == {1}
    qlora = symcost.derive(symcost.finetune(arch("llama"), method="qlora", rank=8))
    assert {row["zero"] for row in search(qlora, 8, {}).rows} == {0, 1, 2}


def test_a_gradient_starting_inside_a_nested_repeat_is_refused_at_its_layer(cli, write):
    """The pipeline splits the main repeat's passes; where a nested repeat's first pass differs from
    its others inside the main repeat's first pass, the stages' share is not a rule here."""
    spec = write("name: nested\ndims: {d: 64, h: 4, L: 4, V: 100, seq_len: 16}\nlayers:\n"
                 "  - embedding: {vocab: V, dim: d}\n  - repeat: L\n    layers:\n      - repeat: 2\n        layers:\n"
                 "          - rmsnorm: {dim: d}\n          - attention: {dim: d, heads: h, causal: true}\n"
                 "  - lm_head: {dim: d, vocab: V}\nfinetune: {method: lora, rank: 4}\n")
    r = cli("plan", spec, "--pp", "2")
    assert r.exit_code == 2 and "a gradient starts inside a repeat nested in the pipeline's repeat" in r.stderr
    assert "spec.yaml:" in r.stderr and "Traceback" not in r.output + r.stderr
    assert cli("plan", spec).exit_code == 0


@pytest.mark.parametrize("recompute", ["none", "full"])
def test_the_peak_adds_memory_s_backward_transient_on_the_rank_that_holds_it(recompute):
    """On one GPU the plan's transient is `memory`'s (the logits, two fp32 gradients, a re-materialised pass); tp
    splits the logits by vocabulary; ZeRO-3 adds the largest layer gathered (Llama-2-7B's MLP, 3 x 4096 x 11008
    at 2 bytes, larger than its token table, less the rank's half); a pipeline's first stage holds no head."""
    one = symcost.plan(arch("llama"), recompute=recompute, precision="bf16")
    memory = symcost.memory(arch("llama"), recompute=recompute, attention="flash", precision="bf16").numbers
    assert one.numbers["transient_bytes"] == memory["backward_transient_bytes"] > 0
    assert one.numbers["peak_bytes"] == one.numbers["total_bytes"] + one.numbers["transient_bytes"]
    logits = 4096 * 32000 * (8 + 2)
    split = symcost.plan(arch("llama"), tp=2, precision="bf16").numbers["transient_bytes"]
    assert split == logits // 2
    gathered = symcost.plan(arch("llama"), gpus=2, zero=3, precision="bf16").numbers["transient_bytes"]
    assert gathered == logits + 3 * 4096 * 11008 * 2 // 2
    piped = symcost.plan(arch("llama"), pp=2, precision="bf16", global_batch=2).per_stage
    assert piped["first"]["transient_bytes"] == 0 and piped["last"]["transient_bytes"] == logits
    # fits reads the peak: Llama-3-70B's LoRA on two GPUs at 2,048 tokens (tests/cli/test_docs.py)


@pytest.mark.slow
def test_headroom_keeps_a_share_of_memory_free_and_the_search_breaks_ties_by_memory():
    """Before: a 70B's top pick used 70.9 of 74.5 GiB while its total left out the logits' transient,
    with no way to keep room for it, and equally fast layouts came in no order. With headroom h a plan
    fits in memory - ceil(memory x h) bytes, and the search ranks only such layouts, the fastest first
    and, among equally fast ones, the one that needs less memory."""
    from symcost.plan.search import search

    fits = symcost.plan(arch("llama"), gpus=8, zero=3, recompute="full")
    total, memory = fits.numbers["peak_bytes"], fits.hardware.memory_bytes
    assert fits.fits and fits.to_dict()["usable_bytes"] == memory
    h = 1 - Fraction(total - 1, memory)  # leaves one byte too few
    tight = symcost.plan(arch("llama"), gpus=8, zero=3, recompute="full", headroom=float(h))
    usable = memory - math.ceil(memory * float(h))
    assert not tight.fits and tight.to_dict()["usable_bytes"] == usable < total
    found = search(symcost.derive(arch("llama")), 8, {}, run=Run(headroom=0.25))
    assert found.rows and all(r["memory_bytes"] <= memory * 0.75 for r in found.rows)
    order = [(r["step_seconds_bound"], r["memory_bytes"]) for r in found.rows]
    assert order == sorted(order) and len({b for b, _ in order}) < len(order)  # ties exist, and memory breaks them


def test_fp8_matmuls_over_bf16_weights_read_the_fp8_peak_and_keep_bf16_bytes(cli):
    """DeepSeek-V3's recipe: weights, gradients and activations kept in bf16, the matmuls run in FP8, so time and
    MFU read the H100's dense FP8 peak (1,979 TFLOP/s, twice its BF16 989.5) while every byte stays bf16's."""
    from symcost.precision import Precision

    bf16 = symcost.plan(arch("llama"), gpus=8, zero=1)
    fp8 = symcost.plan(arch("llama"), gpus=8, zero=1, precision=Precision("bf16", matmul="fp8"))
    assert {k: fp8.numbers[k] for k in ("weights_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes")} == {
        k: bf16.numbers[k] for k in ("weights_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes")}
    assert fp8.numbers["peak_flops"] == 2 * bf16.numbers["peak_flops"] == 1979e12
    assert fp8.numbers["step_seconds"] == pytest.approx(bf16.numbers["step_seconds"] / 2, rel=1e-12)
    data = json.loads(cli("plan", arch("llama"), "--gpus", "8", "--matmul-dtype", "fp8", "--format", "json").stdout)
    assert data["execution"]["dtypes"]["matmuls"] == "fp8" and data["execution"]["dtypes"]["weights"] == "bf16"
    with pytest.raises(SpecError, match="matmul dtype 'int4': expected one of fp32, bf16, fp16, fp8"):
        Precision("bf16", matmul="int4")


def test_mfu_counts_a_step_s_flops_as_the_paper_names_them(cli):
    """--flop-convention: the exact FLOPs (causal attention in full), causal attention's kept scores only,
    or 6ND — each by hand on Llama-2-7B, one 4,096-token sequence a step; the MFU a measured throughput
    gives follows the count it divides."""
    n, d, L = 4096, 4096, 32
    plans = {c: symcost.plan(arch("llama"), gpus=8, tp=8, tokens_per_second=2e4, flop_convention=c)
             for c in ("pytorch", "causal", "6nd")}
    model = plans["pytorch"].numbers["model_flops_per_step"]
    mfu = {c: p.numbers["mfu_flops_per_step"] for c, p in plans.items()}
    assert mfu["pytorch"] == model
    # forward, backward (x 3): scores and values over n^2 pairs, 4·d·n^2 a layer, against n(n + 1)/2 kept
    assert mfu["causal"] == model - 3 * 4 * d * L * (n * n - n * (n + 1) // 2)
    assert mfu["6nd"] == 6 * llama2_7b_params() * n
    measured = {c: p.numbers["mfu_measured"] for c, p in plans.items()}
    assert measured["6nd"] < measured["causal"] < measured["pytorch"] == plans["pytorch"].numbers["hfu_measured"]
    out = cli("plan", arch("llama"), "--gpus", "8", "--tp", "8", "--flop-convention", "6nd", "--format", "json")
    assert json.loads(out.stdout)["flops"]["mfu_convention"] == "6nd"
    bad = cli("plan", arch("llama"), "--gpus", "8", "--flop-convention", "6ndd")
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1 and "Traceback" not in bad.output
    with pytest.raises(SpecError, match="flop_convention '6ND': expected one of pytorch, causal, 6nd"):
        symcost.plan(arch("llama"), gpus=8, flop_convention="6ND")


def test_goodput_stretches_training_time_and_gpu_hours(cli):
    """--goodput: the share of the run spent on steps that count (an input), between the steps' time and the
    GPU-hours a paper reports; 1 (the default) leaves them the steps' own, and a share outside (0, 1] is refused."""
    full, most = (symcost.plan(arch("llama"), gpus=8, tp=8, tokens=10**9, goodput=g).numbers for g in (1, 0.9))
    assert full["gpu_hours"] == full["steps"] * full["step_seconds"] * 8 / 3600
    assert most["gpu_hours"] == most["steps"] * most["step_seconds"] / 0.9 * 8 / 3600 > full["gpu_hours"]
    assert most["goodput"] == 0.9 and most["train_days"] == most["train_seconds"] / 86400
    out = cli("plan", arch("llama"), "--gpus", "8", "--tp", "8", "--tokens", "1e9", "--goodput", "0.9")
    assert "GPU-hours (goodput 0.9)" in out.stdout and "over a goodput of 0.9" in out.stdout
    for bad in ("0", "1.5", "nan"):
        r = cli("plan", arch("llama"), "--gpus", "8", "--goodput", bad)
        assert r.exit_code == 2 and "goodput" in r.output and len(r.output.strip().splitlines()) == 1
