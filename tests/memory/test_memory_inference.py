"""Memory and inference: published byte counts by hand, bytes of real tensors (the built
model's parameters, the reference decoder's caches, transformers' DynamicCache), and
decode-step FLOPs against FlopCounterMode at drawn context lengths."""

import json

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch
from symcost.evaluate import dim_values
from symcost.inference import inference
from symcost.memory import Precision, memory_metrics
from published import llama2_7b_params
from strategies import STRATEGIES

torch = pytest.importorskip("torch")  # the decode loop measures caches on the reference build
from symcost.measure.reference import measure_decode, weight_bytes  # noqa: E402


def memory(name, precision=Precision(), **sizes):
    d = symcost.derive(symcost.load(arch(name)))
    values = dim_values(d, sizes)
    return {k: e.xreplace(values) for k, e in memory_metrics(d, precision).items()}


def test_llama_bf16():
    m = memory("llama")
    assert m["weights_bytes"] == 2 * llama2_7b_params() == 13_476_831_232
    assert m["kv_bytes_per_token"] == 2 * 32 * 4096 * 2 == 524_288  # K and V, 32 layers, 4096 wide, 2 bytes
    assert m["kv_cache_bytes"] == 524_288 * 4096  # a full 4096-token context
    assert m["train_state_bytes"] == 16 * llama2_7b_params()  # bf16 weights + grads, fp32 master + 2 Adam moments


def test_mistral_gqa_cache():
    assert memory("mistral")["kv_bytes_per_token"] == 2 * 32 * 8 * 128 * 2 == 131_072  # 8 kv heads of 128
    # the window caps the cache: 4095 tokens per layer however long the context (the next query sees itself and
    # 4,095 before it: what transformers' DynamicSlidingWindowLayer keeps)
    assert memory("mistral", seq_len=32768)["kv_cache_bytes"] == 131_072 * 4095


def test_deepseek_mla_cache():
    per_layer = (512 + 64) * 2  # the compressed latent and the rope key, bf16
    assert memory("deepseek_v3")["kv_bytes_per_token"] == 61 * per_layer


def test_precision_options():
    fp8 = memory("llama", Precision("fp8", kv="bf16", master=False))
    assert fp8["weights_bytes"] == llama2_7b_params()
    assert fp8["kv_bytes_per_token"] == 524_288
    int4 = memory("llama", Precision("int4"))
    assert int4["weights_bytes"] == sympy.Rational(llama2_7b_params(), 2)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp8"])
@pytest.mark.parametrize("name", ["llama", "mixtral", "deepseek_v3"])
def test_weight_bytes_match_the_built_model(name, dtype):
    d = symcost.derive(symcost.load(arch(name)))
    values = dim_values(d)
    expected = memory_metrics(d, Precision(dtype))["weights_bytes"].xreplace(values)
    if name == "deepseek_v3":  # a full-size MoE on meta takes a while: count a 4-layer cut
        values = dim_values(d, {"n_layers": 4})
        expected = memory_metrics(d, Precision(dtype))["weights_bytes"].xreplace(values)
    assert weight_bytes(d, values, dtype) == expected


DECODERS = ["transformer", "llama", "mistral", "gemma2", "gpt_oss", "llama4_scout", "qwen3_next", "mixtral", "deepseek_v3", "transformer_base", "lstm", "mamba", "mamba2"]


@pytest.mark.slow
@pytest.mark.parametrize("name", DECODERS)
def test_decode_steps_and_caches_match_pytorch(name):
    """At drawn sizes and contexts: the decode step's FLOPs equal FlopCounterMode's count of a
    one-token forward against a cache of `context` tokens, and the cache holds exactly the
    bytes the formulas say, after the prefill and after the step."""
    spec = symcost.load(arch(name))
    step, full = symcost.derive(spec, decode=True), symcost.derive(spec)

    @settings(max_examples=8, deadline=None, derandomize=True)
    @given(STRATEGIES[name], st.integers(0, 9), st.sampled_from(["fp32", "bf16"]))
    def check(sizes, context, dtype):
        if "max_pos" in sizes:
            sizes = sizes | {"max_pos": max(sizes["max_pos"], context + 1)}
        at = dim_values(step, sizes | {"context": context})
        measured = measure_decode(step, at, context, dtype=dtype, device="cpu")
        evaluated = symcost.evaluate(step, sizes | {"context": context})
        assert measured.forward_total == evaluated.total["forward"]
        for node, v in evaluated.components:
            assert measured.forward.get(node.path, 0) == v["forward"], node.path
        bytes_per_value = 4 if dtype == "fp32" else 2
        assert measured.cache_bytes == bytes_per_value * int(step.raw_total.cache.xreplace(at))
        if context:
            prefill = dim_values(full, sizes | {"seq_len": context})
            assert measured.prefill_cache_bytes == bytes_per_value * int(full.raw_total.cache.xreplace(prefill))

    check()


