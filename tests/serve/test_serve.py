"""serve (symcost/serve/serve.py): a sequence's KV bytes per GPU against the caches PyTorch holds
(transformers' DynamicCache; the reference build's, for windows, MLA's latent and recurrent states),
capacity and concurrency against vLLM's own arithmetic written out here, weights per GPU against the
shards a tensor-parallel split gives, and the time bounds' definitions."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import ROOT, arch
from symcost.errors import DoesNotFit, SpecError
from symcost.evaluate import dim_values
from symcost.precision import Precision
from strategies import STRATEGIES

H100 = 80 * 10**9


def served(name, sizes=None, **settings):
    return symcost.serve(symcost.load(arch(name)), sizes or {}, **settings)


@pytest.mark.slow  # the quick half keeps the reference caches' check below
@pytest.mark.needs("torch")
@pytest.mark.needs("transformers")
@settings(max_examples=6, deadline=None, derandomize=True)
@given(STRATEGIES["llama"], st.integers(1, 12), st.integers(1, 6), st.sampled_from(["bf16", "fp32"]))
def test_a_sequence_s_kv_bytes_equal_transformers_cache(sizes, prompt, output, dtype):
    """Block size 1 (no rounding): the bytes of one sequence's cache after prompt + output tokens are
    transformers' DynamicCache's after a prefill of that many; per GPU, its share of the KV heads."""
    import torch
    import transformers

    sizes |= {"batch": 1, "d_ff": 12}  # tp (up to the KV heads, 4) divides the MLP
    config = transformers.LlamaConfig(
        hidden_size=sizes["d_model"], num_attention_heads=sizes["n_heads"], num_key_value_heads=sizes["n_kv_heads"],
        num_hidden_layers=sizes["n_layers"], intermediate_size=sizes["d_ff"], vocab_size=sizes["vocab"])
    model = transformers.LlamaForCausalLM(config).to(torch.float32 if dtype == "fp32" else torch.bfloat16)
    with torch.no_grad():
        out = model(torch.randint(0, sizes["vocab"], (1, prompt + output)), use_cache=True)
    measured = sum(t.nbytes for layer in out.past_key_values.layers for t in (layer.keys, layer.values))
    for tp in sorted({1, sizes["n_kv_heads"]}):
        s = served("llama", sizes, tp=tp, prompt=prompt, output=output, block_size=1, precision=dtype, concurrency=1)
        assert s.numbers["per_gpu"]["kv_bytes_per_sequence"] * tp == measured
        assert s.numbers["per_gpu"]["kv_bytes_per_token"] * tp * (prompt + output) == measured


@pytest.mark.needs("torch")
@pytest.mark.parametrize("name", ["mistral", *(pytest.param(n, marks=pytest.mark.slow)
                                               for n in ("gemma2", "gpt_oss", "deepseek_v3", "mamba", "mamba2"))])
def test_a_sequence_s_kv_bytes_equal_the_reference_caches(name):
    """Windows (the last w - 1 tokens), MLA (the latent and rope key, as vLLM keeps them), and recurrent
    states (fixed per sequence): what the reference build's cache holds after prompt + output tokens."""
    from symcost.measure.reference import measure_decode

    step = symcost.derive(symcost.load(arch(name)), decode=True)

    @settings(max_examples=2, deadline=None, derandomize=True)
    @given(STRATEGIES[name], st.integers(2, 14))
    def check(sizes, length):
        sizes = sizes | {"batch": 1} | ({"max_pos": max(sizes["max_pos"], length)} if "max_pos" in sizes else {})
        at = dim_values(step, sizes | {"context": length - 1})
        cached = measure_decode(step, at, length - 1, dtype="bf16", device="cpu").cache_bytes
        s = served(name, sizes, prompt=1, output=length - 1, block_size=1, concurrency=1)
        assert s.numbers["per_gpu"]["kv_bytes_per_sequence"] == cached

    check()


