"""plan against PyTorch's own parallelism, on a fake process group (one process plays one rank of
a world of up to 64): each rank's parameter shard under DTensor tensor parallelism and FSDP2, the
collectives CommDebugMode sees in a training step, and the bytes a rank saves for backward — all
equal to the plan's closed forms, at sizes and parallel degrees hypothesis draws."""

import json
from collections import Counter

import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch
from strategies import FINETUNES, rotates_with_a_gradient
from symcost.components import REGISTRY
from symcost.evaluate import dim_values
from symcost.plan.execution import Execution
from symcost.plan.plan import plan
from symcost.plan.system import hardware
from symcost.precision import Precision

torch = pytest.importorskip("torch")
from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from torch.distributed.fsdp import fully_shard  # noqa: E402

from symcost.measure import reference, saved, shards  # noqa: E402

# Megatron's layer: the residual adds outside the tensor-parallel regions (a norm, then attention or
# the MLP with `residual: false`, added back by a residual block), a vocabulary-parallel table and head.
SPEC = """
name: tp-check
dims: {{d: {d}, L: {L}, h: {h}, kv: {kv}, V: {V}, seq_len: {s}, batch: {b}, f: {f}, p: {{rate: {p}}}}}
layers:
  - embedding: {{vocab: V, dim: d}}
  - repeat: L
    layers:
      - residual:
        - {norm}: {{dim: d}}
        - attention: {{dim: d, heads: h, kv_heads: kv, causal: true, bias: {bias}, residual: false,
                      attention_dropout: p, hidden_dropout: p}}
      - residual:
        - {norm}: {{dim: d}}
        - mlp: {{dim: d, hidden: f, gated: {gated}, bias: {bias}, activation: {act}, residual: false,
                hidden_dropout: p}}
  - {norm}: {{dim: d}}
  - lm_head: {{dim: d, vocab: V}}
"""


@st.composite
def layouts(draw, max_world=64):
    """Sizes tp divides; two tokens at least (DTensor cannot view an all-ones (1, 1, n) shard)."""
    tp = draw(st.sampled_from([t for t in (1, 2, 4, 8, 16, 32, 64) if t <= max_world]))
    kv = tp * draw(st.integers(1, 2))
    h = kv * draw(st.integers(1, 2))
    sizes = dict(tp=tp, h=h, kv=kv, d=h * draw(st.sampled_from([2, 4])), L=draw(st.integers(1, 2)),
                 V=tp * draw(st.integers(1, 3)), s=draw(st.integers(2, 6)), b=draw(st.integers(1, 2)),
                 f=tp * draw(st.integers(1, 3)), norm=draw(st.sampled_from(["rmsnorm", "layernorm"])),
                 bias=draw(st.booleans()), gated=draw(st.booleans()),
                 act=draw(st.sampled_from(["gelu", "silu", "relu"])), p=draw(st.sampled_from([0, 0.5])))
    return sizes


def _derive(sizes):
    d = symcost.derive(SPEC.format(**{k: str(v).lower() if isinstance(v, bool) else v for k, v in sizes.items()}))
    return d, dim_values(d, {})


def _plan(d, sizes, **execution):
    ex = Execution(tp=sizes["tp"], micro_batch=sizes["b"], precision=Precision("fp32"), **execution)
    return plan(d, ex, hardware("h100-sxm")), ex


@given(layouts())
@settings(max_examples=30, deadline=None)
def test_tensor_parallel_shards_equal_dtensor(sizes):
    """Each rank's parameter elements after parallelize_module (meta device) are the plan's weights."""
    d, values = _derive(sizes)
    with shards.fake_world(sizes["tp"]):
        mesh = init_device_mesh("cpu", (sizes["tp"],))
        with torch.device("meta"):
            model = reference.build(d, values)
        shards.tensor_parallel(model, mesh)
        p, _ = _plan(d, sizes)
        assert 4 * shards.local_params(model) == p.numbers["weights_bytes"]


