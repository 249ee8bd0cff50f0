"""Published sizes and files the tests share (no test imports another test): a config built on a
config class's defaults would change meaning silently when transformers changes them, so every size a
test relies on is written here or read from a published file in tests/data/hf."""

import json
from pathlib import Path

DATA = Path(__file__).parent / "data" / "hf"


def published(name: str):
    """transformers' config object of a published file in tests/data/hf."""
    from symcost.measure.hf import config_object

    data = json.loads((DATA / f"{name}.json").read_text())
    return config_object(data["model_type"], data)


# mistralai/Mamba-Codestral-7B-v0.1's sizes, field by field
MAMBA_CODESTRAL = {"hidden_size": 4096, "num_hidden_layers": 64, "vocab_size": 32768, "num_heads": 128, "head_dim": 64,
                   "state_size": 128, "expand": 2, "n_groups": 8, "conv_kernel": 4, "chunk_size": 256,
                   "use_bias": False, "use_conv_bias": True, "tie_word_embeddings": False}

# ibm-ai-platform/Bamba-9B's sizes, field by field
BAMBA_9B = {"hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 128000, "intermediate_size": 14336,
            "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 262144,
            "mamba_n_heads": 128, "mamba_d_head": 64, "mamba_n_groups": 1, "mamba_d_state": 256, "mamba_d_conv": 4,
            "mamba_expand": 2, "mamba_chunk_size": 256, "attn_layer_indices": None, "tie_word_embeddings": False}


def gpt2_small_params() -> int:
    # openai-community/gpt2: n_embd 768, n_layer 12, n_positions 1024, vocab 50257, n_inner 4*768
    d, L, P, V, ff = 768, 12, 1024, 50257, 4 * 768
    wte, wpe = V * d, P * d  # 38,597,376 + 786,432
    ln = 2 * d  # weight + bias
    c_attn = d * 3 * d + 3 * d  # fused q, k, v with bias: 1,771,776
    c_proj = d * d + d  # 590,592
    c_fc = d * ff + ff  # 2,362,368
    mlp_proj = ff * d + d  # 2,360,064
    block = 2 * ln + c_attn + c_proj + c_fc + mlp_proj  # 7,087,872
    return wte + wpe + L * block + ln  # lm_head tied to wte: 0 more


def llama2_7b_params() -> int:
    # meta-llama/Llama-2-7b-hf: hidden 4096, 32 layers, 32 heads (= kv heads), ffn 11008, vocab 32000
    d, L, ff, V = 4096, 32, 11008, 32000
    attn = 4 * d * d  # q, k, v, o, no biases: 67,108,864
    mlp = 3 * d * ff  # gate, up, down: 135,266,304
    block = attn + mlp + 2 * d  # two RMSNorm weights
    return V * d + L * block + d + V * d  # embed, blocks, final norm, untied head


def llama_forward(n, d=4096, L=32, ff=11008, V=32000):
    """Llama-2-7B forward FLOPs for one sequence of n tokens, by hand: every weight matrix
    once per token (q, k, v, o: 4d²; gate, up, down: 3·d·ff; head: d·V), plus scores and
    values 2 x 2·n²·d per layer."""
    return 2 * n * (L * (4 * d * d + 3 * d * ff) + d * V) + L * 4 * n * n * d


