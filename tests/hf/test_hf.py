"""import-hf and verification against Hugging Face implementations: for each supported
family, a config typed in from the published hyper-parameters (no hub access) is imported,
and the spec's parameters and forward FLOPs must equal those of the `transformers` model
built from the same config on meta — exactly, or with every difference itemised."""

import copy
import json
import re
import subprocess
import sys

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
T = pytest.importorskip("transformers")  # the hf extra, which the README's test command installs
pytest.importorskip("torch")  # verify --hf builds transformers' models

import symcost
from symcost.errors import SpecError
from symcost.evaluate import dim_values
from symcost.symbols import dim
from symcost.hf import import_config

from conftest import arch
from published import DATA, MAMBA_CODESTRAL, published

# family: (config with the published sizes, its published parameter count or None); every size a row
# relies on is written in it or read from a published file, never left to a config class's defaults
PUBLISHED = {
    "gpt2": (lambda: published("gpt2"), 124_439_808),  # openai-community/gpt2
    "bert": (lambda: T.BertConfig(  # bert-base-uncased, BertModel with pooler
        vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        max_position_embeddings=512, type_vocab_size=2), 109_482_240),
    "llama-1": (lambda: T.LlamaConfig(  # LLaMA-7B (Touvron et al. 2023, Table 2): 2048-token context
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008, vocab_size=32000,
        max_position_embeddings=2048), 6_738_415_616),
    "llama-2": (lambda: T.LlamaConfig(  # Llama-2-7b-hf
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008, vocab_size=32000,
        max_position_embeddings=4096), 6_738_415_616),
    "llama": (lambda: T.LlamaConfig(  # Meta-Llama-3-8B
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        intermediate_size=14336, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0), 8_030_261_248),
    "llama-3.1": (lambda: T.LlamaConfig(  # Meta-Llama-3.1-8B: Llama 3 with llama3 rope scaling (no count changes)
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        intermediate_size=14336, vocab_size=128256, max_position_embeddings=131072,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192}), 8_030_261_248),
    "llama-3.2": (lambda: T.LlamaConfig(  # Llama-3.2-1B: tied embeddings, head_dim 64
        hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
        intermediate_size=8192, vocab_size=128256, max_position_embeddings=131072, tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192}), 1_235_814_400),
    "mistral": (lambda: T.MistralConfig(  # Mistral-7B-v0.1
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        intermediate_size=14336, vocab_size=32000, sliding_window=4096), 7_241_732_096),
    "mixtral": (lambda: published("Mixtral-8x7B-v0.1"), 46_702_792_704),
    "gpt_oss": (lambda: published("gpt-oss-20b"), 20_914_757_184),  # openai/gpt-oss-20b: 20.91B (model card)
    "qwen2": (lambda: T.Qwen2Config(  # Qwen2-7B
        hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
        intermediate_size=18944, vocab_size=152064, max_position_embeddings=32768, tie_word_embeddings=False), None),
    "qwen2_moe": (lambda: T.Qwen2MoeConfig(  # Qwen1.5-MoE-A2.7B
        hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16,
        intermediate_size=5632, moe_intermediate_size=1408, shared_expert_intermediate_size=5632, num_experts=60,
        num_experts_per_tok=4, vocab_size=151936, max_position_embeddings=8192, tie_word_embeddings=False), None),
    "qwen3_moe": (lambda: T.Qwen3MoeConfig(  # Qwen3-30B-A3B
        hidden_size=2048, num_hidden_layers=48, num_attention_heads=32, num_key_value_heads=4, head_dim=128,
        intermediate_size=6144, moe_intermediate_size=768, num_experts=128, num_experts_per_tok=8,
        vocab_size=151936, max_position_embeddings=40960, tie_word_embeddings=False), None),
    "qwen3": (lambda: T.Qwen3Config(  # Qwen3-8B
        hidden_size=4096, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
        intermediate_size=12288, vocab_size=151936, max_position_embeddings=40960, tie_word_embeddings=False), None),
    "starcoder2": (lambda: T.Starcoder2Config(  # bigcode/starcoder2-3b
        hidden_size=3072, num_hidden_layers=30, num_attention_heads=24, num_key_value_heads=2, intermediate_size=12288,
        vocab_size=49152, max_position_embeddings=16384, sliding_window=4096, use_bias=True, bos_token_id=0,
        eos_token_id=0), None),
    "gpt_bigcode": (lambda: T.GPTBigCodeConfig(  # bigcode/gpt_bigcode-santacoder
        n_embd=2048, n_layer=24, n_head=16, n_inner=8192, n_positions=2048, vocab_size=49280, multi_query=True,
        bos_token_id=0, eos_token_id=0), None),
    "gemma": (lambda: T.GemmaConfig(  # gemma-7b
        hidden_size=3072, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=16, head_dim=256,
        intermediate_size=24576, vocab_size=256000), 8_537_680_896),
    "gemma2": (lambda: published("gemma-2-2b"), 2_614_341_888),
    "gemma3_text": (lambda: T.Gemma3TextConfig(  # google/gemma-3-1b-pt: 26 layers, 4 groups of 6 and 2 local
        hidden_size=1152, num_hidden_layers=26, num_attention_heads=4, num_key_value_heads=1, head_dim=256,
        intermediate_size=6912, vocab_size=262144, sliding_window=512, max_position_embeddings=32768), 999_885_952),
    "phi3": (lambda: T.Phi3Config(  # Phi-3-mini-4k-instruct
        hidden_size=3072, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
        intermediate_size=8192, vocab_size=32064, max_position_embeddings=4096, sliding_window=2047,
        tie_word_embeddings=False), 3_821_079_552),
    "deepseek_v3": (lambda: published("DeepSeek-R1"), 671_026_404_352),  # DeepSeek-V3's layout
    "deepseek_v2": (lambda: T.DeepseekV2Config(  # deepseek-ai/DeepSeek-V2-Lite: no query LoRA
        hidden_size=2048, num_hidden_layers=27, num_attention_heads=16, num_key_value_heads=16, kv_lora_rank=512,
        q_lora_rank=None, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, intermediate_size=10944,
        moe_intermediate_size=1408, n_routed_experts=64, n_shared_experts=2, num_experts_per_tok=6,
        first_k_dense_replace=1, vocab_size=102400, max_position_embeddings=163840), None),
    "gpt_neox": (lambda: T.GPTNeoXConfig(  # EleutherAI/pythia-1.4b (Biderman et al. 2023, Table 1: 1,414,647,808)
        hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, intermediate_size=8192, vocab_size=50304,
        max_position_embeddings=2048, rotary_pct=0.25, use_parallel_residual=True), 1_414_647_808),
    "gpt_neox-sequential": (lambda: T.GPTNeoXConfig(  # the same without parallel residual
        hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048, vocab_size=50304,
        max_position_embeddings=2048, use_parallel_residual=False), None),
    "phi": (lambda: T.PhiConfig(  # microsoft/phi-2
        hidden_size=2560, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, intermediate_size=10240,
        vocab_size=51200, max_position_embeddings=2048, partial_rotary_factor=0.4), None),
    "gptj": (lambda: T.GPTJConfig(  # EleutherAI/gpt-j-6b
        n_embd=4096, n_layer=28, n_head=16, rotary_dim=64, vocab_size=50400, n_positions=2048), None),
    "stablelm": (lambda: T.StableLmConfig(  # stabilityai/stablelm-2-1_6b: LayerNorms, q/k/v biases, rotary on 1/4
        hidden_size=2048, num_hidden_layers=24, num_attention_heads=32, num_key_value_heads=32, intermediate_size=5632,
        vocab_size=100352, max_position_embeddings=4096, use_qkv_bias=True, partial_rotary_factor=0.25,
        tie_word_embeddings=False), None),
    "stablelm-parallel": (lambda: T.StableLmConfig(  # the same layers with parallel residual
        hidden_size=256, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=8, intermediate_size=512,
        vocab_size=1000, use_qkv_bias=True, use_parallel_residual=True), None),
    "olmo": (lambda: T.OlmoConfig(  # allenai/OLMo-7B-hf: LayerNorms without parameters
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008, vocab_size=50304,
        max_position_embeddings=2048, tie_word_embeddings=False, pad_token_id=1, bos_token_id=None,
        eos_token_id=50279), None),
    "granite": (lambda: T.GraniteConfig(  # ibm-granite/granite-3.0-2b-base: Llama with scalar multipliers
        hidden_size=2048, num_hidden_layers=40, num_attention_heads=32, num_key_value_heads=8, intermediate_size=8192,
        vocab_size=49155, max_position_embeddings=4096, tie_word_embeddings=True, embedding_multiplier=12.0,
        logits_scaling=8.0, residual_multiplier=0.22, attention_multiplier=0.015625), None),
    "granitemoe": (lambda: T.GraniteMoeConfig(  # ibm-granite/granite-3.0-3b-a800m-base: 40 experts, top-8
        hidden_size=1536, num_hidden_layers=32, num_attention_heads=24, num_key_value_heads=8, intermediate_size=512,
        num_local_experts=40, num_experts_per_tok=8, vocab_size=49155, max_position_embeddings=4096,
        tie_word_embeddings=True, embedding_multiplier=12.0, logits_scaling=6.0, residual_multiplier=0.22,
        attention_multiplier=0.015625), None),
    "cohere": (lambda: T.CohereConfig(  # CohereForAI/c4ai-command-r-v01: parallel attention and MLP, one LayerNorm
        hidden_size=8192, num_hidden_layers=40, num_attention_heads=64, num_key_value_heads=64, intermediate_size=22528,
        vocab_size=256000, max_position_embeddings=8192, logit_scale=0.0625, use_qk_norm=False), None),
    "olmo2": (lambda: T.Olmo2Config(  # allenai/OLMo-2-1124-7B: norms after each branch, Q/K norms over all heads
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, intermediate_size=11008,
        vocab_size=100352, max_position_embeddings=4096, tie_word_embeddings=False, pad_token_id=100277,
        bos_token_id=None, eos_token_id=100257), None),
    "olmo3": (lambda: T.Olmo3Config(  # OLMo 3 7B's layout: OLMo 2's with 4,096-token windows in three layers of four
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, intermediate_size=11008,
        vocab_size=100278, max_position_embeddings=65536, sliding_window=4096, tie_word_embeddings=False,
        pad_token_id=100277, bos_token_id=None, eos_token_id=100257), None),
    "seed_oss": (lambda: T.SeedOssConfig(  # ByteDance-Seed/Seed-OSS-36B: q, k, v biased, o not
        hidden_size=5120, num_hidden_layers=64, num_attention_heads=80, num_key_value_heads=8, head_dim=128,
        intermediate_size=27648, vocab_size=155136, max_position_embeddings=524288, attention_bias=True,
        attention_out_bias=False, mlp_bias=False, tie_word_embeddings=False), None),
    "smollm3": (lambda: T.SmolLM3Config(  # HuggingFaceTB/SmolLM3-3B: every fourth layer without rotary, tied head
        hidden_size=2048, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=4, intermediate_size=11008,
        vocab_size=128256, max_position_embeddings=65536, rope_theta=5_000_000.0, tie_word_embeddings=True,
        use_sliding_window=False, pad_token_id=128004, bos_token_id=128000, eos_token_id=128012), None),
    "ernie4_5_moe": (lambda: T.Ernie4_5_MoeConfig(  # baidu/ERNIE-4.5-21B-A3B: a dense layer, then 64 experts top-6
        hidden_size=2560, num_hidden_layers=28, num_attention_heads=20, num_key_value_heads=4, intermediate_size=12288,
        moe_intermediate_size=1536, moe_num_experts=64, moe_k=6, moe_num_shared_experts=2, moe_layer_start_index=1,
        vocab_size=103424, max_position_embeddings=131072, tie_word_embeddings=True, use_bias=False), None),
    "exaone4": (lambda: T.Exaone4Config(  # LGAI-EXAONE/EXAONE-4.0-32B's layout: three sliding layers, then a NoPE global
        hidden_size=5120, num_hidden_layers=64, num_attention_heads=40, num_key_value_heads=8, head_dim=128,
        intermediate_size=27392, vocab_size=102400, max_position_embeddings=131072, sliding_window=4096,
        sliding_window_pattern=4, tie_word_embeddings=False), None),
    "glm4_moe": (lambda: T.Glm4MoeConfig(  # zai-org/GLM-4.5-Air: 106B total; one dense layer, then 128 experts, top-8
        hidden_size=4096, num_hidden_layers=46, num_attention_heads=96, num_key_value_heads=8, head_dim=128,
        intermediate_size=10944, moe_intermediate_size=1408, n_routed_experts=128, num_experts_per_tok=8,
        n_shared_experts=1, first_k_dense_replace=1, vocab_size=151552, max_position_embeddings=131072,
        partial_rotary_factor=0.5, use_qk_norm=False, attention_bias=True, tie_word_embeddings=False), None),
    "llama4_text": (lambda: T.Llama4TextConfig(  # meta-llama/Llama-4-Scout-17B-16E's text_config: 16 experts, top-1
        hidden_size=5120, num_hidden_layers=48, num_attention_heads=40, num_key_value_heads=8, head_dim=128,
        intermediate_size=8192, intermediate_size_mlp=16384, num_local_experts=16, num_experts_per_tok=1,
        interleave_moe_layer_step=1, vocab_size=202048, attention_chunk_size=8192, max_position_embeddings=10485760,
        tie_word_embeddings=False), 107_769_861_120),
    "olmoe": (lambda: T.OlmoeConfig(  # allenai/OLMoE-1B-7B-0924: 64 experts, top-8, Q/K norms over all heads
        hidden_size=2048, num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=16, intermediate_size=1024,
        num_experts=64, num_experts_per_tok=8, vocab_size=50304, max_position_embeddings=4096,
        tie_word_embeddings=False, pad_token_id=1, bos_token_id=None, eos_token_id=50279), None),
    "falcon": (lambda: published("falcon-7b-instruct"), 6_921_720_704),  # tiiuae/falcon-7b's layout: multi-query
    "falcon-40b": (lambda: T.FalconConfig(  # tiiuae/falcon-40b: grouped kv heads, a norm per branch
        hidden_size=8192, num_hidden_layers=60, num_attention_heads=128, num_kv_heads=8, new_decoder_architecture=True,
        vocab_size=65024), None),
    "falcon-rw": (lambda: T.FalconConfig(  # tiiuae/falcon-rw-1b: ALiBi, sequential, biases, a kv head per head
        hidden_size=2048, num_hidden_layers=24, num_attention_heads=32, alibi=True, multi_query=False,
        parallel_attn=False, bias=True, vocab_size=50304), None),
    "bloom": (lambda: T.BloomConfig(  # bigscience/bloom-560m: ALiBi, an embedding LayerNorm
        hidden_size=1024, n_layer=24, n_head=16, vocab_size=250880), 559_214_592),  # its model card: 559,214,592
    "bart": (lambda: T.BartConfig(  # facebook/bart-large: BartForConditionalGeneration
        vocab_size=50265, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
        decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024,
        scale_embedding=False, tie_word_embeddings=True), 406_291_456),
    "dbrx": (lambda: T.DbrxConfig(  # databricks/dbrx-base's layout at a size the CPU builds (its experts route by value)
        d_model=96, n_heads=6, n_layers=2, max_seq_len=128, vocab_size=1000,
        attn_config={"kv_n_heads": 2, "clip_qkv": 8, "rope_theta": 500000}, ffn_config={"ffn_hidden_size": 64, "moe_num_experts": 16,
                                                                 "moe_top_k": 4}), None),
    "gemma3": (lambda: T.Gemma3Config(  # google/gemma-3-4b-pt's layout at a size the CPU builds (images found by value)
        text_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 6, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "head_dim": 32, "sliding_window": 16, "vocab_size": 300,
                     "max_position_embeddings": 64},
        vision_config={"hidden_size": 48, "image_size": 32, "intermediate_size": 96, "num_attention_heads": 2,
                       "num_hidden_layers": 2, "patch_size": 4, "vision_use_head": False},
        mm_tokens_per_image=16, architectures=["Gemma3ForConditionalGeneration"]), None),
    "mamba": (lambda: T.MambaConfig(  # state-spaces/mamba-130m-hf
        hidden_size=768, num_hidden_layers=24, vocab_size=50280), None),
    "mamba2": (lambda: T.Mamba2Config(**MAMBA_CODESTRAL), None),
    "bamba": (lambda: T.BambaConfig(  # Bamba's layout (Mamba-2 layers, attention at attn_layer_indices), small:
        hidden_size=64, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2,  # the CPU builds it
        intermediate_size=96, vocab_size=300, attn_layer_indices=[2, 4], mamba_n_heads=8, mamba_d_state=16,
        mamba_chunk_size=16, mamba_n_groups=2), None),
    "granitemoehybrid": (lambda: T.GraniteMoeHybridConfig(  # Granite 4.0's layout (Mamba-2 layers, attention
        hidden_size=64, num_hidden_layers=5, num_attention_heads=4, num_key_value_heads=2,  # where layer_types
        intermediate_size=48, shared_intermediate_size=40, vocab_size=300, num_local_experts=4,  # says, experts and
        num_experts_per_tok=2, layer_types=["mamba", "mamba", "attention", "mamba", "attention"],  # a shared MLP),
        mamba_n_heads=8, mamba_d_state=16, mamba_chunk_size=16, mamba_n_groups=2), None),  # small: the CPU builds it
    "deepseek_v32": (lambda: T.DeepseekV32Config(  # deepseek-ai/DeepSeek-V3.2-Exp: V3's sizes and the indexer's
        hidden_size=7168, num_hidden_layers=61, first_k_dense_replace=3, num_attention_heads=128, num_key_value_heads=128,
        q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
        intermediate_size=18432, moe_intermediate_size=2048, n_routed_experts=256, n_shared_experts=1,
        num_experts_per_tok=8, n_group=8, topk_group=4, vocab_size=129280, max_position_embeddings=163840,
        index_n_heads=64, index_head_dim=128, index_topk=2048), None),
    "glm_moe_dsa": (lambda: T.GlmMoeDsaConfig(  # zai-org/GLM-5: 744B (its card); DeepSeek's sparse attention on MLA
        hidden_size=6144, num_hidden_layers=78, first_k_dense_replace=3, num_attention_heads=64, num_key_value_heads=64,
        q_lora_rank=2048, kv_lora_rank=512, qk_nope_head_dim=192, qk_rope_head_dim=64, v_head_dim=256,
        intermediate_size=12288, moe_intermediate_size=2048, n_routed_experts=256, n_shared_experts=1,
        num_experts_per_tok=8, vocab_size=154880, max_position_embeddings=202752, index_n_heads=32,
        index_head_dim=128, index_topk=2048), None),
    "lfm2": (lambda: published("LFM2-1.2B"), 1_170_340_608),  # LiquidAI/LFM2-1.2B: 1.17B (its card)
    "xlstm": (lambda: T.xLSTMConfig(  # NX-AI/xLSTM-7b's sizes (tests/components/test_mlstm.py, by hand)
        vocab_size=50304, embedding_dim=4096, hidden_size=4096, num_blocks=32, num_hidden_layers=32, num_heads=8),
              6_865_424_896),
    "hunyuan_v1_moe": (lambda: T.HunYuanMoEV1Config(  # Hunyuan-A13B's layout at a size the CPU builds (its experts
        hidden_size=256, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2, head_dim=32,  # route
        intermediate_size=192, num_experts=8, moe_topk=[2] * 4, vocab_size=1000), None),  # by value): its sizes below
    "nemotron_h": (lambda: T.NemotronHConfig(  # nvidia/Nemotron-H-8B-Base-8K
        hidden_size=4096, hybrid_override_pattern="M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, intermediate_size=21504, mamba_num_heads=128,
        mamba_head_dim=64, n_groups=8, ssm_state_size=128, conv_kernel=4, chunk_size=128, vocab_size=131072,
        max_position_embeddings=8192, tie_word_embeddings=False), None),
    "falcon_h1": (lambda: T.FalconH1Config(  # tiiuae/Falcon-H1-Tiny-90M-Base's published config (its chunk: the
        hidden_size=512, intermediate_size=768, num_hidden_layers=24, num_attention_heads=8,  # 0.5B's, 128)
        num_key_value_heads=2, head_dim=64, vocab_size=32768, max_position_embeddings=262144, tie_word_embeddings=True,
        mamba_d_ssm=768, mamba_n_heads=24, mamba_d_head=32, mamba_d_state=64, mamba_n_groups=1, mamba_d_conv=4,
        mamba_chunk_size=128, mamba_conv_bias=True, mamba_proj_bias=False, mamba_rms_norm=False,
        mamba_norm_before_gate=False, projectors_bias=False, attention_bias=False, mlp_bias=False), None),
    "kimi_linear": (lambda: T.KimiLinearConfig(  # moonshotai/Kimi-Linear-48B-A3B-Instruct: 48B, 3B active (its card)
        hidden_size=2304, num_hidden_layers=27, num_attention_heads=32, num_key_value_heads=32, kv_lora_rank=512,
        q_lora_rank=None, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, intermediate_size=9216,
        moe_intermediate_size=1024, num_experts=256, num_experts_per_token=8, num_shared_experts=1, vocab_size=163840,
        linear_num_heads=32, linear_head_dim=128, linear_conv_kernel_dim=4, tie_word_embeddings=False,
        mlp_layer_types=["dense"] + ["sparse"] * 26,
        layer_types=["full_attention" if i in (3, 7, 11, 15, 19, 23, 26) else "linear_attention" for i in range(27)]),
        49_122_675_072),
    "minimax": (lambda: T.MiniMaxConfig(  # MiniMax-Text-01 (MiniMax 2025, Sec. 2): 456B, 45.9B active without the
        hidden_size=6144, num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8,  # table and head
        head_dim=128, intermediate_size=9216, num_local_experts=32, num_experts_per_tok=2, vocab_size=200064,
        block_size=256, max_position_embeddings=10240000,
        layer_types=["full_attention" if i % 8 == 7 else "linear_attention" for i in range(80)]), 456_089_655_296),
    "recurrent_gemma": (lambda: T.RecurrentGemmaConfig(  # google/recurrentgemma-2b: 2.7B (its card)
        hidden_size=2560, num_hidden_layers=26, num_attention_heads=10, num_key_value_heads=1, intermediate_size=15360,
        vocab_size=256000, attention_window_size=2048, conv1d_width=4, lru_width=2560,
        block_types=["recurrent", "recurrent", "attention"], tie_word_embeddings=True), 2_682_862_080),
    "longcat_flash": (lambda: T.LongcatFlashConfig(  # meituan-longcat/LongCat-Flash-Chat: 560B (its report)
        hidden_size=6144, num_layers=28, num_attention_heads=64, q_lora_rank=1536, kv_lora_rank=512,
        qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, head_dim=64, ffn_hidden_size=12288,
        expert_ffn_hidden_size=2048, n_routed_experts=512, zero_expert_num=256, moe_topk=12, vocab_size=131072,
        max_position_embeddings=131072), 560_664_958_976),
    "deepseek_v4": (lambda: T.DeepseekV4Config(  # deepseek-ai/DeepSeek-V4-Flash: 284B, 13B active (its card)
        vocab_size=129280, hidden_size=4096, moe_intermediate_size=2048, num_hidden_layers=43, num_attention_heads=64,
        num_key_value_heads=1, head_dim=512, q_lora_rank=1024, o_groups=8, o_lora_rank=1024, n_routed_experts=256,
        n_shared_experts=1, num_experts_per_tok=6, hc_mult=4, hc_sinkhorn_iters=20, sliding_window=128,
        index_n_heads=64, index_head_dim=128, index_topk=512, compress_ratios=[0, 0] + [4, 128] * 20 + [4, 0],
        num_hash_layers=3, qk_rope_head_dim=64), 284_332_230_231),
    "zamba2": (lambda: T.Zamba2Config(  # Zyphra/Zamba2-2.7B (github.com/Zyphra/Zamba2's config.json: 54 layers,
        hidden_size=2560, num_hidden_layers=54, num_attention_heads=32, num_mem_blocks=2,  # two shared blocks in
        adapter_rank=128, n_mamba_heads=80, mamba_d_state=64, mamba_ngroups=1, vocab_size=32000,  # turn, MLP adapters
        intermediate_size=10240, layers_block_type=[  # of rank 128, mamba_headdim 64, ffn 4 x hidden)
            "hybrid" if i in (6, 12, 18, 24, 30, 36, 42, 47, 51) else "mamba" for i in range(54)]), 2_662_214_560),
    "rwkv": (lambda: T.RwkvConfig(  # RWKV/rwkv-4-169m-pile: 169M (its card)
        hidden_size=768, num_hidden_layers=12, attention_hidden_size=768, intermediate_size=3072, vocab_size=50277,
        context_length=1024, tie_word_embeddings=False), 169_342_464),
    "jamba": (lambda: T.JambaConfig(  # ai21labs/Jamba-v0.1's layout at a small width: the meta build runs its scan
        hidden_size=256, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2, intermediate_size=512,
        num_experts=4, num_experts_per_tok=2, vocab_size=1000), None),
    "qwen3_next": (lambda: T.Qwen3NextConfig(  # Qwen/Qwen3-Next-80B-A3B-Instruct: 80B (model card)
        hidden_size=2048, num_hidden_layers=48, num_attention_heads=16, num_key_value_heads=2, head_dim=256,
        linear_num_key_heads=16, linear_num_value_heads=32, linear_key_head_dim=128, linear_value_head_dim=128,
        linear_conv_kernel_dim=4, num_experts=512, num_experts_per_tok=10, moe_intermediate_size=512,
        shared_expert_intermediate_size=512, intermediate_size=5120, vocab_size=151936,
        max_position_embeddings=262144, tie_word_embeddings=False), 79_674_391_296),
    "qwen3_5_text": (lambda: T.Qwen3_5TextConfig(  # Qwen/Qwen3.5-9B's text_config
        hidden_size=4096, intermediate_size=12288, num_hidden_layers=32, num_attention_heads=16, num_key_value_heads=4,
        head_dim=256, linear_num_key_heads=16, linear_num_value_heads=32, linear_key_head_dim=128,
        linear_value_head_dim=128, linear_conv_kernel_dim=4, vocab_size=248320, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10_000_000, "partial_rotary_factor": 0.25,
                         "mrope_section": [11, 11, 10], "mrope_interleaved": True}), None),
    "qwen3_5_moe_text": (lambda: T.Qwen3_5MoeTextConfig(  # Qwen/Qwen3.5-35B-A3B's text_config
        hidden_size=2048, num_hidden_layers=40, num_attention_heads=16, num_key_value_heads=2, head_dim=256,
        linear_num_key_heads=16, linear_num_value_heads=32, linear_key_head_dim=128, linear_value_head_dim=128,
        linear_conv_kernel_dim=4, num_experts=256, num_experts_per_tok=8, moe_intermediate_size=512,
        shared_expert_intermediate_size=512, vocab_size=248320, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10_000_000, "partial_rotary_factor": 0.25,
                         "mrope_section": [11, 11, 10], "mrope_interleaved": True}), None),
    "whisper": (lambda: T.WhisperConfig(  # openai/whisper-tiny: 37.76M
        vocab_size=51865, num_mel_bins=80, d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
        decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536, max_source_positions=1500,
        max_target_positions=448, scale_embedding=False, tie_word_embeddings=True), 37_760_640),
    "roberta": (lambda: T.RobertaConfig(  # roberta-base (RobertaModel with its pooler)
        vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1), 124_645_632),
    "xlm-roberta": (lambda: T.XLMRobertaConfig(  # xlm-roberta-base
        vocab_size=250002, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1), None),
    "distilbert": (lambda: published("msmarco-distilbert-base-tas-b"), 66_362_880),  # distilbert-base's layout
    "clip": (lambda: published("clip-ViT-B-32"), 151_277_313),  # openai/clip-vit-base-patch32
    "vit": (lambda: published("vit-base-patch16-224-in21k"), 86_389_248),  # ViTModel, pooler
    "opt": (lambda: T.OPTConfig(  # facebook/opt-1.3b
        hidden_size=2048, ffn_dim=8192, num_hidden_layers=24, num_attention_heads=32, vocab_size=50272,
        max_position_embeddings=2048, word_embed_proj_dim=2048), None),
    "opt-350m": (lambda: T.OPTConfig(  # facebook/opt-350m: post-LN, project_in / project_out
        hidden_size=1024, ffn_dim=4096, num_hidden_layers=24, num_attention_heads=16, vocab_size=50272,
        max_position_embeddings=2048, word_embed_proj_dim=512, do_layer_norm_before=False), None),
    "albert": (lambda: T.AlbertConfig(  # albert-base-v2 (AlbertModel: one shared layer, pooler)
        hidden_size=768, num_attention_heads=12, intermediate_size=3072), 11_683_584),
    "t5": (lambda: T.T5Config(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12, vocab_size=32128),
           222_903_552),  # t5-base
}