@settings(max_examples=6, deadline=None, derandomize=True)
@given(STRATEGIES["llama"], st.sampled_from(["fp32", "bf16"]))
def test_cache_matches_transformers_dynamic_cache(sizes, dtype):
    import transformers
    config = transformers.LlamaConfig(
        hidden_size=sizes["d_model"], num_attention_heads=sizes["n_heads"], num_key_value_heads=sizes["n_kv_heads"],
        num_hidden_layers=sizes["n_layers"], intermediate_size=sizes["d_ff"], vocab_size=sizes["vocab"],
    )
    model = transformers.LlamaForCausalLM(config).to(torch.float32 if dtype == "fp32" else torch.bfloat16)
    with torch.no_grad():
        out = model(torch.randint(0, sizes["vocab"], (sizes["batch"], sizes["seq_len"])), use_cache=True)
    cache = getattr(out, "cache", None) or out.past_key_values
    measured = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    d = symcost.derive(symcost.load(arch("llama")))
    expected = memory_metrics(d, Precision(dtype))["kv_cache_bytes"].xreplace(dim_values(d, sizes))
    assert measured == expected


# Small configs of families whose sliding layers keep window - 1 tokens between steps (transformers'
# DynamicSlidingWindowLayer): gpt-oss alternates them with full layers, OLMo 3 and EXAONE 4 (its global
# layers without rotary) have three in four, Mistral slides in every one; Llama 4's chunked layers keep
# chunk - 1 tokens as a window of the chunk's size does
WINDOWED = {
    "gpt_oss": lambda T, w: T.GptOssConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=4,
                                              num_key_value_heads=2, head_dim=4, intermediate_size=8, vocab_size=50,
                                              num_local_experts=4, num_experts_per_tok=2, sliding_window=w),
    "olmo3": lambda T, w: T.Olmo3Config(hidden_size=16, num_hidden_layers=5, num_attention_heads=4, intermediate_size=8,
                                        vocab_size=50, sliding_window=w, pad_token_id=0, eos_token_id=1),
    "exaone4": lambda T, w: T.Exaone4Config(hidden_size=16, num_hidden_layers=5, num_attention_heads=4,
                                            num_key_value_heads=2, intermediate_size=8, vocab_size=50, sliding_window=w,
                                            sliding_window_pattern=4),
    "llama4_text": lambda T, w: T.Llama4TextConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=4,
                                                   num_key_value_heads=2, head_dim=4, intermediate_size=8,
                                                   intermediate_size_mlp=12, num_local_experts=3, vocab_size=50,
                                                   attention_chunk_size=w, interleave_moe_layer_step=2),
    "mistral": lambda T, w: T.MistralConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                               num_key_value_heads=2, intermediate_size=8, vocab_size=50,
                                               sliding_window=w),
}


@pytest.mark.parametrize("family", [f if f == "gpt_oss" else pytest.param(f, marks=pytest.mark.slow)
                                    for f in sorted(WINDOWED)])  # the others in the full suite
@settings(max_examples=6, deadline=None, derandomize=True)
@given(n=st.integers(1, 9), w=st.integers(2, 6), b=st.integers(1, 2))
def test_windowed_caches_and_steps_match_transformers_on_the_cpu(family, n, w, b):
    """A prompt of n tokens, then one decode step, in transformers' model of the family (eager, real
    tensors, batched_mm experts): the cache it returns after each holds exactly the bytes symcost's
    formulas say, and FlopCounterMode's counts of the prefill and the step equal symcost's forward FLOPs
    (with the work of Llama 4's experts modules on the experts a token's router did not pick listed apart,
    measure/hf.py's dense_experts)."""
    T = pytest.importorskip("transformers")
    from torch.utils.flop_counter import FlopCounterMode

    from symcost.hf import import_config
    from symcost.measure.hf import build, dense_experts

    def counted(counter):
        apart = dense_experts(model, counter.get_flop_counts(), type(model).__name__)
        return counter.get_total_flops() - sum(flops for flops, _ in apart.values())

    cfg = WINDOWED[family](T, w).to_dict()
    model = build(cfg, "cpu").eval()
    spec = symcost.loads(import_config(cfg, f"{family}.json"))
    full, step = symcost.derive(spec), symcost.derive(spec, decode=True)
    held = lambda cache: sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    with torch.no_grad(), FlopCounterMode(display=False) as prefill:
        out = model(torch.randint(0, 50, (b, n)), use_cache=True)
    cache = out.past_key_values
    at = {"batch": b, "seq_len": n}
    assert held(cache) == 4 * int(full.raw_total.cache.xreplace(dim_values(full, at)))
    assert counted(prefill) == symcost.evaluate(full, at).total["forward"]
    with torch.no_grad(), FlopCounterMode(display=False) as one:
        out = model(torch.randint(0, 50, (b, 1)), past_key_values=cache, use_cache=True)
    at = {"batch": b, "context": n}
    assert held(out.past_key_values) == 4 * int(step.raw_total.cache.xreplace(dim_values(step, at)))
    assert counted(one) == symcost.evaluate(step, at).total["forward"]


