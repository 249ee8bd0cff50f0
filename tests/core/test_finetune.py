"""Fine-tuning (symcost/finetune.py and its share in the rules): trainable and frozen parameters,
FLOPs and saved bytes against peft's adapters on the reference build (FlopCounterMode with the
frozen weights' requires_grad off, saved_tensors_hooks), trainable counts against peft on real
Hugging Face families, QLoRA's 4-bit bytes against bitsandbytes, and the bad inputs."""

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch, tracked_peak
from published import DATA
from strategies import FINETUNES, rotates_with_a_gradient
from symcost.finetune import four_bit_bytes, int8_bytes

LLAMA = open(arch("llama")).read()


def tuned(finetune: dict, text: str = LLAMA):
    return symcost.loads(text + "finetune: " + json.dumps(finetune) + "\n")


SMALL = dict(d_model=16, n_layers=2, n_heads=2, n_kv_heads=1, d_ff=24, vocab=11, seq_len=5, batch=2)

SIZES = st.fixed_dictionaries({"d_model": st.sampled_from([8, 16]), "n_layers": st.integers(1, 3),
                               "n_heads": st.just(2), "n_kv_heads": st.sampled_from([1, 2]), "d_ff": st.integers(8, 24),
                               "vocab": st.integers(5, 13), "seq_len": st.integers(1, 6), "batch": st.integers(1, 2)})


def _exact(report):
    for row in [*report.rows, report.totals]:
        assert row.symbolic == row.measured, f"{row.path}: {row.symbolic} != {row.measured}"


@pytest.mark.slow  # the explicit LoRA and QLoRA checks below run in the quick subset
@pytest.mark.needs("torch")
@pytest.mark.needs("peft")
@pytest.mark.needs("bitsandbytes")
@settings(max_examples=16, deadline=None, derandomize=True)
@given(FINETUNES, SIZES)
def test_flops_and_saved_bytes_equal_pytorch_with_peft_adapters(finetune, sizes):
    """Each layer's parameters, forward and backward FLOPs (FlopCounterMode, frozen weights'
    requires_grad off), and bytes saved for backward (eager fp32 and sdpa bf16) equal the measured
    ones on the reference build with peft's adapters injected (QLoRA: over bitsandbytes' Linear4bit)."""
    if finetune.get("rank", 1) > min(sizes["d_model"] // 2, sizes["d_ff"]):
        finetune["rank"] = 2
    assume(rotates_with_a_gradient(finetune, sizes["n_layers"]))
    spec = tuned(finetune)
    _exact(symcost.verify(spec, sizes, backward=True, device="cpu"))
    if finetune["method"] != "dora":
        _exact(symcost.verify_memory(spec, sizes, dtype="fp32", attention="eager"))
        _exact(symcost.verify_memory(spec, sizes, dtype="bf16", attention="sdpa"))


@pytest.mark.needs("torch")
@pytest.mark.needs("peft")
@pytest.mark.needs("bitsandbytes")
@pytest.mark.parametrize("finetune", [{"method": "qlora", "rank": 4},
                                      pytest.param({"method": "qlora", "rank": 3, "targets": ["q_proj", "v_proj"],
                                                    "dropout": 0.1, "quant": "fp4", "double_quant": False,
                                                    "compute_dtype": "bf16"}, marks=pytest.mark.slow),  # drawn too
                                      {"method": "qlora", "rank": 4, "quant": "int8"}])
def test_qlora_counts_equal_pytorch_over_bitsandbytes_4bit_layers(finetune):
    """QLoRA, drawn or not by the property test above: peft's adapters over bitsandbytes' Linear4bit
    (or Linear8bitLt) on the CPU — its quantized matmul counted by the matmul formula registered for
    its operator; a compute dtype changes no count or saved byte."""
    sizes = dict(d_model=64, n_layers=2, n_heads=2, n_kv_heads=1, d_ff=128, vocab=11, seq_len=5, batch=2)
    spec = tuned(finetune)
    _exact(symcost.verify(spec, sizes, backward=True, device="cpu"))
    _exact(symcost.verify_memory(spec, sizes, dtype="fp32", attention="eager"))
    _exact(symcost.verify_memory(spec, sizes, dtype="bf16", attention="sdpa"))
    with pytest.raises(symcost.SpecError, match="measure it on the CPU"):
        symcost.verify(spec, sizes)


@pytest.mark.needs("torch")
@pytest.mark.needs("peft")
def test_a_frozen_linear_has_no_weight_gradient_and_the_property_test_sees_it(monkeypatch):
    """Give frozen linears their weight gradient back: the backward FLOPs no longer match."""
    from symcost import ops

    real = ops.linear
    monkeypatch.setattr(ops, "linear", lambda *a, weight_grad=True, **k: real(*a, weight_grad=True, **k))
    report = symcost.verify(tuned({"method": "lora", "rank": 2}), SMALL, backward=True, device="cpu")
    assert not report.match


FAMILIES = {  # a real config of each family, shrunk to test size (peft's counts do not depend on the values)
    "Llama-3.1-8B-Instruct": "LlamaForCausalLM",
    "Qwen2-7B": "Qwen2ForCausalLM",
    "Mistral-7B-v0.1": "MistralForCausalLM",
    "gemma-2b": "GemmaForCausalLM",
    "Qwen1.5-MoE-A2.7B": "Qwen2MoeForCausalLM",  # shared expert and its gate: linears; routed experts fused
}
SHRINK = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              vocab_size=100, head_dim=16)