def config(family) -> dict:
    """A fresh copy: to_dict may hand out a config class's own default dicts, which a test that
    edits the copy would otherwise change for every later one."""
    return copy.deepcopy(PUBLISHED[family][0]().to_dict())


def spec(family):
    return symcost.loads(import_config(config(family), f"{family}.json"))


def test_every_family_is_tested():
    from symcost.hf import FAMILIES

    assert {PUBLISHED[k][0]().model_type for k in PUBLISHED} == set(FAMILIES)


def test_a_model_type_with_two_writers_is_refused():
    """FAMILIES is built from a table per kind of model; a model_type two of them claim is an error
    at import, not the later writer silently replacing the first."""
    from symcost.hf import _registry

    assert _registry({"gpt2": print}, {"llama": len}) == {"gpt2": print, "llama": len}
    with pytest.raises(RuntimeError, match=r"two writers: \['llama'\]"):
        _registry({"llama": print, "gpt2": print}, {"llama": len})


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(PUBLISHED))
def test_params_and_forward_flops_match_transformers(family):
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    sizes = {"batch": 2} if family == "vit" else {"seq_len": 64, "batch": 2} | (
        {"src_len": 48} if family in ("t5", "bart") else {})
    report = verify_hf(spec(family), config(family), sizes)
    assert report.params[0] == report.params[1] and report.unmeasured is None  # each family's FLOPs measured
    published = PUBLISHED[family][1]
    if published is not None:
        assert report.params[0] == published
    assert report.match, (report.forward, report.explained)
    assert sum(p.numel() for p in build(config(family)).parameters()) == report.params[1]
    # per layer type too, where transformers' module tree cuts the layers as the spec does
    assert report.kinds_agree == (family not in CUT_DIFFERENTLY), report.by_kind