def test_generation_is_the_sum_of_its_steps():
    spec = symcost.load(arch("llama"))
    inf = inference(spec)
    sizes = {"seq_len": 100}
    total = inf.values(sizes, None, 37)["generation"]
    step = symcost.derive(spec, decode=True)
    by_loop = sum(symcost.evaluate(step, {**sizes, "context": t}).total["forward"] for t in range(100, 137))
    assert total == by_loop
    # and with a sliding window, where the sum stays a Sum
    mistral = inference(symcost.load(arch("mistral")))
    windowed = mistral.values({"seq_len": 4090, "window": 4096}, None, 12)["generation"]
    step = symcost.derive(symcost.load(arch("mistral")), decode=True)
    assert windowed == sum(symcost.evaluate(step, {"seq_len": 4090, "context": t}).total["forward"]
                           for t in range(4090, 4102))


def test_decode_step_by_hand():
    # Llama-2-7B, one token after 4096: weights once (2 FLOPs each but the embedding), plus
    # scores and values over 4097 keys: 2 x 2 x 32 layers x 4096 x 4097
    inf = inference(symcost.load(arch("llama")))
    step = inf.values({}, 4096, 1)["step"]
    matmul_weights = llama2_7b_params() - 32000 * 4096 - (2 * 32 + 1) * 4096  # no embedding, no norms
    assert step == 2 * matmul_weights + 2 * 2 * 32 * 4096 * 4097


def test_memory_and_inference_cli(cli):
    data = json.loads(cli("memory", arch("llama"), "--format", "json").stdout)
    assert data["bytes"]["weights_bytes"] == 13_476_831_232
    assert data["bytes"]["kv_bytes_per_token"] == 524_288
    out = cli("inference", arch("llama"), "--new", "16").stdout
    assert "arithmetic intensity" in out and "decode step FLOPs (context = 4096)" in out
    fit = json.loads(cli("solve", arch("llama"), "--target", "inference_bytes=80e9", "--for", "seq_len",
                         "--format", "json").stdout)
    (root,) = fit["roots"]
    # 13,476,831,232 bytes of weights + 524,288 per token <= 80e9: 126,882 tokens
    assert root["below"]["value"] == (80 * 10**9 - 13_476_831_232) // 524_288 == 126_882


def test_decode_errors(cli, write):
    result = cli("inference", arch("resnet50"))
    assert result.exit_code == 2 and "declare `seq_len`" in result.stderr
    spec = write("name: c\ndims: {seq_len: 8}\nlayers:\n  - conv1d: {dim: 4, out: 4, kernel: 3}\n")
    result = cli("inference", spec)
    assert result.exit_code == 2 and "no decode step" in result.stderr


GEMMA3_SHAPED = """\
name: image-prompt
dims: {d_model: 8, d_vision: 6, image_size: 16, patch: 2, vocab: 40, seq_len: 20, batch: 2}
layers:
  - encoder: image_size
    image: true
    layers:
      - patch_embedding: {channels: 3, dim: d_vision, patch: patch}
      - attention: {dim: d_vision, heads: 2, bias: true}
      - pool_grid: {kernel: 2}
      - rmsnorm: {dim: d_vision}
      - linear: {dim: d_vision, out: d_model}
  - embedding: {vocab: vocab, dim: d_model}
  - insert_encoder: {dim: d_model}
  - rotary: {dim: 4}
  - repeat: 2
    layers:
      - rmsnorm: {dim: d_model}
      - attention: {dim: d_model, heads: 2, causal: true}
      - mlp: {dim: d_model, hidden: 12, gated: true}
  - lm_head: {dim: d_model, vocab: vocab, tied: true}
"""


@settings(max_examples=8, deadline=None, derandomize=True)
@given(st.integers(16, 30), st.sampled_from(["fp32", "bf16"]))
def test_a_prompt_holding_an_image_decodes(context, dtype):
    """Gemma 3's shape: the image's 16 tokens go into the prompt at prefill; a decode step adds
    none. Its FLOPs per component and the cache after the prefill and after the step equal
    PyTorch's."""
    spec = symcost.loads(GEMMA3_SHAPED)
    step, full = symcost.derive(spec, decode=True), symcost.derive(spec)
    at = dim_values(step, {"context": context})
    measured = measure_decode(step, at, context, dtype=dtype, device="cpu")
    evaluated = symcost.evaluate(step, {"context": context})
    assert measured.forward_total == evaluated.total["forward"]
    assert all(measured.forward.get(n.path, 0) == v["forward"] for n, v in evaluated.components)
    width = 4 if dtype == "fp32" else 2
    assert measured.cache_bytes == width * int(step.raw_total.cache.xreplace(at))
    prefill = dim_values(full, {"seq_len": context})
    assert measured.prefill_cache_bytes == width * int(full.raw_total.cache.xreplace(prefill))