# TensorRT-LLM 0.6.1's throughput tables (static batches, gptSessionBenchmark; output tokens/s per GPU), H100 SXM
# with FP8 weights, matmuls and KV cache, and A100 80GB in FP16: docs/source/performance.md of
# https://github.com/NVIDIA/TensorRT-LLM at v0.6.1. (model, hardware, dtype, tp, batch, prompt, output, measured,
# role): "fit" rows fitted symcost/plan/efficiency.yaml's entries, "held out" rows checked them; LLaMA 70B's rows
# (GQA) were measured before TensorRT-LLM's XQA kernel (its README, 2024-01-30: "2.4x more Llama-70B throughput"),
# when grouped-query decode attention read the cache once per query head, and predict nothing about symcost's model
# of a cache read once per KV head: only their bound is checked. The A100's LLaMA 7B row of batch 60, 128 + 2048
# tokens is left out: its FP16 cache (63.75 GiB) and weights do not fit 80 GB.
TRTLLM_0_6_1 = [
    ("Llama-2-7b-hf", "h100-sxm", "fp8", 1, 768, 128, 128, 19694, "fit"),
    ("Llama-2-7b-hf", "h100-sxm", "fp8", 1, 112, 128, 2048, 6818, "fit"),
    ("Llama-2-7b-hf", "h100-sxm", "fp8", 1, 80, 2048, 128, 2244, "fit"),
    ("Llama-2-7b-hf", "h100-sxm", "fp8", 1, 48, 2048, 2048, 2740, "fit"),
    ("gpt-j-6b", "h100-sxm", "fp8", 1, 1024, 128, 128, 26150, "held out"),
    ("gpt-j-6b", "h100-sxm", "fp8", 1, 120, 128, 2048, 8011, "held out"),
    ("gpt-j-6b", "h100-sxm", "fp8", 1, 64, 2048, 128, 2551, "held out"),
    ("gpt-j-6b", "h100-sxm", "fp8", 1, 64, 2048, 2048, 3327, "held out"),
    ("Llama-2-70b-hf", "h100-sxm", "fp8", 2, 1024, 128, 128, 2657, "bound"),
    ("Llama-2-70b-hf", "h100-sxm", "fp8", 4, 480, 128, 2048, 1486, "bound"),
    ("Llama-2-70b-hf", "h100-sxm", "fp8", 2, 96, 2048, 128, 306, "bound"),
    ("Llama-2-70b-hf", "h100-sxm", "fp8", 2, 64, 2048, 2048, 547, "bound"),
    ("Llama-2-7b-hf", "a100-80gb", "fp16", 1, 384, 128, 128, 5586, "fit"),
    ("Llama-2-7b-hf", "a100-80gb", "fp16", 1, 52, 2048, 128, 591, "fit"),
    ("Llama-2-7b-hf", "a100-80gb", "fp16", 2, 64, 2048, 2048, 782, "fit"),
    ("gpt-j-6b", "a100-80gb", "fp16", 1, 512, 128, 128, 6374, "held out"),
    ("gpt-j-6b", "a100-80gb", "fp16", 2, 120, 128, 2048, 2192, "held out"),
    ("gpt-j-6b", "a100-80gb", "fp16", 1, 60, 2048, 128, 670, "held out"),
    ("gpt-j-6b", "a100-80gb", "fp16", 2, 64, 2048, 2048, 903, "held out"),
    ("Llama-2-70b-hf", "a100-80gb", "fp16", 4, 1280, 128, 128, 670, "bound"),
    ("Llama-2-70b-hf", "a100-80gb", "fp16", 4, 240, 128, 2048, 525, "bound"),
    ("Llama-2-70b-hf", "a100-80gb", "fp16", 4, 120, 2048, 128, 79, "bound"),
]

# Megatron-LM's GPT models on A100 80GB, fp16, sequences of 2,048, tp 8 within a DGX node, no data parallelism:
# Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models", arXiv 2205.05198),
# sizes, layouts and batches from Table 3, end-to-end iteration seconds from Table 5 (full recomputation; selective
# recomputation with sequence parallelism), the interleaving as Calculon's validation reads those runs
# (github.com/calculon-ai/calculon, validation/seqsel/tab5). (name, d_model, layers, heads, gpus, pp, virtual stages,
# micro-batch, global batch, seconds full, seconds selective, role): role as TRTLLM_0_6_1's.
KORTHIKANTI_2022 = [
    ("22B", 6144, 48, 64, 8, 1, 1, 4, 4, 1.42, 1.10, "fit"),
    ("175B", 12288, 96, 96, 64, 8, 3, 1, 64, 18.13, 13.75, "held out"),
    ("530B", 20480, 105, 128, 280, 35, 3, 1, 280, 49.05, 37.83, "held out"),
    ("1T", 25600, 128, 160, 512, 64, 1, 1, 512, 94.42, 71.49, "fit"),
]

# MT-NLG 530B (Smith et al. 2022, arXiv 2201.11990, Sec. 2.4) as Megatron-DeepSpeed trained it in 2021 on DGX A100:
# global batch 1,920 sequences of 2,048, tp 8, pp 35, micro-batch 1; (GPUs, seconds per iteration)
MT_NLG_530B = [(2240, 60.1), (2800, 50.2), (3360, 44.4)]

# meta-llama/Llama-2-70b-hf's config: Llama-2-7b-hf.json's with these sizes
LLAMA_2_70B = {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64,
               "num_key_value_heads": 8}


def run_name(model, hardware, dtype, tp, batch, prompt, output, measured, role=None) -> str:
    """A published run as an efficiency entry names it."""
    return (f"TensorRT-LLM 0.6.1 {model} {dtype} on {hardware}, tp {tp}, batch {batch}, {prompt} + {output} "
            f"tokens: {measured:,} tokens/s/GPU")


def config(name: str) -> dict:
    """A published config in tests/data/hf as a dict (Llama-2-70b-hf: 7b's with LLAMA_2_70B's sizes)."""
    if name == "Llama-2-70b-hf":
        return json.loads((DATA / "Llama-2-7b-hf.json").read_text()) | LLAMA_2_70B
    return json.loads((DATA / f"{name}.json").read_text())