# families whose transformers modules group the work otherwise: BERT's attention holds its output
# LayerNorm, OPT's and BART's layers hold fc1/fc2 directly, T5's norms are T5LayerNorm, ViT's
# embeddings hold the patch convolution, the class token and the positions (CLIP's and Gemma 3's
# SigLIP's too; CLIP's projections and Gemma 3's projector are typed by no name), Granite 4.0's
# shared MLP sits beside its experts (the spec's MoE holds it as a shared expert), …
# Llama 4's experts modules run every expert on every token, more than its MoE rows count: listed apart
# DeepSeek-V4's hyper-connection join runs in its decoder layer, outside the HyperConnection module
CUT_DIFFERENTLY = {"deepseek_v4", "llama4_text", "albert", "bart", "bert", "distilbert", "opt", "opt-350m", "roberta", "t5", "whisper", "xlm-roberta",
                   "vit", "clip", "gemma3", "granitemoehybrid"}


@pytest.mark.parametrize("family, top_k", [("mixtral", 2), ("granitemoe", 8), ("olmoe", 8), ("jamba", 2), ("qwen2_moe", 4), ("qwen3_moe", 8), ("deepseek_v3", 8),
                                           ("deepseek_v2", 6), ("dbrx", 4), ("gpt_oss", 4),
                                           ("glm4_moe", 8), ("llama4_text", 1), ("ernie4_5_moe", 6),
                                           pytest.param("qwen3_next", 10, marks=pytest.mark.slow),  # 512 experts a layer
                                           pytest.param("deepseek_v32", 8, marks=pytest.mark.slow),
                                           ("hunyuan_v1_moe", 2),
                                           ("qwen3_5_moe_text", 8)])