@pytest.mark.needs("transformers")
@pytest.mark.needs("peft")
@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("finetune", [  # all-linear LoRA in the quick subset, the others in the full suite
    {"method": "lora", "rank": 8},
    pytest.param({"method": "lora", "rank": 4, "targets": ["q_proj", "v_proj"]}, marks=pytest.mark.slow),
    pytest.param({"method": "dora", "rank": 4, "targets": ["q_proj", "k_proj", "down_proj"]}, marks=pytest.mark.slow),
    pytest.param({"method": "qlora", "rank": 16}, marks=pytest.mark.slow),
])
def test_trainable_params_equal_peft_on_real_families(family, finetune):
    import peft
    import torch
    import transformers

    config = json.loads((DATA / f"{family}.json").read_text()) | SHRINK
    imported = symcost.import_hf(config)
    spec = tuned(finetune, imported.yaml)
    if finetune["method"] == "qlora" and "num_experts" in config:  # 4-bit fused experts: refused, not guessed
        with pytest.raises(symcost.SpecError, match="QLoRA's 4-bit storage of a moe layer's experts is not modelled"):
            symcost.evaluate(spec)
        return
    figures = symcost.evaluate(spec).to_dict()
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**config))
        targets = "all-linear" if "targets" not in finetune else finetune["targets"]
        model = peft.get_peft_model(model, peft.LoraConfig(r=finetune["rank"], target_modules=targets,
                                                           use_dora=finetune["method"] == "dora"))
    trainable, total = model.get_nb_trainable_parameters()
    assert (figures["params_trainable"], figures["params_trainable"] + figures["params_frozen"]) == (trainable, total)
    assert figures["params"] == total


@pytest.mark.needs("torch")
@pytest.mark.needs("bitsandbytes")
@pytest.mark.parametrize("double", [True, False])
@pytest.mark.parametrize("shape", [(64, 64), (24, 40), (130, 257),
                                   pytest.param((4096, 11008), marks=pytest.mark.slow)])  # Llama-2-7B's MLP
def test_four_bit_bytes_equal_bitsandbytes_quantized_tensors_and_state(shape, double):
    import torch
    from bitsandbytes.functional import quantize_4bit

    weight = torch.randn(*shape, dtype=torch.bfloat16)
    packed, state = quantize_4bit(weight, blocksize=64, quant_type="nf4", compress_statistics=double)
    tensors = [packed, state.absmax, state.code]
    if double:
        tensors += [state.state2.absmax, state.state2.code, state.offset]
    assert four_bit_bytes(shape[0] * shape[1], 64, double) == sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.needs("torch")