@given(layouts(max_world=16), st.sampled_from([2, 4]), st.sampled_from([0, 3]))
@settings(max_examples=15, deadline=None)
def test_fsdp2_shards_equal_zero_3(sizes, dp, zero):
    """FSDP2 (fully_shard) over dp ranks on top of tensor parallelism: a rank's elements are the
    plan's weights under ZeRO-3 (sizes that divide evenly: FSDP pads uneven tensors)."""
    sizes = {**sizes, "d": sizes["d"] * dp, "V": sizes["V"] * dp, "f": sizes["f"] * dp}
    d, values = _derive(sizes)
    tp = sizes["tp"]
    with shards.fake_world(tp * dp):
        mesh = init_device_mesh("cpu", (dp, tp), mesh_dim_names=("dp", "tp"))
        with torch.device("meta"):
            model = reference.build(d, values)
        shards.tensor_parallel(model, mesh["tp"])
        if zero == 3:
            for _, part in reference.components(model):
                if any(True for _ in part.parameters()):
                    fully_shard(part, mesh=mesh["dp"])
            fully_shard(model, mesh=mesh["dp"])
        p, _ = _plan(d, sizes, dp=dp, zero=zero, global_batch=dp * sizes["b"])
        assert 4 * shards.local_params(model) == p.numbers["weights_bytes"]