def test_active_params_from_the_modules(family, top_k):
    """Non-expert parameters plus top_k experts per MoE layer, counted from transformers' modules
    (each *Experts module holds a layer's experts, DBRX's in a child): the spec's, and verify --hf's."""
    from symcost.measure.hf import active_params, build, config_object

    model = build(config(family))
    total = sum(p.numel() for p in model.parameters())
    active = total
    for module in model.modules():
        if type(module).__name__.endswith("Experts"):
            held = sum(p.numel() for p in module.parameters())
            active += top_k * held // module.num_experts - held
    assert symcost.evaluate(symcost.derive(spec(family))).total["active_params"] == active < total
    assert active_params(model, config_object(family, config(family))) == active


@pytest.mark.parametrize(
    "family, change, fragment",
    [
        ("llama", {"model_type": "zamba"}, "model_type: 'zamba' is not supported"),
        ("llama", {"hidden_act": "mish"}, "hidden_act: 'mish' is not supported"),
        ("llama", {"mystery_switch": True}, "mystery_switch: a config field the importer does not understand"),
        ("qwen2", {"use_sliding_window": False, "layer_types": ["sliding_attention"] * 28},
         "layer_types: names sliding layers, but use_sliding_window is false"),
        ("gemma2", {"layer_types": ["local"] * 26}, "layer_types: expected 26 layer types, each one of"),
        ("qwen2", {"use_sliding_window": True, "max_window_layers": -1}, "max_window_layers: expected a number of"),
        ("qwen2_moe", {"mlp_only_layers": [0, 3]}, "mlp_only_layers: dense layers among the MoE ones"),
        ("qwen2_moe", {"decoder_sparse_step": 2}, "decoder_sparse_step: 2 is not supported"),
        ("bert", {"position_embedding_type": "relative_key"}, "position_embedding_type: 'relative_key'"),
        ("llama", {"hidden_size": -1}, "hidden_size: expected a positive integer"),
        ("llama", {"rope_parameters": {"rope_type": "default", "partial_rotary_factor": 0.5}},
         "rope_parameters: partial_rotary_factor 0.5: rotating part of each head is not supported"),
        ("gpt_bigcode", {"multi_query": True, "num_key_value_heads": 16}, "num_key_value_heads: 16 disagrees with multi_query"),
        ("dbrx", {"attn_config": {"kv_n_heads": 2, "mystery": 1}}, "attn_config.mystery: a config field the importer"),
        ("whisper", {"use_weighted_layer_sum": True}, "use_weighted_layer_sum: the audio classifier's"),
        ("whisper", {"num_hidden_layers": 5}, "num_hidden_layers: 5 differs from encoder_layers"),
        ("bart", {"num_attention_heads": 5}, "num_attention_heads: 5 differs from encoder_attention_heads"),
        ("jamba", {"num_hidden_layers": 12}, "num_hidden_layers: 12 layers are not whole periods"),
        ("jamba", {"attn_layer_offset": 8}, "attn_layer_offset: expected an integer from 0 to 7"),
        ("mamba", {"intermediate_size": 1000}, "intermediate_size: 1000 disagrees with expand x hidden_size"),
        ("dbrx", {"ffn_config": {"ffn_hidden_size": 64, "moe_num_experts": 4, "moe_top_k": 1,
                                 "ffn_act_fn": {"name": "mish"}}}, "ffn_config.ffn_act_fn.name: 'mish'"),
        ("cohere", {"use_qk_norm": True}, "use_qk_norm: True is not supported"),
        ("falcon", {"new_decoder_architecture": True, "parallel_attn": False, "num_key_value_heads": 71},
         "parallel_attn: new_decoder_architecture"),
        ("falcon", {"num_ln_in_parallel_attn": 3}, "num_ln_in_parallel_attn: 3 is not supported"),
        # transformers 5.25 writes num_key_value_heads beside num_kv_heads, derived from it and never read back
        ("falcon", {"num_key_value_heads": 71}, "num_key_value_heads: 71 contradicts num_kv_heads 71, multi_query true "
                                                "and new_decoder_architecture false, which give 1 key/value heads"),
        ("falcon-40b", {"num_key_value_heads": 1}, "num_key_value_heads: 1 contradicts num_kv_heads 8"),
        ("falcon-rw", {"num_kv_heads": 8}, "num_kv_heads: 8 key/value heads beside multi_query false"),
        ("bloom", {"apply_residual_connection_post_layernorm": True}, "apply_residual_connection_post_layernorm: True"),
        # the layer mixes of this session's families, described inconsistently
        ("gpt_oss", {"swiglu_alpha": 1.5}, "swiglu_alpha: 1.5 is not supported"),
        ("gpt_oss", {"swiglu_limit": -7.0}, "swiglu_limit: expected a positive number"),
        ("gpt_oss", {"layer_types": ["sliding_attention"] * 3}, "layer_types: expected 24 layer types"),
        ("smollm3", {"no_rope_layers": [1, 0]}, "no_rope_layers: expected 36 flags, each 0 (no rotary) or 1"),
        ("smollm3", {"use_sliding_window": True}, "use_sliding_window: True is not supported"),
        ("llama4_text", {"layer_types": ["chunked_attention"] * 47}, "layer_types: expected 48 layer types"),
        ("llama4_text", {"moe_layers": [48]}, "moe_layers: expected layer indices from 0 to 47"),
        ("llama4_text", {"attention_chunk_size": None, "layer_types": ["chunked_attention"] * 48},
         "layer_types: names chunked layers, but attention_chunk_size is null"),
        ("ernie4_5_moe", {"moe_layer_end_index": -2}, "moe_layer_end_index: expected a layer index, or -1 for the last"),
        ("ernie4_5_moe", {"use_bias": True}, "use_bias: True is not supported"),
        ("exaone4", {"layer_types": ["sliding_attention"] * 63}, "layer_types: expected 64 layer types"),
        ("qwen3_next", {"layer_types": ["linear_attention"] * 47}, "layer_types: expected 48 layer types, each one of "
                                                                   "linear_attention, full_attention"),
        ("qwen3_next", {"mlp_only_layers": [0]}, "mlp_only_layers: dense layers among the MoE ones"),
        ("deepseek_v32", {"mlp_layer_types": ["sparse"] * 61}, "mlp_layer_types: expected 'dense' for the "
                                                               "first_k_dense_replace layers, then sparse"),
        ("glm_moe_dsa", {"indexer_types": ["full", "shared"] * 39}, "indexer_types: expected 'full' for every layer"),
        ("deepseek_v32", {"max_position_embeddings": 1024}, "index_topk: 2,048 is more than the 1,024 tokens of the "
                                                            "longest context (max_position_embeddings 1,024)"),
        ("lfm2", {"layer_types": None, "full_attn_idxs": [2, 16]}, "full_attn_idxs: expected layer indices from 0 to 15"),
        ("lfm2", {"layer_types": ["conv"] * 15}, "layer_types: expected 16 layer types, each one of conv, full_attention"),
        ("falcon_h1", {"mamba_n_heads": 25}, "mamba_n_heads: 25 heads of mamba_d_head 32 disagree with the mixer's "
                                             "width 768"),
        ("falcon_h1", {"hidden_act": "gelu"}, "hidden_act: 'gelu' is not supported"),
    ],
)
def test_refuses_what_it_does_not_understand(family, change, fragment):
    with pytest.raises(SpecError) as info:
        import_config(config(family) | change, "config.json")
    assert fragment in str(info.value) and str(info.value).startswith("config.json:")