@pytest.mark.needs("bitsandbytes")
@pytest.mark.parametrize("shape", [(64, 64), (24, 40), (130, 257)])
def test_int8_bytes_equal_bitsandbytes_int8_params(shape):
    """LLM.int8's stored weight: bitsandbytes' int8 values and its fp32 scale per output row (SCB)."""
    import torch
    from bitsandbytes.nn import Int8Params

    weight = Int8Params(torch.randn(*shape), requires_grad=False, has_fp16_weights=False).to("cpu")  # quantizes
    assert weight.dtype == torch.int8 and weight.CB.data_ptr() == weight.data_ptr()
    assert int8_bytes(shape[1], shape[0]) == sum(t.numel() * t.element_size() for t in (weight.CB, weight.SCB))


def test_qlora_weights_and_training_state():
    """Llama-2-7B QLoRA r=16: peft's well-known 39,976,960 trainable parameters; NF4 linears (all
    but the head), 16-bit embedding, head and adapters; gradients and Adam states for the adapters only."""
    spec = tuned({"method": "qlora", "rank": 16})
    figures = symcost.evaluate(spec).to_dict()
    assert figures["params_trainable"] == 39_976_960
    memory = symcost.memory(spec, precision="bf16").to_dict()["bytes"]
    linears = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    per_linear = lambda n: four_bit_bytes(n, 64, True)
    packed = 32 * (4 * per_linear(4096 * 4096) + 3 * per_linear(4096 * 11008))
    assert memory["weights_bytes"] == packed + 2 * (figures["params"] - linears)
    assert memory["gradient_bytes"] == 2 * 39_976_960
    assert memory["optimizer_bytes"] == (8 + 4) * 39_976_960
    assert "a paged optimizer (QLoRA's paged AdamW)" in " ".join(symcost.memory(spec).notes)


def test_int8_weights_and_what_they_leave_out():
    """Llama-2-7B under LLM.int8: a byte a weight and four per output row (attention's four 4096 x 4096
    linears; gate and up 4096 -> 11008, down 11008 -> 4096), the rest 16-bit; the outliers said uncounted."""
    spec = tuned({"method": "qlora", "rank": 16, "quant": "int8"})
    report = symcost.memory(spec, precision="bf16")
    linears = 4 * 4096 * 4096 + 3 * 4096 * 11008
    stored = 32 * (linears + 4 * (4 * 4096 + 2 * 11008 + 4096))
    assert report.numbers["weights_bytes"] == stored + 2 * (6_778_392_576 - 32 * linears)
    assert "outlier columns a GPU multiplies in 16 bits are not counted" in " ".join(report.notes)


@pytest.mark.parametrize("finetune, message", [
    ("{method: lora, rank: 4, targets: [q_proj, wq]}", "finetune.targets: no linear an adapter can reach is named wq; "
     "those here: down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj"),
    ("{method: lora, rank: 0}", "finetune.rank: must be a positive integer, got 0"),
    ("{method: lora, rank: 5000}", "finetune.rank: rank 5000 exceeds q_proj's input width 4096"),
    ("{method: qlora, rank: 8, trainable: [attention]}", "qlora stores the linears of attention in 4 bits"),
    ("{method: qlora, rank: 8, quant: int8, trainable: [mlp]}", "qlora stores the linears of mlp in 8 bits"),
    ("{method: qlora, rank: 8, quant: int8, compute_dtype: bf16}", "`compute_dtype` is a 4-bit base's matmul dtype"),
    ("{method: lora, rank: 8, quant: int8}", "`quant` stores a frozen base in 4 or 8 bits: it needs method qlora"),
    ("{method: lora}", "lora needs `rank`"),
    ("{method: freeze, trainable: [lm_head], rank: 4}", "`rank` belongs to lora, dora and qlora"),
])
def test_bad_finetunes_are_one_line_exit_2(cli, tmp_path, finetune, message):
    path = tmp_path / "tuned.yaml"
    path.write_text(LLAMA + f"finetune: {finetune}\n")
    for command in ("eval", "memory"):
        result = cli(command, str(path))
        assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_target_only_a_moe_s_routed_experts_have_is_refused():
    """Mixtral's experts have up_proj, but no adapter reaches a fused expert: naming it is an error."""
    text = open(arch("mixtral")).read() + "finetune: {method: lora, rank: 8, targets: [q_proj, up_proj]}\n"
    with pytest.raises(symcost.SpecError, match="no linear an adapter can reach is named up_proj; those here: "
                                                "k_proj, lm_head, o_proj, q_proj, v_proj"):
        symcost.evaluate(symcost.loads(text))