def test_mla_keeps_its_latent_per_token_as_vllm_does():
    """DeepSeek-V3's cache a token: 61 layers x (kv_lora_rank 512 + qk_rope_head_dim 64) values (vLLM's
    MLA backends' cache of shape (blocks, block_size, kv_lora_rank + qk_rope_head_dim)), not the 128
    heads' expanded keys and values transformers' reference cache holds."""
    cut = served("deepseek_v3", {"n_layers": 2, "n_dense": 1}, concurrency=1)  # 671B fits no one GPU: 2 layers
    assert cut.numbers["per_gpu"]["kv_bytes_per_token"] == 2 * (512 + 64) * 2


def test_expert_parallel_data_parallel_ranks_hold_their_share_of_the_experts_and_their_own_sequences():
    """DeepSeek-V3 in FP8 blocks on 8 H200s as vLLM's --data-parallel-size 8 --enable-expert-parallel runs it: each
    GPU holds every weight but the routed experts whole, and an eighth of those: each expert matrix 2048 x 7168
    values and 16 x 56 fp32 block scales, 3 an expert, 256 a layer, 58 layers; the whole model's 673,150,552,416
    bytes less 7/8 of them. Each rank caches its own sequences' latent (61 x 576 bf16 values a token, whole), so
    the replica's concurrency is 8 ranks' (against tp 8, where every GPU holds every sequence's latent)."""
    routed = 58 * 256 * 3 * (2048 * 7168 + 4 * 16 * 56)
    ep = served_fp8(dp=8, ep=True)
    g = ep.numbers["per_gpu"]
    assert g["weights_bytes"] == 673_150_552_416 - routed * 7 // 8 == 100_840_687_968
    assert g["kv_bytes_per_token"] == 61 * 576 * 2
    assert ep.numbers["max_concurrency"] == 8 * ((g["kv_pool_bytes"] - g["shared_prefix_bytes"])
                                                 // g["kv_bytes_per_sequence"])
    assert (ep.numbers["max_concurrency"], served_fp8(tp=8).numbers["max_concurrency"]) == (592, 135)  # docs/serve.md


def test_a_prediction_adds_the_collectives_tensor_and_expert_parallelism_run():
    """tp 2: a ring all-reduce (each GPU sends 2 (tp - 1) / tp of it) of each row-parallel output, Llama-2-7B's
    o_proj and down_proj in each of 32 layers and the embedding's partial sums, 4,096 bf16 values a token, over
    NVLink at half its 900 GB/s. dp 8 with ep: each MoE layer of DeepSeek-V3's 58 sends each token's 7,168 values
    to its 8 experts and back, 7/8 of them off the GPU, each rank its own sequences. The bounds leave them out."""
    from symcost.plan.efficiency import shipped

    llama = symcost.serve(arch("llama"), tp=2, concurrency=4)
    d, step, prefill = llama.numbers["decode"], llama.numbers["decode"]["comm_bytes_per_step"], llama.numbers["prefill"]
    assert step == 4 * (2 * 32 + 1) * 4096 * 2 and prefill["comm_bytes"] == 4096 * (2 * 32 + 1) * 4096 * 2
    assert d["comm_seconds"] == step / 450e9
    t = llama.numbers["throughput"]
    whole = shipped()["h100-sxm"].seconds(t["compute_seconds"], t["memory_seconds"], t["comm_seconds"])
    assert abs(t["seconds_predicted"] / whole - 1) < 1e-12 and whole > t["seconds_bound"]  # the rule is linear
    assert symcost.serve(arch("llama"), concurrency=4).numbers["decode"]["comm_bytes_per_step"] == 0
    moe = served_fp8(dp=8, ep=True, concurrency=16).numbers["decode"]  # two sequences a rank
    assert moe["comm_bytes_per_step"] == 2 * 58 * 2 * 8 * 7168 * 2 * 7 / 8


def served_fp8(**layout):
    return symcost.serve(symcost.quantize(arch("deepseek_v3"), format="fp8-block"), hardware="h200", **layout)


@pytest.mark.parametrize("layout, message", [
    (dict(dp=2), "dp 2 without expert parallelism"), (dict(ep=True, pp=2), "ep is modelled on one pipeline stage"),
    (dict(dp=3, ep=True), "ep over tp x dp = 3 GPUs does not divide 256 routed experts"),
])
def test_what_expert_parallelism_cannot_take_is_one_line(layout, message):
    with pytest.raises(SpecError, match=message):
        served_fp8(**layout)
    with pytest.raises(SpecError, match="no moe layer"):
        symcost.serve(arch("llama"), ep=True, tp=2)


def test_a_mix_of_request_lengths(tmp_path):
    """A lengths file of 3 requests of 1,024 + 256 tokens and one of 4,096 + 512, on Llama 2 7B (524,288 bytes of
    cache a token): a sequence's cache on average (3 x 1,280 + 4,608) / 4 tokens, the concurrency the pool over it;
    TPOT at the mean context of every decode step, (3 x 255 x 2,302 + 511 x 8,702) // (2 x 1,276) = 2,432; TTFT the
    mean of the four prompts' prefill bounds; one length in a file is the plain options' result."""
    path = tmp_path / "lengths.csv"
    path.write_text("prompt,output,count\n1024,256,3\n4096,512,1\n")
    mix = symcost.serve(arch("llama"), lengths=str(path))
    g = mix.numbers["per_gpu"]
    assert g["kv_bytes_per_sequence"] == (3 * 1280 + 4608) * 524_288 // 4
    assert mix.numbers["max_concurrency"] == g["kv_pool_bytes"] * 4 // ((3 * 1280 + 4608) * 524_288)
    assert mix.numbers["decode"]["context"] == 2432
    short, long = (symcost.serve(arch("llama"), prompt=p, output=256, concurrency=1) for p in (1024, 4096))
    assert mix.numbers["ttft_seconds"] == pytest.approx((3 * short.numbers["ttft_seconds"]
                                                         + long.numbers["ttft_seconds"]) / 4, rel=1e-12)
    path.write_text("prompt,output\n1024,256\n")
    one, plain = symcost.serve(arch("llama"), lengths=str(path)), symcost.serve(arch("llama"), prompt=1024, output=256)
    assert one.numbers == plain.numbers


@pytest.mark.parametrize("text, message", [
    ("prompt,tokens\n1,2\n", "lengths.csv:1:1: expected the columns prompt,output"),
    ("prompt,output\n1024,0\n", "lengths.csv:2:1: output '0': expected a whole number of tokens from 1"),
    ("prompt,output,count\n1024,8,x\n", "lengths.csv:2:1: count 'x': expected a whole number of requests"),
    ("prompt,output\n", "lengths.csv:2:1: no requests"),
])
def test_a_bad_lengths_file_is_one_line(cli, write, text, message):
    path = write(text, "lengths.csv")
    r = cli("serve", arch("llama"), "--lengths", path)
    assert r.exit_code == 2 and message in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    both = cli("serve", arch("llama"), "--lengths", path, "--prompt-tokens", "8")
    assert both.exit_code == 2 and "drop --prompt-tokens" in both.stderr


def test_a_pipeline_s_first_stage_caches_the_layers_before_the_split_repeat():
    """DeepSeek-V3 at pp 2 (plan's placement): the 58 MoE layers split 29 a stage, the 3 dense ones on the first
    stage, whose 32 latent caches (512 + 64 values, bf16, whole on every tp rank) are the most a stage holds."""
    s = symcost.serve(arch("deepseek_v3"), gpus=16, tp=8, pp=2, hardware="h200")
    assert s.numbers["per_gpu"]["kv_bytes_per_token"] == (3 + 58 // 2) * (512 + 64) * 2 == 36_864


@settings(max_examples=5, deadline=None, derandomize=True)
@given(STRATEGIES["llama"], st.integers(1, 5000), st.integers(1, 3000), st.sampled_from([1, 8, 16, 32]),
       st.sampled_from(["bf16", "fp8"]), st.floats(0.3, 1.0))
def test_capacity_and_concurrency_follow_vllm(sizes, prompt, output, block, kv, utilization):
    """vLLM (v1 KVCacheManager, full attention): a layer's page is block_size x kv heads / tp x head
    size x 2 x dtype bytes; blocks = pool // page // layers; max concurrency = blocks / cdiv(max_model_len,
    block_size), rounded down; the pool is utilization x memory less weights and activations."""
    sizes = sizes | dict(d_model=64 * sizes["n_heads"], d_ff=1000, vocab=32000)
    s = served("llama", sizes, prompt=prompt, output=output, block_size=block, memory_utilization=utilization,
               precision=Precision("bf16", kv))
    g = s.numbers["per_gpu"]
    pool = math.floor(H100 * utilization) - g["weights_bytes"] - g["activation_reserve_bytes"] - (
        8 * sizes["n_layers"] if kv == "fp8" else 0)
    page = block * sizes["n_kv_heads"] * 64 * 2 * (1 if kv == "fp8" else 2)
    blocks = pool // page // sizes["n_layers"]
    assert g["kv_pool_bytes"] == pool
    assert (s.numbers["kv"]["blocks"], s.numbers["kv"]["capacity_tokens"]) == (blocks, blocks * block)
    assert s.numbers["max_concurrency"] == blocks // -(-(prompt + output) // block)


def test_weights_per_gpu_are_a_rank_s_shards():
    """Llama-2-7B at tp 2: a rank holds half of each attention and MLP matrix (columns of q, k, v, up and
    gate; rows of o and down), half the vocabulary's table and head, every norm whole — in bf16 and,
    packed by AutoGPTQ's rule on each shard, in GPTQ 4-bit."""
    d, h, v, layers = 4096, 11008, 32000, 32
    norms = (2 * layers + 1) * d * 2
    table = 2 * (v // 2) * d * 2
    bf16 = served("llama", tp=2, concurrency=1).numbers["per_gpu"]["weights_bytes"]
    assert bf16 == layers * 2 * (4 * d * d + 3 * d * h) // 2 + table + norms
    gptq = lambda i, o: i * o // 2 + (i // 128) * o * 5 // 2 + 4 * i
    shards = [(d, d // 2)] * 3 + [(d // 2, d)] + [(d, h // 2)] * 2 + [(h // 2, d)]
    stored = symcost.quantize(symcost.load(arch("llama")), format="gptq")
    assert symcost.serve(stored, tp=2, concurrency=1).numbers["per_gpu"]["weights_bytes"] == (
        layers * sum(gptq(i, o) for i, o in shards) + table + norms)


def test_the_bounds_are_rooflines_of_the_exact_counts():
    """TTFT: max(prefill FLOPs / (tp x peak), bytes / (tp x bandwidth)) with every weight read once; a decode
    step: the batch's FLOPs at the mean context, the active weights read once and each sequence's cache."""
    s = served("llama", prompt=1000, output=201, concurrency=8)
    n, peak, bw = s.numbers, 989.5e12, 3350e9
    e = symcost.evaluate(symcost.load(arch("llama")), seq_len=1000)  # pytorch: causal scores in full
    masked = 32 * 2 * 2 * 32 * 128 * (1000 * 1000 - 1000 * 1001 // 2)  # layers x two products x the masked half
    assert n["prefill"]["flops"] == e.total["forward"] - masked  # the kernel convention's
    assert n["ttft_seconds"] == max(n["prefill"]["flops"] / peak, n["prefill"]["bytes"] / bw)
    step = symcost.inference(symcost.load(arch("llama")), context=1099, new_tokens=1)
    assert n["decode"]["context"] == 1000 + (201 - 2) // 2 == 1099
    assert n["decode"]["flops_per_step"] == 8 * step.numbers["step"]
    assert n["decode"]["bytes_per_step"] == 8 * step.numbers["step_bytes"] - 7 * n["per_gpu"]["weights_bytes"]
    assert n["tpot_seconds"] == max(n["decode"]["flops_per_step"] / peak, n["decode"]["bytes_per_step"] / bw)
    assert n["tokens_per_second_per_gpu"] == 8 / n["tpot_seconds"]


def test_a_decode_batch_turns_compute_bound_where_the_bounds_cross():
    s = served("mixtral", {"n_layers": 2}, prompt=64, output=2, concurrency=1)
    b = s.numbers["decode"]["compute_bound_batch"]
    at = lambda batch: served("mixtral", {"n_layers": 2}, prompt=64, output=2, concurrency=batch).numbers["decode"]
    below, here = at(b - 1), at(b)
    assert below["flops_per_step"] / 989.5e12 < below["bytes_per_step"] / 3350e9
    assert here["flops_per_step"] / 989.5e12 >= here["bytes_per_step"] / 3350e9


def test_what_serve_refuses(cli, write):
    with pytest.raises(DoesNotFit, match=r"concurrency 10,000 needs .* GiB of KV cache a GPU, has .* GiB"):
        served("llama", concurrency=10_000)
    with pytest.raises(DoesNotFit, match="leave no KV cache"):
        served("mixtral")
    with pytest.raises(SpecError, match="block_size 0"):
        served("llama", block_size=0)
    with pytest.raises(SpecError, match="memory_utilization 1.5"):
        served("llama", memory_utilization=1.5)
    with pytest.raises(SpecError, match="gpus 3 is not a multiple of tp x pp x dp = 2"):
        served("llama", tp=2, gpus=3)
    with pytest.raises(SpecError, match=r"layers.0.embedding.vocab: tp 3 does not divide vocab = 32000"):
        served("llama", tp=3)  # vLLM pads the vocabulary to 64 rows, which 3 ranks cannot split
    with pytest.raises(SpecError, match=r"layers.2.layers.1.attention.heads: tp 64 does not divide heads = 32"):
        served("llama", tp=64)
    with pytest.raises(SpecError, match="serve serves a model, not a fine-tune"):
        symcost.serve(symcost.finetune(arch("llama"), method="lora", rank=8))
    for args, message, status in [
        (["--concurrency", "10000"], "error: --concurrency 10,000 needs", 1),
        (["--block-size", "0"], "Invalid value for '--block-size'", 2),
        (["--acceptance", "1.5", "--draft", arch("llama")], "error: --acceptance 1.5: expected a rate in [0, 1]", 2),
        (["--weights-format", "mxfp4,which=experts"], "error: --weights-format which: experts: no linear", 2),
        (["--weights-format", "gptq,bits=3"], "error: --weights-format bits: ", 2),
        (["--memory-utilization", "x"], "error: --memory-utilization", 2),
    ]:
        r = cli("serve", arch("llama"), *args)
        assert r.exit_code == status and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 or "Usage" in r.stderr


@settings(max_examples=2, deadline=None, derandomize=True)
@given(st.integers(1, 3000), st.integers(0, 3000), st.integers(1, 500), st.sampled_from([1, 16, 32]))
def test_a_shared_prefix_is_held_once_in_whole_blocks(prompt, prefix, output, block):
    """vLLM's prefix caching shares whole blocks: the first prefix // block_size blocks are held once,
    each sequence holds the rest of its blocks; a decode step reads the shared ones once."""
    prefix = min(prefix, prompt)
    kw = dict(prompt=prompt, output=output, block_size=block, concurrency=2)
    alone, s = served("llama", **kw), served("llama", prefix=prefix, **kw)
    per_token, shared = 2 * 32 * 4096 * 2, prefix // block * block
    g = s.numbers["per_gpu"]
    assert g["shared_prefix_bytes"] == shared * per_token
    assert g["kv_bytes_per_sequence"] == (-(-(prompt + output) // block) * block - shared) * per_token
    assert s.numbers["max_concurrency"] == (g["kv_pool_bytes"] - g["shared_prefix_bytes"]) // g["kv_bytes_per_sequence"]
    read = alone.numbers["decode"]["bytes_per_step"] - s.numbers["decode"]["bytes_per_step"]
    assert read == g["shared_prefix_bytes"]  # two sequences, the prefix read once instead of twice
    with pytest.raises(SpecError, match="prefix 1: sharing a prefix is modelled for full attention caches only"):
        served("mistral", prefix=1, block_size=1, concurrency=1)


def test_the_memory_utilization_a_batch_needs_fits_it():
    """Set vLLM's --gpu-memory-utilization to what serve says a batch needs, and that batch fits; a
    millionth less, and it does not."""
    kw = dict(prompt=2000, output=500)
    need = served("llama", concurrency=20, **kw).numbers["memory_utilization_needed"]
    assert served("llama", memory_utilization=need + 1e-9, **kw).numbers["max_concurrency"] >= 20
    assert served("llama", memory_utilization=need - 1e-6, **kw).numbers["max_concurrency"] < 20


def test_the_curve_and_the_disaggregated_figures_are_the_bounds_at_each_batch():
    s = served("llama", prompt=1000, output=100, concurrency=24)
    n = s.numbers
    assert [r["batch"] for r in n["curve"]] == [1, 2, 4, 8, 16, 24]
    for row in n["curve"][2::3]:
        at = served("llama", prompt=1000, output=100, concurrency=row["batch"]).numbers
        assert (row["tpot_seconds"], row["memory_utilization_needed"]) == (at["tpot_seconds"],
                                                                           at["memory_utilization_needed"])
    d = n["disaggregated"]
    assert d["kv_bytes_per_request"] == 1000 * 2 * 32 * 4096 * 2  # the prompt's cache, every layer
    assert d["transfer_seconds"] == d["kv_bytes_per_request"] / 50e9  # one H100's 400 Gb/s NIC
    assert d["prefill_replicas_per_decode_replica"] == 24 / (100 * n["tpot_seconds"]) * n["ttft_seconds"]


@pytest.mark.slow  # matplotlib's import
@pytest.mark.needs("matplotlib")
def test_plot_draws_the_curve(cli, tmp_path):
    r = cli("serve", arch("llama"), "--concurrency", "24", "--plot", tmp_path / "curve.png")
    assert r.exit_code == 0 and (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_offloaded_experts_cross_the_host_link_as_the_cache_misses():
    """Mixtral-8x7B on one H100, routed experts in host memory: 32 layers x 8 experts x 3 matrices of
    4096 x 14336 in bf16 leave the GPU; the rest of its memory caches experts; a token reads 2 of 8
    experts a layer, the missed share over PCIe Gen5 (64 GB/s each way)."""
    experts = 32 * 8 * 3 * 4096 * 14336 * 2
    s = served("mixtral", offload_experts=True, prompt=512, output=128)
    n, o = s.numbers, s.numbers["offload"]
    full = symcost.memory(symcost.load(arch("mixtral"))).numbers["weights_bytes"]
    assert o["routed_expert_bytes"] == experts and n["per_gpu"]["weights_bytes"] == full - experts
    room = n["per_gpu"]["kv_pool_bytes"] - n["per_gpu"]["kv_bytes_per_sequence"]  # one sequence's cache
    assert o["expert_cache_bytes"] == room < experts and o["hit_rate"] == room / experts and o["hit_rate_assumed"]
    assert o["link_bytes_per_token"] == (1 - room / experts) * experts / 4
    assert o["link_seconds_per_token"] == o["link_bytes_per_token"] / 64e9
    assert n["tpot_seconds"] == o["link_seconds_per_token"] == 1 / o["tokens_per_second_ceiling"]
    given = served("mixtral", offload_experts=True, hit_rate=0.5, prompt=512, output=128).numbers["offload"]
    assert given["link_bytes_per_token"] == experts / 8 and not given["hit_rate_assumed"]
    with pytest.raises(SpecError, match="no moe layer"):
        served("llama", offload_experts=True)
    with pytest.raises(SpecError, match="no host link in the catalog"):
        served("mixtral", offload_experts=True, hardware="tpu-v5p")
    with pytest.raises(SpecError, match=r"hit_rate 1.5: expected the share"):
        served("mixtral", offload_experts=True, hit_rate=1.5)


def test_key_value_heads_fewer_than_tp_are_replicated_as_vllm_does():
    """Llama-3.3-70B (8 KV heads) at tp 16: vLLM's QKVParallelLinear gives each rank one KV head (each
    replicated twice): its k and v projections of 8192 x 128 and one head's cache, beside a sixteenth
    of every other matrix."""
    seventy = symcost.load(ROOT / "examples" / "llama-3-70b.yaml")
    g = symcost.serve(seventy, tp=16, concurrency=1).numbers["per_gpu"]
    d, f, v, layers, hd = 8192, 28672, 128256, 80, 128
    per_layer = d * (64 * hd // 16) * 2 + 2 * d * hd + 3 * d * (f // 16) + 2 * d
    assert g["weights_bytes"] == 2 * (layers * per_layer + 2 * (v // 16) * d + d)
    assert g["kv_bytes_per_token"] == layers * 2 * 1 * hd * 2
    with pytest.raises(SpecError, match="tp 12: neither divides nor is a multiple of kv_heads = 8"):
        symcost.serve(seventy, tp=12, concurrency=1)
    with pytest.raises(SpecError, match="does not divide kv_heads"):  # plan keeps refusing: training frameworks do
        symcost.plan(seventy, gpus=16, tp=16)


MLA = """
name: mla-tp
dims: {{d: {d}, h: {h}, V: {V}, seq_len: 4, batch: 1}}
layers:
  - embedding: {{vocab: V, dim: d}}
  - rotary: {{dim: 2}}
  - repeat: 2
    layers:
      - rmsnorm: {{dim: d}}
      - mla: {{dim: d, heads: h, q_lora_rank: {q}, kv_lora_rank: 6, qk_nope_dim: 2, qk_rope_dim: 2, v_head_dim: 3,
              causal: true}}
      - rmsnorm: {{dim: d}}
      - mlp: {{dim: d, hidden: {f}, gated: true, activation: silu}}
  - rmsnorm: {{dim: d}}
  - lm_head: {{dim: d, vocab: V}}
"""


@pytest.mark.needs("torch")
@settings(max_examples=3, deadline=None, derandomize=True)
@given(st.sampled_from([2, 4, 8]), st.integers(1, 2), st.sampled_from(["null", 5]), st.integers(1, 2))
def test_mla_splits_by_heads_as_vllm_does_and_dtensor_agrees(tp, k, q, m):
    """vLLM's MLA: down-projections and their norms whole on every rank, the up-projections by heads,
    o_proj by rows (the rule's torch plan applied by DTensor on a fake world: each rank's parameters),
    the latent cache whole on every rank; plan refuses the split for training."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh

    from symcost.measure import reference, shards

    spec = symcost.loads(MLA.format(d=4 * tp, h=tp * k, V=64 * m, q=q, f=2 * tp))
    d = symcost.derive(spec)
    with shards.fake_world(tp):
        mesh = init_device_mesh("cpu", (tp,))
        with torch.device("meta"):
            model = reference.build(d, dim_values(d, {}))
        shards.tensor_parallel(model, mesh)
        local = shards.local_params(model)
    s = symcost.serve(spec, tp=tp, precision="fp32", concurrency=1, hardware="h200")
    assert s.numbers["per_gpu"]["weights_bytes"] == 4 * local
    assert s.numbers["per_gpu"]["kv_bytes_per_token"] == 2 * (6 + 2) * 4  # two layers' latent and rope key
    n = s.numbers
    assert not n["decode"]["flops_in_bound"] and n["decode"]["compute_bound_batch"] is None
    assert n["tpot_seconds"] == n["decode"]["bytes_per_step"] / (tp * 4800e9)  # its bytes alone bound it
    with pytest.raises(SpecError, match="mla layers have no tensor-parallel rule for training"):
        symcost.plan(spec, gpus=tp, tp=tp)


@pytest.mark.needs("torch")
@pytest.mark.slow
@pytest.mark.parametrize("length", [9, 5])
def test_a_mamba_hybrid_s_sequence_holds_its_attention_keys_and_its_states(length):
    """Jamba (import-hf of ai21labs' tiny config, tests/data/hf): attention layers' keys and values grow
    with the sequence, Mamba layers' convolution and SSM states stay fixed — together what the reference
    build's caches hold after `length` tokens."""
    from published import DATA
    from symcost.measure.reference import measure_decode

    spec = symcost.loads(symcost.import_hf(str(DATA / "Jamba-tiny-random.json")).yaml)
    step = symcost.derive(spec, decode=True)
    at = dim_values(step, {"seq_len": 4, "batch": 1, "context": length - 1})
    cached = measure_decode(step, at, length - 1, dtype="bf16", device="cpu").cache_bytes
    s = symcost.serve(spec, {"seq_len": 4}, prompt=4, output=length - 4, block_size=1, concurrency=1)
    g = s.numbers["per_gpu"]
    assert g["kv_bytes_per_sequence"] == cached
    assert 0 < g["kv_bytes_per_token"] * length < cached  # the states on top of the growing keys and values


def test_gpt_oss_120b_on_one_h100_as_the_readme_says():
    """Its MXFP4 experts (tests/core/test_quantization.py: the published checkpoint's bytes) on one
    H100 SXM: the KV pool left by 0.9 of 80 GB holds 96 requests of 1,024 + 256 tokens, its 18 sliding
    layers keeping 127 tokens each; a draft of its own two layers (each with its 128 experts, bf16)
    leaves no KV cache."""
    spec = symcost.quantize(arch("gpt_oss"), format="mxfp4", which="experts")
    s = symcost.serve(spec, hardware="h100-sxm", prompt=1024, output=256)
    per_gpu = s.numbers["per_gpu"]
    assert per_gpu["weights_bytes"] == 65_248_815_744
    # a sequence: 18 full layers of 1,280 tokens (80 blocks of 16) and 18 sliding ones of 127 (not rounded:
    # vLLM holds the blocks the window covers), 2 x 8 heads x 64 x 2 bytes a token a layer
    assert per_gpu["kv_bytes_per_sequence"] == 18 * (1280 + 127) * 2 * 8 * 64 * 2
    assert s.numbers["max_concurrency"] == 96
    with pytest.raises(DoesNotFit, match="leave no KV cache"):
        symcost.serve(spec, hardware="h100-sxm", prompt=1024, output=256, draft=arch("gpt_oss"),
                      draft_values={"n_layers": 2})


def test_the_title_names_the_dims_a_call_set(cli):
    """`--set` to another size: the title says so beside the spec's name (as plan's does); the JSON name stays."""
    out = cli("serve", arch("llama"), "--set", "d_model=8192", "--tp", "2")
    assert out.stdout.startswith("llama-2-7b (d_model=8192) served on 2 x NVIDIA H100 SXM5 80GB")
    assert cli("serve", arch("llama"), "--tp", "2").stdout.startswith("llama-2-7b served on")