# families whose configs place sliding windows, and their transformers config class
WINDOWED = {"mistral": "MistralConfig", "qwen2": "Qwen2Config", "qwen3": "Qwen3Config", "qwen2_moe": "Qwen2MoeConfig",
            "qwen3_moe": "Qwen3MoeConfig", "gemma2": "Gemma2Config", "gemma3_text": "Gemma3TextConfig",
            "gpt_oss": "GptOssConfig"}
LAYER_TYPED = ("qwen2", "qwen3", "qwen2_moe", "gemma2", "gemma3_text", "gpt_oss")  # their configs read layer_types


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(WINDOWED))
@settings(max_examples=15, deadline=None, derandomize=True)
@given(data=st.data())
def test_sliding_windows_sit_where_transformers_puts_them(family, data):
    """Each family's rule for which layers have a sliding window (Qwen2's and Qwen3's from
    max_window_layers on, Qwen2-MoE's every other layer below it, Gemma 2's alternation, Gemma 3's
    sliding_window_pattern, Mistral's and Qwen3-MoE's every layer), or the file's own layer_types:
    after a prefill longer than the window, each layer's KV cache in the imported spec is what
    transformers' DynamicCache holds, layer by layer: window - 1 tokens of a sliding layer between
    steps (the next query's own key comes with it)."""
    import torch

    n, tokens, window = data.draw(st.integers(1, 7)), 10, 4
    fields = {"hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
              "num_hidden_layers": n, "intermediate_size": 48, "vocab_size": 64, "max_position_embeddings": 64}
    size = data.draw(st.sampled_from([window] * 3 + [None, "left out"]), label="sliding_window")
    if size != "left out":  # else transformers' default, 4096 for each of these families
        fields["sliding_window"] = size
    if family.startswith("qwen"):
        fields["use_sliding_window"] = data.draw(st.sampled_from([True, True, False]), label="use_sliding_window")
    if family in ("qwen2", "qwen3", "qwen2_moe"):
        fields["max_window_layers"] = data.draw(st.integers(0, n + 1))
    if family.endswith("moe"):
        fields |= {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16}
    if family == "gpt_oss":
        fields |= {"num_local_experts": 4, "num_experts_per_tok": 2}
    if family == "qwen2_moe":
        fields["shared_expert_intermediate_size"] = 24
    if family == "gemma3_text":
        fields["sliding_window_pattern"] = data.draw(st.integers(1, 7))
    if family in LAYER_TYPED and data.draw(st.sampled_from([False, False, True]), label="layer_types given"):
        fields["layer_types"] = data.draw(st.lists(st.sampled_from(["sliding_attention", "full_attention"]),
                                                   min_size=n, max_size=n))
    config = getattr(T, WINDOWED[family])(**fields)
    model = T.AutoModelForCausalLM.from_config(config)
    try:
        with torch.no_grad():
            cache = model(torch.randint(0, 64, (1, tokens)), use_cache=True).past_key_values
    except (ValueError, TypeError, RuntimeError):  # sliding layers with no window size (null, or off): refused here too
        with pytest.raises(SpecError, match="sliding_window: null, but|layer_types: names sliding layers, but"):
            import_config(fields | {"model_type": family})
        return
    theirs = [layer.keys.shape[-2] for layer in cache.layers]
    derivation = symcost.derive(symcost.loads(import_config(fields | {"model_type": family})))
    at = dim_values(derivation, {"seq_len": tokens, "batch": 1})
    blocks = {}  # each repeat's layers in order: tokens each keeps (its cache over its count, a key and a
    for node in derivation.nodes:  # value of 2 x 8 per token), and the repeat's count
        if node.path.endswith("/attention"):
            count = int(sympy.sympify(node.count).xreplace(at))  # a count may be an expression in n_layers
            kept, _ = blocks.setdefault(node.path.split("/repeat/")[0], ([], count))
            kept.append(int(node.cost.cache.xreplace(at)) // count // (2 * 2 * 8))
    ours = [t for kept, count in blocks.values() for t in kept * count]
    assert ours == theirs
    if "window" in derivation.spec.dims:  # the size, given or transformers' default
        assert at[dim("window")] == config.sliding_window


@pytest.mark.parametrize("family, fields, note", [
    ("granite", {}, "# NB: Granite's scalar multipliers (embedding_multiplier, residual_multiplier,"),
    ("olmo", {"clip_qkv": 8.0}, "# NB: q, k and v are clamped to clip_qkv"),
    ("olmoe", {"clip_qkv": 8.0}, "# NB: q, k and v are clamped to clip_qkv"),
    ("dbrx", {}, "# NB: q, k and v are clamped to clip_qkv"),
    ("gemma3", {}, "# NB: an image's tokens attend to each other both ways"),
    ("gemma", {}, "# NB: the embeddings are multiplied by sqrt(d_model)"),
    ("cohere", {}, "# NB: the logits are multiplied by logit_scale"),
    ("falcon_h1", {}, "# NB: Falcon-H1's µP multipliers (embedding_multiplier, lm_head_multiplier"),
    ("minimax", {}, "# NB: MiniMax's residual factors (full_attn_alpha_factor, full_attn_beta_factor"),
    ("longcat_flash", {}, "# NB: its shortcut MoE reads the first sublayer's normalised stream"),
    ("rwkv", {}, "# NB: at inference transformers halves the stream every rescale_every layers"),
    ("falcon_h1", {"mamba_rms_norm": True, "mamba_norm_before_gate": True}, "# NB: the Mamba-2 mixer's RMSNorm precedes"),
    ("bart", {"scale_embedding": True}, "# NB: the embeddings are multiplied by sqrt(d_model) (scale_embedding"),
])
def test_elementwise_work_the_spec_does_not_write_is_noted_at_its_top(family, fields, note):
    """Scalar multipliers and clamps cost nothing under pytorch but are work under `full`: the spec
    says at its top what it leaves out, and the counts stay exact under pytorch."""
    text = import_config(config(family) | fields, "config.json")
    top = text.split("\nname:")[0]
    assert note in top and max(map(len, top.splitlines())) <= 100


def test_gemma3_with_images_at_its_published_size():
    """google/gemma-3-4b-pt's config (a SigLIP encoder of 27 layers at 896 x 896, 256 image
    tokens, the 34-layer text model): 4,300,079,472 parameters, as transformers builds it on meta
    (forward FLOPs are checked at a small size: transformers finds the image tokens by value)."""
    import torch

    config = T.Gemma3Config(
        text_config={"hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34, "num_attention_heads": 8,
                     "num_key_value_heads": 4, "head_dim": 256, "sliding_window": 1024, "vocab_size": 262208,
                     "query_pre_attn_scalar": 256, "max_position_embeddings": 131072,
                     "rope_scaling": {"rope_type": "linear", "factor": 8.0}},
        vision_config={"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304, "num_attention_heads": 16,
                       "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": False},
        mm_tokens_per_image=256, architectures=["Gemma3ForConditionalGeneration"])
    with torch.device("meta"):
        theirs = sum(p.numel() for p in T.Gemma3ForConditionalGeneration(config).parameters())
    imported = symcost.loads(import_config(config.to_dict(), "gemma3.json"))
    assert symcost.evaluate(imported).to_dict()["params"] == theirs == 4_300_079_472


def test_the_shipped_gpt_oss_is_transformers_gpt_oss_120b_and_the_model_card_s_counts():
    """architectures/gpt_oss.yaml against GptOssForCausalLM at gpt-oss-120b's sizes (the 20b file with
    its 36 layers and 128 experts) on meta: parameters, active ones and forward FLOPs, exactly; and the
    model card's Table 1 (116.83B total, 5.13B active: its active count leaves out the embedding table)."""
    from symcost.measure.verify import verify_hf

    config = json.loads((DATA / "gpt-oss-20b.json").read_text()) | {
        "num_hidden_layers": 36, "num_local_experts": 128,
        "layer_types": ["sliding_attention", "full_attention"] * 18}
    shipped = symcost.load(arch("gpt_oss"))
    report = verify_hf(shipped, config, {"seq_len": 256})
    assert report.match and report.params == (116_829_156_672,) * 2 and report.active == (5_711_982_912,) * 2
    assert report.forward[0] == report.forward[1] is not None
    embedding = 201_088 * 2_880
    assert round(report.params[0] / 1e9, 2) == 116.83 and round((report.active[0] - embedding) / 1e9, 2) == 5.13


@pytest.mark.slow
def test_the_shipped_zamba2_is_transformers_zamba2_2_7b():
    """architectures/zamba2.yaml is what import-hf writes from Zamba2-2.7B's sizes (its name and header aside), and
    against Zamba2ForCausalLM on meta: parameters (each shared block's once) and forward FLOPs, exactly."""
    from symcost.measure.verify import verify_hf

    shipped = symcost.load(arch("zamba2"))
    imported = spec("zamba2")
    assert shipped.layers == imported.layers and shipped.dimset.names == imported.dimset.names
    report = verify_hf(shipped, config("zamba2"), {"seq_len": 256})
    assert report.match and report.params == (2_662_214_560,) * 2 and report.forward[0] == report.forward[1]


def test_the_shipped_llama4_scout_is_the_imported_text_config_and_maverick_interleaves():
    """architectures/llama4_scout.yaml counts what the imported Llama-4-Scout text_config counts, and that is
    transformers' (PUBLISHED: exact, with transformers' every-expert work listed apart); Maverick's text model
    (128 experts in every other layer, dense layers of intermediate_size_mlp between): 400,711,848,960
    parameters, 17,184,691,200 active, as transformers builds it on meta ("17B active, 400B total")."""
    from symcost.measure.verify import verify_hf

    shipped = symcost.evaluate(symcost.load(arch("llama4_scout")), {"seq_len": 64}).total
    imported = symcost.evaluate(spec("llama4_text"), {"seq_len": 64}).total
    assert (shipped["params"], shipped["active_params"], shipped["forward"]) == (
        imported["params"], imported["active_params"], imported["forward"]) == (107_769_861_120, 17_172_894_720,
                                                                                shipped["forward"])
    scout = {k: v for k, v in config("llama4_text").items() if k != "moe_layers"}  # as the step places them
    maverick = scout | {"num_local_experts": 128, "interleave_moe_layer_step": 2, "use_qk_norm": False}
    report = verify_hf(symcost.loads(import_config(maverick, "maverick.json")), maverick, {"seq_len": 16})
    assert report.params == (400_711_848_960,) * 2 and report.active == (17_184_691_200,) * 2 and report.match
    assert all("runs all 128 experts on every token" in why for _, why in report.explained.values())
    assert len(report.explained) == 24  # its MoE layers


@pytest.mark.parametrize("family, text, cls, fragment", [
    ("llama4", "llama4_text", "Llama4ForConditionalGeneration", "Llama 4's vision encoder is not written"),
    ("qwen3_5", "qwen3_5_text", "Qwen3_5ForConditionalGeneration", "Qwen3.5's vision encoder is not written"),
    ("qwen3_5_moe", "qwen3_5_moe_text", "Qwen3_5MoeForConditionalGeneration", "Qwen3.5's vision encoder is not written")])
def test_a_multimodal_file_is_refused_with_the_way_out(cli, tmp_path, family, text, cls, fragment):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": family, "architectures": [cls], "text_config": config(text)}))
    out = cli("import-hf", path)
    assert out.exit_code == 2 and out.stderr.count("\n") == 1
    assert f"model_type: '{family}': {fragment}: import its text_config (model_type {text})" in out.stderr


@pytest.mark.slow  # 80B on meta: in the full suite
def test_hunyuan_a13b_in_parameters_and_its_per_layer_sizes():
    """Hunyuan-A13B's sizes (tencent/Hunyuan-A13B-Instruct: 80B total, 13B active): parameters and active ones
    against transformers (built on meta; its experts route by value, so its FLOPs are verified on the CPU at the
    small size above); moe_topk one a layer, as its files give it, read when every layer's is the same."""
    from symcost.measure.verify import verify_hf

    real = T.HunYuanMoEV1Config(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                head_dim=128, intermediate_size=3072, num_experts=64, moe_topk=[8] * 32,
                                vocab_size=128167, max_position_embeddings=32768).to_dict()
    report = verify_hf(symcost.loads(import_config(real, "Hunyuan-A13B.json")), real, {"seq_len": 8})
    assert report.params == (80_918_155_264,) * 2 and report.active == (13_272_420_352,) * 2
    with pytest.raises(SpecError, match="moe_topk: expected one positive integer, or the same one for every layer"):
        import_config(real | {"moe_topk": [8] * 31 + [4]}, "config.json")


def test_value_routed_experts_are_verified_on_the_cpu_and_too_large_ones_in_parameters_only():
    """DBRX's experts in transformers gather their tokens by value (not on meta): verify --hf builds
    it on the CPU, and a config too large for that on meta, comparing parameters and active ones
    and saying why its forward FLOPs were not measured, rather than allocating 132B weights."""
    from symcost.measure.verify import verify_hf

    real = T.DbrxConfig(d_model=6144, n_heads=48, n_layers=40, max_seq_len=32768, vocab_size=100352,
                        attn_config={"kv_n_heads": 8, "clip_qkv": 8, "rope_theta": 500000},
                        ffn_config={"ffn_hidden_size": 10752, "moe_num_experts": 16, "moe_top_k": 4}).to_dict()
    imported = symcost.loads(import_config(real, "dbrx.json"))
    assert symcost.evaluate(imported).to_dict()["params"] == 131_596_523_520  # DBRX: 132B parameters
    report = verify_hf(imported, real, {"seq_len": 8})
    assert report.params == (131_596_523_520,) * 2 and report.active == (36_469_708_800,) * 2  # 36B active
    assert report.forward[1] is None and report.match
    assert "at most 50,000,000 parameters and this config has 131,596,523,520" in report.unmeasured


def test_cli_import_and_verify(cli, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config("qwen2_moe")))
    out = tmp_path / "qwen.yaml"
    assert cli("import-hf", path, "-o", out).exit_code == 0
    text = out.read_text()
    assert "n_experts: 60" in text and "# num_experts" in text and "shared_gate: true" in text
    result = cli("verify", out, "--hf", path, "--set", "seq_len=32")
    assert result.exit_code == 0, result.stdout
    assert "MATCH" in result.stdout and "Qwen2MoeForCausalLM" in result.stdout
    data = json.loads(cli("verify", out, "--hf", path, "--set", "seq_len=32", "--format", "json").stdout)
    assert data["match"] and data["params"]["symbolic"] == data["params"]["transformers"]
    # per layer type: the MoE blocks, attention, norms, table and head, each equal
    by_kind = data["by_kind"]
    assert {"moe", "attention", "rmsnorm", "embedding", "lm_head"} <= set(by_kind)
    assert all(row["params"]["symbolic"] == row["params"]["transformers"] and
               row["flops"]["forward"]["symbolic"] == row["flops"]["forward"]["transformers"] for row in by_kind.values())
    rows = result.stdout[result.stdout.index("layer type"):].splitlines()[2:7]
    assert all(row.rstrip().endswith("ok") for row in rows), rows