def test_a_layer_without_a_finetuning_rule_is_refused(cli):
    text = open(arch("mamba")).read() + "finetune: {method: lora, rank: 8}\n"
    with pytest.raises(symcost.SpecError, match="a mamba layer has no fine-tuning rule"):
        symcost.evaluate(symcost.loads(text))


def test_dora_memory_is_refused_not_guessed():
    with pytest.raises(symcost.SpecError, match="DoRA's activation memory is not modelled"):
        symcost.memory(tuned({"method": "dora", "rank": 8}))


SHARED = """name: shared
dims: {d: 64, n: 3, seq_len: 4, vocab: 10}
layers:
  - embedding: {vocab: vocab, dim: d}
  - repeat: n
    shared: true
    layers:
      - attention: {dim: d, heads: 2, causal: true}
      - mlp: {dim: d, hidden: 128, activation: silu, gated: true}
  - lm_head: {dim: d, vocab: vocab}
"""


def test_shared_weights_are_stored_once_in_four_bits():
    """A repeat with shared weights holds one copy of its 4-bit linears, however many passes run."""
    spec = tuned({"method": "qlora", "rank": 4}, SHARED)
    one, three = (symcost.memory(spec, n=n).to_dict()["bytes"]["weights_bytes"] for n in (1, 3))
    linears = 4 * four_bit_bytes(64 * 64, 64, True) + 3 * four_bit_bytes(64 * 128, 64, True)
    assert one == three == linears + 2 * (10 * 64 + 10 * 64 + 4 * (4 * 128) + 4 * (3 * 192))


@pytest.mark.slow  # two solves and four peaks at Llama-2-7B's size
def test_solve_finds_the_largest_rank_and_micro_batch_that_fit():
    """Llama-2-7B QLoRA at 1,024 tokens: the largest rank under 12 GB and the largest batch under 24 GB,
    checked at the neighbours with memory's own peak (the answer fits, one more does not)."""
    spec = symcost.loads(LLAMA.replace("  batch: 1", "  batch: 1\n  r: 16") + "finetune: {method: qlora, rank: r}\n")
    for unknown, budget in (("r", 12 * 10**9), ("batch", 24 * 10**9)):
        (root,) = symcost.solve(spec, "peak_training_bytes", budget, unknown, {"seq_len": 1024}).to_dict()["roots"]
        n = root["below"]["value"]
        peak = lambda v: symcost.memory(spec, {"seq_len": 1024, unknown: v}).to_dict()["bytes"]["peak_training_bytes"]
        assert peak(n) <= budget < peak(n + 1) and root["above"]["value"] == n + 1
    assert (n, root["below"]["peak_training_bytes"]) == (3, 23_352_859_524)


@pytest.mark.slow
@pytest.mark.needs("torch")
@pytest.mark.needs("peft")
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("finetune", [{"method": "lora", "rank": 8},
                                      {"method": "lora", "rank": 4, "targets": ["q_proj", "v_proj"], "dropout": 0.1},
                                      {"method": "freeze", "trainable": ["lm_head", "rmsnorm"]},
                                      {"method": "qlora", "rank": 8},
                                      {"method": "qlora", "rank": 8, "quant": "int8"}])