@given(layouts(max_world=16), st.integers(1, 40), st.integers(1, 3))
@settings(max_examples=15, deadline=None)
def test_a_padded_vocabulary_is_split_as_dtensor_splits_the_padded_table(sizes, vocab, multiple):
    """Megatron-LM pads the vocabulary to a multiple of m x tp: a rank of the model built with the
    padded table and head (DTensor splitting them by rows) holds what the plan of the unpadded spec
    says with vocab_multiple m, whether or not tp divides the vocabulary."""
    tp = sizes["tp"]
    padded = -(-vocab // (multiple * tp)) * multiple * tp
    d, _ = _derive({**sizes, "V": vocab})
    with shards.fake_world(tp):
        mesh = init_device_mesh("cpu", (tp,))
        built, values = _derive({**sizes, "V": padded})
        with torch.device("meta"):
            model = reference.build(built, values)
        shards.tensor_parallel(model, mesh)
        p, _ = _plan(d, sizes, vocab_multiple=multiple)
        assert 4 * shards.local_params(model) == p.numbers["weights_bytes"]


def _ours(p, ex, values):
    records, calls = Counter(), Counter()
    for r, payload, _ in p.comm:
        if r.note or r.dim not in ("tp", "sp"):  # Megatron's re-gather: PyTorch keeps the gathered input instead
            continue
        n = sympy.sympify(r.calls).xreplace(ex.values()).xreplace(values)
        records[(r.collective, r.passes)] += payload * n
        calls[(r.collective, r.passes)] += n
    return records, calls


@pytest.mark.slow  # 25 layouts through CommDebugMode; test_tensor_parallel_shards_equal_dtensor stays quick
@given(layouts(max_world=8), st.booleans(), st.sampled_from(["none", "mlp"]))
@settings(max_examples=25, deadline=None)
def test_tensor_and_sequence_parallel_collectives_equal_comm_debug_mode(sizes, sequence_parallel, recompute):
    """Every collective of one training forward and backward: kind, pass, calls and bytes (a checkpointed MLP
    runs its forward's collectives again in backward)."""
    assume(sizes["tp"] > 1)
    sizes["s"] = sizes["tp"] * sizes["s"]  # the sequence splits over tp ranks
    d, values = _derive(sizes)
    with shards.fake_world(sizes["tp"]):
        mesh = init_device_mesh("cpu", (sizes["tp"],))
        torch.manual_seed(0)
        model = reference.build(d, values, recompute=recompute)
        shards.tensor_parallel(model, mesh, sequence_parallel)
        mode = shards.measure_comm(model, reference.example_input(d, values, "cpu"), sizes["tp"])
        p, ex = _plan(d, sizes, sequence_parallel=sequence_parallel, recompute=recompute)
        records, calls = _ours(p, ex, values)
        assert dict(mode.records) == {k: v for k, v in records.items() if v}
        assert dict(mode.calls) == {k: v for k, v in calls.items() if v}


@given(layouts(max_world=8), st.sampled_from(["eager", "sdpa"]),
       st.sampled_from(["none", "selective", "norm,mlp", "attention,mlp", "attention,activation"]))
@settings(max_examples=25, deadline=None)
def test_a_tensor_parallel_rank_saves_what_the_plan_says(sizes, attention, recompute):
    """The bytes one tp rank keeps for backward (saved_tensors_hooks on the split model, with the loss
    on its vocabulary shard) are the plan's activations: each layer's rule at the rank's sizes,
    dropout masks included (the probabilities' split by heads, the outputs' whole on each rank); a layer a
    recompute list checkpoints whole keeps its input."""
    if attention == "sdpa" and recompute in ("none", "norm,mlp"):  # a fused core's dropout is not measurable here
        sizes = {**sizes, "p": 0}
    d, values = _derive(sizes)
    with shards.fake_world(sizes["tp"]):
        mesh = init_device_mesh("cpu", (sizes["tp"],))
        measured = saved.measure_saved(d, values, dtype="fp32", attention=attention, recompute=recompute,
                                        prepare=lambda m: shards.tensor_parallel(m, mesh))
        p, _ = _plan(d, sizes, attention=attention, recompute=recompute)
        assert measured.total == p.numbers["activation_bytes"]


MOE = """
name: moe-check
dims: {{d: {d}, h: {h}, V: {V}, seq_len: 4, experts: {E}, k: {k}, f: {f}}}
layers:
  - embedding: {{vocab: V, dim: d}}
  - repeat: 2
    layers:
      - rmsnorm: {{dim: d}}
      - attention: {{dim: d, heads: h, causal: true}}
      - rmsnorm: {{dim: d}}
      - moe: {{dim: d, hidden: f, experts: experts, top_k: k, shared_experts: {shared}}}
  - rmsnorm: {{dim: d}}
  - lm_head: {{dim: d, vocab: V}}
"""


@given(st.sampled_from([1, 2, 4]), st.sampled_from([1, 2, 4]), st.integers(1, 2), st.integers(0, 1))
@settings(max_examples=20, deadline=None)
def test_expert_and_tensor_parallel_shards(tp, ep, per_rank, shared):
    """A rank of tp x ep holds the router whole, E/ep routed experts (the rank's share, by construction)
    and every shared expert, each expert's matrices split by DTensor as the MLP's are."""
    E = ep * per_rank
    sizes = dict(d=4 * tp, h=tp, V=2 * tp, E=E, k=1, f=2 * tp, shared=shared)
    d = symcost.derive(MOE.format(**sizes))
    values = dim_values(d, {})
    with shards.fake_world(tp):
        mesh = init_device_mesh("cpu", (tp,))
        with torch.device("meta"):
            model = reference.build(d, values)
        shards.tensor_parallel(model, mesh)
        mlp = {sub: style for sub, style in REGISTRY["mlp"].parallel.torch}
        styles = {"colwise": shards.ColwiseParallel, "rowwise": shards.RowwiseParallel}
        for _, part in reference.components(model):
            if hasattr(part, "experts"):
                part.experts = torch.nn.ModuleList(list(part.experts)[:per_rank])  # this ep rank's experts
                for expert in [*part.experts, *getattr(part, "shared_experts", [])]:
                    shards.parallelize_module(expert, mesh, {s: styles[mlp[s]]() for s in mlp if hasattr(expert, s)})
        p = plan(d, Execution(tp=tp, ep=ep, dp=ep, global_batch=ep), hardware("h100-sxm"))
        assert 2 * shards.local_params(model) == p.numbers["weights_bytes"]


# --- fine-tunes: peft's adapters and frozen weights on the reference build ----------------------

LLAMA = open(arch("llama")).read()
SMALL = dict(d_model=16, n_heads=2, n_kv_heads=1, d_ff=24, vocab=12, seq_len=4, batch=1)


def _tuned(finetune, sizes):
    d = symcost.derive(symcost.loads(LLAMA + "finetune: " + json.dumps(finetune) + "\n"))
    return d, dim_values(d, sizes), lambda **execution: plan(d, Execution(precision=Precision("fp32"), **execution),
                                                            hardware("h100-sxm"), values=sizes)


def _trainable(model) -> int:
    return sum(saved.local(p).numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.needs("peft")
@given(st.sampled_from([2, 4]), st.sampled_from([0, 3]), st.integers(1, 2),
       st.sampled_from([{"method": "lora", "rank": 4}, {"method": "lora", "rank": 8, "targets": ["q_proj", "down_proj"],
                                                        "trainable": ["rmsnorm"]},
                        {"method": "freeze", "trainable": ["attention", "lm_head"]}]))
@settings(max_examples=6, deadline=None)
def test_fsdp2_shards_a_fine_tune_s_frozen_and_trainable_parameters_as_planned(dp, zero, layers, finetune):
    """FSDP2 (fully_shard) over dp ranks of the build with peft's adapters injected: a rank's elements
    are the plan's weights under ZeRO-3 (frozen ones too), and the elements that need a gradient
    its gradients and Adam states (ZeRO shards those at stages 2 and 1, which the plan divides as
    at stage 3); at ZeRO-0 everything whole."""
    d, values, planned = _tuned(finetune, {**SMALL, "n_layers": layers})
    with shards.fake_world(dp):
        mesh = init_device_mesh("cpu", (dp,))
        with torch.device("meta"):
            model = reference.build(d, values)
        if zero == 3:
            for _, part in reference.components(model):
                if any(True for _ in part.parameters()):
                    fully_shard(part, mesh=mesh)
            fully_shard(model, mesh=mesh)
        p = planned(dp=dp, zero=zero, global_batch=dp)
        assert 4 * shards.local_params(model) == p.numbers["weights_bytes"]
        assert 4 * _trainable(model) == p.numbers["gradient_bytes"]
        assert 8 * _trainable(model) == p.numbers["optimizer_bytes"]  # fp32 Adam: two states, no master copy


@pytest.mark.needs("peft")
@given(st.sampled_from([2, 4]), st.sampled_from([{"method": "freeze", "trainable": ["attention"]},
                                                 {"method": "freeze", "trainable": ["mlp", "rmsnorm"]}]))
@settings(max_examples=4, deadline=None)
def test_a_tensor_parallel_rank_holds_and_trains_its_share_of_a_frozen_model(tp, finetune):
    """DTensor's split of a model whose weights are partly frozen: a rank's elements, and of them
    those that need a gradient, are the plan's weights and gradients."""
    d, values, planned = _tuned(finetune, {**SMALL, "n_layers": 2, "d_model": 8 * tp, "n_heads": tp, "n_kv_heads": tp,
                                           "d_ff": 4 * tp, "vocab": 3 * tp})
    with shards.fake_world(tp):
        mesh = init_device_mesh("cpu", (tp,))
        with torch.device("meta"):
            model = reference.build(d, values)
        shards.tensor_parallel(model, mesh)
        p = planned(tp=tp)
        assert 4 * shards.local_params(model) == p.numbers["weights_bytes"]
        assert 4 * _trainable(model) == p.numbers["gradient_bytes"]


@pytest.mark.needs("peft")
@given(st.sampled_from([2, 4]), FINETUNES.filter(lambda f: f["method"] in ("lora", "freeze")),
       st.sampled_from(["none", "full"]))
@settings(max_examples=10, deadline=None)
def test_each_pipeline_stage_keeps_what_its_layers_keep_in_pytorch(layers, finetune, recompute):
    """Two pipeline stages, one micro-batch: what each stage's layers save for backward on the
    reference build with peft's adapters (saved_tensors_hooks, charged to each pass of the repeat
    by its module) is the plan's stage's activations — the first stage holds the first pass, whose
    frozen layers before the first trainable one keep less."""
    assume(rotates_with_a_gradient(finetune, layers))
    finetune = {**finetune, "rank": min(finetune.get("rank", 1), 4)} if finetune["method"] == "lora" else finetune
    d, values, planned = _tuned(finetune, {**SMALL, "n_layers": layers})

    def by_pass(model):  # "body.layers.2.layers.<pass>…": each repeated layer (and checkpoint) named by its pass
        for name, module in model.named_modules():
            if hasattr(module, "symcost_path"):
                module.symcost_path = f"{name}/{module.symcost_path}"
        return model

    measured = saved.measure_saved(d, values, dtype="fp32", attention="eager", recompute=recompute, prepare=by_pass)
    def stage(module: str) -> str:
        top, rest = module.split(".")[2], module.split(".")[3:]
        return "last" if int(top) > 2 or top == "2" and int(rest[1]) >= layers // 2 else "first"

    kept = Counter()
    for path, n in measured.per_path.items():
        kept[stage(path.split("/")[0])] += n
    p = planned(pp=2, attention="eager", recompute=recompute)
    assert {name: s["activation_bytes"] for name, s in p.per_stage.items()} == dict(kept)


@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
def test_a_spec_with_two_repeats_keeps_on_each_stage_what_its_layers_keep_in_pytorch(recompute):
    """DeepSeek-V3's layout small (a dense layer, then four MoE ones), two stages, one micro-batch: the pipeline
    splits the MoE repeat, two passes a stage, and the dense layer sits on the first stage with the table and the
    rotary tables; what each stage's layers save for backward on the reference build (saved_tensors_hooks, each
    pass named by its module; under full recomputation each pass of either repeat checkpointed) is the plan's
    stage's activations."""
    sizes = dict(d_model=8, n_layers=5, n_dense=1, n_heads=2, q_lora_rank=4, kv_lora_rank=4, qk_nope_dim=2,
                 qk_rope_dim=2, v_head_dim=2, d_ff=12, d_expert=4, n_experts=4, top_k=2, n_shared=1, vocab=11,
                 seq_len=6, batch=1)
    # the main model, as the reference build runs it (its MTP module, which plan places with the head, apart)
    d = symcost.derive(symcost.loads(open(arch("deepseek_v3")).read().split("\nmtp:")[0]))

    def by_pass(model):  # "body.layers.3.layers.<pass>…": each pass of a repeat named by its module
        for name, module in model.named_modules():
            if hasattr(module, "symcost_path"):
                module.symcost_path = f"{name}/{module.symcost_path}"
        return model

    measured = saved.measure_saved(d, dim_values(d, sizes), dtype="fp32", attention="eager", recompute=recompute,
                                   prepare=by_pass)
    kept = Counter()
    for path, n in measured.per_path.items():
        top, rest = path.split("/")[0].split(".")[2], path.split("/")[0].split(".")[3:]
        kept["last" if int(top) > 3 or top == "3" and int(rest[1]) >= 2 else "first"] += n
    p = plan(d, Execution(precision=Precision("fp32"), pp=2, attention="eager", recompute=recompute),
             hardware("h100-sxm"), values=sizes)
    assert {name: s["activation_bytes"] for name, s in p.per_stage.items()} == dict(kept)
    assert recompute == "full" or kept["first"] > kept["last"]  # the dense layer's share (unless checkpointed)