def test_cli_errors(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"model_type": "llama",\n  "hidden_size": }')
    result = cli("import-hf", bad)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {bad}:2:") and "not JSON" in result.stderr
    assert cli("import-hf", tmp_path / "missing.json").exit_code == 2


def test_import_needs_only_the_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config("llama")))
    code = (
        "import sys\nfrom symcost.cli import main\n"
        f"try:\n    main(['import-hf', {str(path)!r}])\nexcept SystemExit as e:\n    assert e.code in (0, None)\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize("change,field,fragment", [
    ({"hidden_act": "weird"}, "hidden_act", "'weird' is not supported"),
    ({"num_attention_heads": -5}, "num_attention_heads", "expected a positive integer, got -5"),
    ({"model_type": "alien"}, "model_type", "'alien' is not supported; supported:"),
    ({"rope_scaling_extra": 1}, "rope_scaling_extra", "a config field the importer does not understand"),
])
def test_import_errors_name_the_fields_line_and_column(cli, tmp_path, change, field, fragment):
    """An error names the field where config.json writes it (before: the file alone)."""
    path = tmp_path / "config.json"
    text = json.dumps(config("llama") | change, indent=2)
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if row.lstrip().startswith(f'"{field}"'))
    result = cli("import-hf", path)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {path}:{line}:3: {field}: ")
    assert fragment in result.stderr