def test_peak_training_estimate_within_0_1_percent_of_memtracker(finetune, dtype):
    """As for full training (tests/memory): Adam over the trainable parameters only, with peft's
    adapters on the reference build. A 4-bit weight's quantization state (absmax, codes) is a set of
    plain tensors on the parameter, which MemTracker does not see: their bytes, read off the tensors,
    are added to what it measures (an int8 weight's row scales it sees)."""
    import torch

    from symcost.evaluate import dim_values
    from symcost.measure.reference import DTYPES, build, example_input
    from symcost.memory import memory_metrics
    from symcost.precision import Precision

    d = symcost.derive(tuned(finetune))
    values = dim_values(d, dict(d_model=64, n_heads=4, n_kv_heads=2, n_layers=2, d_ff=96, vocab=500, seq_len=32,
                                batch=2))
    torch.manual_seed(0)
    model = build(d, values, attention="sdpa").to(DTYPES[dtype]).train()
    measured = tracked_peak(model, example_input(d, values, "cpu", dtype=DTYPES[dtype]))
    states = [p.quant_state for p in model.parameters() if getattr(p, "quant_state", None) is not None]
    measured += sum(t.numel() * t.element_size() for s in states
                    for t in (s.absmax, s.code, *((s.state2.absmax, s.state2.code, s.offset) if s.nested else ())))
    assert bool(states) == (finetune["method"] == "qlora" and finetune.get("quant") != "int8")
    precision = Precision(dtype, optimizer=dtype, master=False)  # torch's Adam keeps its moments in the weights' dtype
    predicted = int(memory_metrics(d, precision, "adam", "none", "sdpa")["peak_training_bytes"].xreplace(values))
    assert abs(predicted - measured) <= 0.001 * measured, (predicted, measured)


@pytest.mark.needs("torch")
@pytest.mark.needs("peft")
@pytest.mark.needs("bitsandbytes")
@pytest.mark.parametrize("finetune", [{"method": "lora", "rank": 4, "targets": ["q_proj", "v_proj"]},
                                      {"method": "qlora", "rank": 4}])
@pytest.mark.parametrize("recompute", ["full", "selective"])
def test_gradient_checkpointing_keeps_what_pytorch_keeps(finetune, recompute):
    """Full recomputation (each layer's input, checkpointed, even where nothing before it trains)
    and selective (the attention core's inputs), as saved_tensors_hooks sees them."""
    sizes = dict(d_model=64, n_layers=3, n_heads=2, n_kv_heads=1, d_ff=128, vocab=11, seq_len=5, batch=2)
    _exact(symcost.verify_memory(tuned(finetune), sizes, dtype="bf16", attention="sdpa", recompute=recompute))


@pytest.mark.needs("torch")
@pytest.mark.needs("peft")
def test_full_recomputation_re_materialises_the_largest_pass_not_the_average():
    """A fine-tune's first pass keeps less than the later ones (no gradient arrives yet): the passes'
    bytes, as the block records them, equal what PyTorch keeps for one layer and for two, and the
    backward transient under full recomputation holds the larger, a later pass."""
    from symcost.memory import backward_transient
    from symcost.symbols import ACT, dim

    spec = tuned({"method": "lora", "rank": 4, "targets": ["q_proj", "v_proj"]})
    sizes = dict(d_model=64, n_heads=2, n_kv_heads=1, d_ff=128, vocab=11, seq_len=5, batch=2)
    kept = {n: sum(r.measured["saved_bytes"] for r in symcost.verify_memory(spec, sizes | {"n_layers": n}, dtype="bf16")
                   .rows if r.path.startswith("layers/2/repeat/")) for n in (1, 2)}
    d = symcost.derive(spec)
    values = {dim(k): v for k, v in sizes.items()} | {ACT: 2}
    number = lambda e, n=2: int(e.xreplace(d.spec.dimset.substitution()).xreplace(values | {dim("n_layers"): n}))
    (block,) = d.blocks
    first, later = (number(p.activations("sdpa")) for p in (block.first_pass, block.later_pass))
    assert (first, later) == (kept[1], kept[2] - kept[1]) and first < later
    at = lambda n: number(backward_transient(d, "sdpa", "full"), n)
    logits = 2 * 5 * 11 * (8 + 2)
    assert (at(1), at(3)) == (logits + first, logits + later)