# Fields published configs carry that change no count: loading metadata, quantisation, token
# ids, dropouts, generation defaults (before: each was refused as a field not understood).
NEUTRAL = {
    "auto_map": {"AutoConfig": "configuration_x.XConfig"},
    "torch_dtype": "bfloat16", "_attn_implementation_autoset": True, "use_flash_attention_2": False,
    "sep_token_id": 3, "decoder_start_token_id": 0, "forced_eos_token_id": 2,
    "embd_pdrop": 0.1, "hidden_dropout": 0.0, "classifier_dropout_prob": 0.1,
    "max_length": 20, "do_sample": False, "num_beams": 1, "temperature": 1.0, "repetition_penalty": 1.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0}, "tokenizer_class": "LlamaTokenizer",
}


# the same claim for every family: the quick half keeps one family a writer module, the full suite all of them
NEUTRAL_QUICK = {"gpt2", "llama", "mixtral", "deepseek_v3", "bert", "clip", "t5", "mamba2", "qwen3_next"}


@pytest.mark.parametrize("family", [f if f in NEUTRAL_QUICK else pytest.param(f, marks=pytest.mark.slow)
                                    for f in sorted(PUBLISHED)])
def test_fields_that_change_no_count_are_ignored_and_listed(cli, tmp_path, family):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(family) | NEUTRAL))
    result = cli("import-hf", path, "-o", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.stderr
    listed = result.stderr.splitlines()[0]
    assert listed.startswith("ignored (they change no count): ")
    assert set(NEUTRAL) <= set(listed.split(": ", 1)[1].split(", "))
    assert symcost.evaluate(symcost.load(tmp_path / "spec.yaml")).total == symcost.evaluate(spec(family)).total


def test_verify_hf_names_what_transformers_cannot_read(cli, tmp_path):
    """transformers' own refusal of a config the importer accepts (a field that changes no count,
    of a type transformers checks) is one line, not its traceback; a config the importer refuses
    is refused first, at its field."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config("llama") | {"initializer_range": "x"}))
    result = cli("verify", "architectures/llama.yaml", "--hf", path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "transformers 5" in result.stderr and "cannot read this config" in result.stderr
    assert "initializer_range" in result.stderr
    for junk in ([1], {"model_type": "nope"}, {"model_type": ["llama"]}, config("clip") | {"vision_config": 3}):
        path.write_text(json.dumps(junk))
        result = cli("verify", "architectures/llama.yaml", "--hf", path)
        assert result.exit_code == 2 and "Traceback" not in result.output and result.stderr.count("\n") == 1, junk


def test_nested_fields_that_change_no_count_are_listed_by_their_path(cli, tmp_path):
    """DBRX's attn_config and ffn_config: their count-neutral fields are listed as the top-level
    ones are (before: accepted and not listed)."""
    data = config("dbrx")
    data["attn_config"] |= {"attn_pdrop": 0.1, "rope_theta": 500000}
    data["ffn_config"] |= {"moe_jitter_eps": 0.01}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    result = cli("import-hf", path, "-o", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.stderr
    listed = set(result.stderr.splitlines()[0].split(": ", 1)[1].split(", "))
    assert {"attn_config.attn_pdrop", "attn_config.rope_theta"} <= listed
    assert "ffn_config.moe_jitter_eps" not in listed  # read: DBRX's router noise, a training setting


# (transformers 5's DBRX cannot build without attn_config.rope_theta, a frequency: no size)
@pytest.mark.parametrize("family, nested", [("dbrx", {"attn_config": {"rope_theta": 10000.0}, "ffn_config": {}}),
                                            ("gemma3", {"text_config": {}})])
def test_sizes_a_nested_config_leaves_out_are_its_config_classs(family, nested):
    """transformers saves a nested config as its difference from the class's values (Gemma 3's
    text_config gives only the sizes that differ), so a size left out is the class's: the spec's
    parameters equal those of the model transformers builds from the same file."""
    from symcost.measure.hf import build

    data = config(family) | nested
    spec = symcost.loads(import_config(data, "config.json"))
    assert symcost.evaluate(spec).total["params"] == sum(p.numel() for p in build(data).parameters())


def test_a_model_directory_and_the_local_cache(cli, tmp_path, monkeypatch):
    """CONFIG may be a model directory; --model-id reads the local Hugging Face cache's snapshot
    that refs/main names (never the network)."""
    model = tmp_path / "Meta-Llama-3-8B"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(config("llama")))
    from_dir = cli("import-hf", model)
    assert from_dir.exit_code == 0 and "d_model: 4096" in from_dir.stdout

    hub = tmp_path / "hub" / "models--meta-llama--Meta-Llama-3-8B"
    for commit, layers in (("old", 16), ("abc123", 32)):
        (hub / "snapshots" / commit).mkdir(parents=True)
        (hub / "snapshots" / commit / "config.json").write_text(json.dumps(config("llama") | {"num_hidden_layers": layers}))
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = cli("import-hf", "--model-id", "meta-llama/Meta-Llama-3-8B")
    assert cached.exit_code == 0 and "n_layers: 32" in cached.stdout
    assert from_dir.stdout.split("dims:")[1] == cached.stdout.split("dims:")[1]

    for args, fragment in [
        (["--model-id", "meta-llama/Nope"], "no config.json for it in the local Hugging Face cache"),
        (["--model-id", "../etc"], "expected ORG/NAME"),
        ([], "give a config.json or a model directory, or --model-id"),
        ([str(model), "--model-id", "meta-llama/Meta-Llama-3-8B"], "(one of them)"),
        ([str(tmp_path / "hub")], "a model directory without config.json"),
    ]:
        result = cli("import-hf", *args)
        assert result.exit_code == 2 and fragment in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("family, cls, expect", [
    ("llama", "LlamaForSequenceClassification", "linear: {dim: d_model, out: n_labels}"),
    ("llama", "LlamaModel", None),
    ("qwen2", "Qwen2ForSequenceClassification", "linear: {dim: d_model, out: n_labels}"),
    ("mixtral", "MixtralModel", None),
    ("gpt2", "GPT2ForSequenceClassification", "linear: {dim: d_model, out: n_labels}"),
    ("gpt2", "GPT2Model", None),
    ("bert", "BertForMaskedLM", "lm_head: {dim: d_model, vocab: vocab, tied: true, bias: true}"),
    ("bert", "BertForSequenceClassification", "linear: {dim: d_model, out: n_labels, bias: true}"),
    ("opt-350m", "OPTForSequenceClassification", "linear: {dim: d_embed, out: n_labels}"),
    ("roberta", "RobertaForMaskedLM", "lm_head: {dim: d_model, vocab: vocab, tied: true, bias: true}"),
    ("roberta", "RobertaForSequenceClassification", "linear: {dim: d_model, out: n_labels, bias: true}"),
    ("distilbert", "DistilBertForMaskedLM", "lm_head: {dim: d_model, vocab: vocab, tied: true, bias: true}"),
    ("distilbert", "DistilBertForSequenceClassification", "linear: {dim: d_model, out: n_labels, bias: true}"),
    ("vit", "ViTForImageClassification", "linear: {dim: d_model, out: n_labels, bias: true}"),
    ("albert", "AlbertForMaskedLM", "lm_head: {dim: d_embed, vocab: vocab, tied: true, bias: true}"),
    ("albert", "AlbertForSequenceClassification", "linear: {dim: d_model, out: n_labels, bias: true}"),
])
def test_the_head_follows_architectures(family, cls, expect):
    """…ForSequenceClassification, …ForMaskedLM and the bare …Model are priced with their own heads
    (before: every config as its family's one class, BertForMaskedLM as the bare encoder), exact
    against the transformers class of that name."""
    from symcost.measure.verify import verify_hf

    data = config(family) | {"architectures": [cls], "id2label": {str(i): f"L{i}" for i in range(5)}}
    text = import_config(data, "config.json")
    assert (expect in text) if expect else ("lm_head" not in text and "out: n_labels" not in text)
    if "n_labels" in text:
        assert "n_labels: 5" in text
    sizes = {"batch": 2} if family == "vit" else {"seq_len": 16, "batch": 2}
    report = verify_hf(symcost.loads(text), data, sizes)
    assert report.model == cls and report.params[0] == report.params[1] and report.match, report.forward
    default = verify_hf(spec(family), config(family), sizes)
    assert (report.params[0], report.forward[0]) != (default.params[0], default.forward[0])  # a tied head holds no params


def test_head_override_and_refusals(cli, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config("bert") | {"architectures": ["BertForMaskedLM"]}))
    assert "pool_tokens" not in cli("import-hf", path).stdout
    assert "pool_tokens" in cli("import-hf", path, "--head", "none").stdout
    for data, args, fragment in [
        (config("t5") | {"architectures": ["T5EncoderModel"]}, [], "asks for the encoder alone, which the importer "
                                                                    "does not write for t5"),
        (config("llama") | {"architectures": ["LlamaForTokenClassification"]}, [], "a head the importer does not know"),
        (config("llama"), ["--head", "mlm"], "--head mlm: llama models are imported with lm, classifier, none"),
        (config("llama") | {"architectures": "LlamaForCausalLM"}, [], "architectures: expected one class name"),
    ]:
        path.write_text(json.dumps(data))
        result = cli("import-hf", path, *args)
        assert result.exit_code == 2 and fragment in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("family, fields, rotated", [
    ("gpt_neox", {"rotary_pct": 0.25}, 32),  # Pythia's config.json: rotary_pct at the top level
    ("gpt_neox", {}, 32),  # transformers 5: partial_rotary_factor inside rope_parameters
    ("phi", {"partial_rotary_factor": 0.4, "rope_parameters": {"rope_type": "default", "rope_theta": 1e4}}, 32),
    ("phi", {}, 32),
    ("gptj", {"rotary_dim": 64}, 64),
])
def test_partial_rotary_in_either_place(family, fields, rotated):
    text = import_config(config(family) | fields, "config.json")
    assert f"d_rot: {rotated} " in text and "rotary: {dim: d_rot}" in text


def test_t5_v1_1_has_an_untied_head_which_transformers_5_ties():
    """T5 v1.1 and Flan-T5 publish an untied LM head (tie_word_embeddings: false; google/flan-t5-base
    holds 247,577,856 parameters). transformers 5 forces tie_word_embeddings to True for every T5
    (configuration_t5.py: "we tie weights always"), so its model of the same config has one
    vocab x d_model table fewer: verify --hf shows exactly that difference, never hides it."""
    from symcost.measure.verify import verify_hf

    data = T.T5Config(d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_heads=12, vocab_size=32128,
                      feed_forward_proj="gated-gelu").to_dict() | {"tie_word_embeddings": False}
    text = import_config(data, "flan-t5-base.json")
    assert "activation: gelu_new, gated: true" in text and "tied: false" in text
    report = verify_hf(symcost.loads(text), data, {"seq_len": 16, "batch": 1, "src_len": 16})
    assert report.params[0] == 247_577_856
    assert report.params[0] - report.params[1] == 32128 * 768 and not report.match


SMALL_SEQ2SEQ = {
    "bart": T.BartConfig(vocab_size=100, d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                         decoder_attention_heads=4, encoder_ffn_dim=32, decoder_ffn_dim=24, max_position_embeddings=64,
                         num_labels=3),
    "t5": T.T5Config(vocab_size=100, d_model=16, d_kv=4, d_ff=24, num_layers=2, num_decoder_layers=1, num_heads=2,
                     num_labels=3, feed_forward_proj="gated-gelu"),
}


@pytest.mark.parametrize("family, params", [("bart", 11_627), ("t5", 7_699)])
def test_seq2seq_sequence_classifier(family, params):
    """…ForSequenceClassification of BART and T5: the stacks, the decoder reading the source shifted
    right (seq_len is src_len), then dense, tanh and out_proj on each sequence's last <eos>.
    transformers finds the <eos> by value, so verify --hf builds it on the CPU; parameters and
    forward FLOPs are exact there (the head alone: 16·16 + 16 + 16·3 + 3 = 323 parameters)."""
    from symcost.measure.verify import verify_hf

    cls = {"bart": "BartForSequenceClassification", "t5": "T5ForSequenceClassification"}[family]
    data = SMALL_SEQ2SEQ[family].to_dict() | {"architectures": [cls]}
    text = import_config(data, f"{family}-classifier.json")
    assert "seq_len: src_len" in text and "pool_tokens: {mode: last}" in text and "lm_head" not in text
    report = verify_hf(symcost.loads(text), data, {"src_len": 8, "batch": 2})
    assert report.model == cls and report.params == (params, params) and report.match, report.forward
    bare = import_config(SMALL_SEQ2SEQ[family].to_dict() | {"architectures": [cls[:-len("ForSequenceClassification")]
                                                                               + "Model"]}, f"{family}.json")
    assert symcost.evaluate(symcost.loads(bare)).total["params"] == params - 323
    big = data | {"d_model": 1024, "vocab_size": 50265}
    report = verify_hf(symcost.loads(import_config(big, f"{family}-classifier.json")), big, {"src_len": 8})
    assert report.forward[1] is None and report.match and report.params[0] == report.params[1] > 50_000_000
    assert "its classification head finds each sequence's <eos> by value" in report.unmeasured


def test_vit_is_verified_at_the_configs_image_size():
    from symcost.measure.verify import verify_hf

    with pytest.raises(SpecError, match="built at the config's image_size 224"):
        verify_hf(spec("vit"), config("vit"), {"image_size": 384})


@pytest.mark.parametrize("family, change, message", [
    ("llama", {"model_type": ["llama"]}, "model_type: ['llama'] is not supported"),
    ("roberta", {"hidden_act": {}}, "hidden_act: {} is not supported by the importer"),
    ("roberta", {"pad_token_id": {}}, "pad_token_id: expected a token id (a non-negative integer), got {}"),
    ("gemma3", {"mm_tokens_per_image": 9}, "9 tokens are not a square grid that 8 x 8 patches pool to evenly"),
])
def test_found_by_the_fuzzer(family, change, message):
    """Before: a TypeError from inside the importer (a list or an object where a name or a number
    belongs), or a Gemma 3 spec whose image tokens transformers would refuse to count."""
    with pytest.raises(SpecError, match=re.escape(message)):
        import_config(config(family) | change, f"{family}.json")


# -- a fuzzer for import-hf: published configs with fields made wrong ------------------------------

JUNK = st.sampled_from([0, -1, 1.5, 2.0, "x", "4096", None, [], {}, [1], {"a": 1}, True, False, 10**30, 2**63,
                        1e308, float("nan"), 3, 7, 1])


@st.composite
def broken_configs(draw):
    family = draw(st.sampled_from(sorted(PUBLISHED)))
    data = config(family)
    for _ in range(draw(st.integers(1, 3))):
        where = data
        nested = [k for k, v in where.items() if isinstance(v, dict) and v]
        if nested and draw(st.booleans()):  # DBRX's attn_config, rope_scaling, a sub-config …
            where = where[draw(st.sampled_from(sorted(nested)))]
        key = draw(st.sampled_from(sorted(where)))
        if draw(st.integers(0, 5)) == 0:
            del where[key]
        else:
            where[key] = draw(JUNK)
    return family, data


@settings(max_examples=70, deadline=None, derandomize=True)
@given(broken_configs())
def test_any_broken_config_is_imported_or_refused_in_one_line(case):
    """Published configs with one to three fields deleted or replaced by junk (zero, a negative, a
    string, a float, a list, 10**30, NaN): import-hf writes a spec that evaluates, or refuses with
    a SpecError, never another exception."""
    family, data = case
    try:
        text = import_config(data, f"{family}.json")
    except SpecError as e:
        assert str(e).startswith(f"{family}.json"), str(e)
        return
    try:
        symcost.evaluate(symcost.loads(text))
    except SpecError:
        pass  # a size a config may hold that the spec's own checks refuse, named there