MOE = """name: tiny-qwen2-moe
dims: {d_model: 16, n_layers: 2, n_heads: 2, vocab: 11, seq_len: 5, batch: 2, n_experts: 4, top_k: 2, d_expert: 8,
       d_shared: 12, d_head: d_model / n_heads}
layers:
  - embedding: {vocab: vocab, dim: d_model}
  - rotary: {dim: d_head}
  - repeat: n_layers
    layers:
      - rmsnorm: {dim: d_model}
      - attention: {dim: d_model, heads: n_heads, causal: true}
      - rmsnorm: {dim: d_model}
      - moe: {dim: d_model, experts: n_experts, top_k: top_k, activation: silu, gated: true, hidden: d_expert,
              shared_experts: 1, shared_hidden: d_shared, shared_gate: true}
  - rmsnorm: {dim: d_model}
  - lm_head: {dim: d_model, vocab: vocab}
"""


@pytest.mark.needs("torch")
@pytest.mark.needs("peft")
@pytest.mark.parametrize("finetune", [  # the first two in the quick subset
    {"method": "lora", "rank": 2},
    {"method": "lora", "rank": 2, "targets": ["q_proj", "v_proj"]},
    *(pytest.param(f, marks=pytest.mark.slow) for f in (
        {"method": "lora", "rank": 2, "dropout": 0.1, "targets": ["up_proj", "shared_gate", "o_proj"]},
        {"method": "lora", "rank": 2, "trainable": ["moe", "embedding"]},
        {"method": "freeze", "trainable": ["moe"]},
        {"method": "dora", "rank": 2})),
])
def test_a_moe_with_a_shared_expert_counts_as_pytorch_does(finetune):
    """Qwen2-MoE's layout (routed experts, a shared expert and its gate): the routed experts and the
    router frozen without adapters, the shared expert's linears and gate adapted by name, on real
    routing (CPU): parameters, FLOPs and saved bytes equal PyTorch's with peft's adapters."""
    spec = tuned(finetune, MOE)
    _exact(symcost.verify(spec, {}, backward=True, device="cpu"))
    if finetune["method"] != "dora":
        _exact(symcost.verify_memory(spec, {}, dtype="fp32", attention="eager"))
        _exact(symcost.verify_memory(spec, {}, dtype="bf16", attention="sdpa"))


@pytest.mark.slow
@pytest.mark.needs("torch")
@pytest.mark.needs("peft")
@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.sampled_from([{"method": "lora", "rank": 2}, {"method": "lora", "rank": 1, "targets": ["gate_proj", "k_proj"]},
                        {"method": "freeze", "trainable": ["lm_head"]}]),
       st.fixed_dictionaries({"n_experts": st.integers(2, 6), "top_k": st.integers(1, 2), "d_expert": st.integers(4, 12),
                              "d_shared": st.integers(4, 12), "n_layers": st.integers(1, 3), "seq_len": st.integers(2, 6),
                              "batch": st.integers(1, 2)}))
def test_a_moe_counts_as_pytorch_does_at_drawn_sizes(finetune, sizes):
    spec = tuned(finetune, MOE)
    _exact(symcost.verify(spec, sizes, backward=True, device="cpu"))
    if finetune["method"] != "freeze":  # freeze trains only the head: the rotary tables' known over-count
        _exact(symcost.verify_memory(spec, sizes, dtype="bf16", attention="sdpa"))
