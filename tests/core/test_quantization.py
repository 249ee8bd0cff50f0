"""Quantized storage (symcost/quantization.py): each format's bytes against real tensors — bitsandbytes'
own quantizers for nf4 and int8, and reference packers here for the others, which build the tensors
each format's checkpoint holds (AutoGPTQ's and AutoAWQ's int32 packing, OCP MXFP4's blocks and E8M0
scales, NVFP4's FP8 scales, FP8 per tensor, row and 128 x 128 block) — per matrix at drawn shapes and
over every linear of a transformers model."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch
from symcost.errors import SpecError
from symcost.hf import import_config
from symcost.quantization import Quantization

import numpy as np

try:  # the packers build torch tensors; the checks by hand and the refusals need no torch
    import torch
except ImportError:
    torch = None


def nbytes(*tensors) -> int:
    return sum(int(t.nbytes) for t in tensors)


def packed_int32(values: "np.ndarray", bits: int, axis: int) -> "np.ndarray":
    """`values` (< 2**bits) packed 32 // bits to an int32 along `axis`, lowest bits first (AutoGPTQ's
    QuantLinear.pack for qweight along the input, qzeros along the output; AutoAWQ along the output)."""
    per = 32 // bits
    v = np.moveaxis(values.astype(np.uint32), axis, 0)
    out = np.zeros((v.shape[0] // per, *v.shape[1:]), dtype=np.uint32)
    for j in range(per):
        out |= v[j::per] << np.uint32(bits * j)
    return np.moveaxis(out, 0, axis).view(np.int32)


def gptq(w, bits: int, group: int) -> int:
    d_out, d_in = w.shape
    rng, groups = np.random.default_rng(0), -(-d_in // group)
    qweight = packed_int32(rng.integers(0, 2**bits, (d_in, d_out)), bits, 0)  # (d_in·bits/32, d_out)
    qzeros = packed_int32(rng.integers(0, 2**bits, (groups, d_out)), bits, 1)  # (groups, d_out·bits/32)
    scales = np.zeros((groups, d_out), np.float16)
    g_idx = (np.arange(d_in) // group).astype(np.int32)
    return nbytes(qweight, qzeros, scales, g_idx)


def awq(w, group: int) -> int:
    d_out, d_in = w.shape
    rng, groups = np.random.default_rng(0), -(-d_in // group)
    qweight = packed_int32(rng.integers(0, 16, (d_in, d_out)), 4, 1)  # (d_in, d_out/8)
    qzeros = packed_int32(rng.integers(0, 16, (groups, d_out)), 4, 1)
    scales = np.zeros((groups, d_out), np.float16)
    return nbytes(qweight, qzeros, scales)


def int4(w, group: int) -> int:
    """compressed-tensors' pack-quantized layout: eight 4-bit values an int32 along the input, a 16-bit scale
    per group of the input, the original shape as two int32."""
    d_out, d_in = w.shape
    rng, groups = np.random.default_rng(0), -(-d_in // group)
    packed = packed_int32(rng.integers(0, 16, (d_out, d_in)), 4, 1)  # (d_out, d_in/8)
    scale = torch.zeros(d_out, groups, dtype=w.dtype)
    return nbytes(packed, scale, torch.tensor([d_out, d_in], dtype=torch.int32))


def fp4_codes(w, block: int):
    """E2M1 codes (two a byte, along the input) and each block's absmax, as MX and NVFP4 quantize."""
    grid = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    blocks = w.reshape(w.shape[0], -1, block)
    amax = blocks.abs().amax(-1, keepdim=True).clamp(min=1e-12)
    scaled = blocks / amax * 6
    codes = (scaled.abs().unsqueeze(-1) - grid).abs().argmin(-1) + 8 * (scaled < 0)
    codes = codes.reshape(w.shape).to(torch.uint8)
    return codes[:, ::2] | (codes[:, 1::2] << 4), amax.squeeze(-1)


def mxfp4(w) -> int:
    packed, amax = fp4_codes(w, 32)
    scales = (torch.floor(torch.log2(amax)) + 127 - 2).clamp(0, 254).to(torch.uint8)  # E8M0
    return nbytes(packed, scales)


def mxfp8(w) -> int:
    blocks = w.reshape(w.shape[0], -1, 32)
    amax = blocks.abs().amax(-1).clamp(min=1e-12)
    scales = (torch.floor(torch.log2(amax)) + 127 - 8).clamp(0, 254).to(torch.uint8)  # E8M0; E4M3's emax is 8
    return nbytes(w.to(torch.float8_e4m3fn), scales)


def nvfp4(w) -> int:
    packed, amax = fp4_codes(w, 16)
    global_scale = amax.max() / (448 * 6)
    scales = (amax / 6 / global_scale).to(torch.float8_e4m3fn)
    return nbytes(packed, scales, global_scale.reshape(1).float(), torch.ones(1))  # weight and input global scales


def fp8(w, granularity: str) -> int:
    d_out, d_in = w.shape
    values = w.to(torch.float8_e4m3fn)
    if granularity == "tensor":
        scale = w.abs().amax().reshape(1).float()
    elif granularity == "channel":
        scale = w.abs().amax(1, keepdim=True).float()
    else:  # 128 x 128 blocks, the edges padded
        padded = torch.nn.functional.pad(w, (0, -d_in % 128, 0, -d_out % 128))
        scale = padded.reshape(padded.shape[0] // 128, 128, -1, 128).abs().amax((1, 3)).float()
    return nbytes(values, scale)


def bnb(w, fmt: str, double: bool) -> int:
    if fmt == "int8":
        from bitsandbytes.nn import Int8Params

        p = Int8Params(w.float(), requires_grad=False, has_fp16_weights=False).to("cpu")
        return nbytes(p.CB, p.SCB)
    from bitsandbytes.functional import quantize_4bit

    packed, state = quantize_4bit(w, blocksize=64, quant_type=fmt, compress_statistics=double)
    extra = [state.state2.absmax, state.state2.code, state.offset] if double else []
    return nbytes(packed, state.absmax, state.code, *extra)


def packer(q: Quantization):
    f = q.format
    if f in ("nf4", "fp4", "int8"):
        pytest.importorskip("bitsandbytes")
        return lambda w: bnb(w, f, q.double_quant)
    return {"gptq": lambda w: gptq(w, q.width, q.group or 128), "awq": lambda w: awq(w, q.group or 128),
            "int4": lambda w: int4(w, q.group or 128),
            "mxfp4": mxfp4, "mxfp8": mxfp8, "nvfp4": nvfp4, "fp8": lambda w: fp8(w, "tensor"),
            "fp8-channel": lambda w: fp8(w, "channel"), "fp8-block": lambda w: fp8(w, "block")}[f]


FORMATS = [dict(format="gptq"), dict(format="gptq", bits=8, group=32), dict(format="awq", group=64),
           dict(format="int4", group=32), dict(format="int4"),
           dict(format="mxfp4"), dict(format="mxfp8"), dict(format="nvfp4"), dict(format="fp8"),
           dict(format="fp8-channel"), dict(format="fp8-block"), dict(format="nf4"), dict(format="fp4", double_quant=False), dict(format="int8")]


@pytest.mark.needs("torch")
@pytest.mark.parametrize("fields", FORMATS, ids=lambda f: ",".join(map(str, f.values())))
@settings(max_examples=3, deadline=None, derandomize=True)
@given(st.integers(1, 9), st.integers(1, 9))
def test_each_format_s_bytes_equal_its_packed_tensors(fields, rows, cols):
    """At shapes the packers take (multiples of 32: AutoGPTQ refuses others), a 128 x 128 block's edge included."""
    q = Quantization(**fields)
    d_out, d_in = 32 * rows, 32 * cols + (96 if fields["format"] == "fp8-block" else 0)
    w = torch.randn(d_out, d_in, dtype=torch.bfloat16)
    assert q.weight_bytes(d_in, d_out) == packer(q)(w)


@pytest.mark.needs("torch")
@settings(max_examples=4, deadline=None, derandomize=True)
@given(st.integers(1, 6), st.integers(1, 6))
def test_mx_and_nvfp4_bytes_equal_torchao_s_own_tensors(rows, blocks):
    """torchao's MXTensor (E2M1 pairs or E4M3 bytes, an E8M0 scale per 32 along the input) and NVFP4Tensor (E2M1
    pairs, an FP8 scale per 16, the weight's and the activation's fp32 per-tensor scales), built on the CPU by the
    formats' own library: the bytes of their tensors are the formats' rules."""
    pytest.importorskip("torchao")
    from torchao.prototype.mx_formats.mx_tensor import MXTensor
    from torchao.prototype.mx_formats.nvfp4_tensor import NVFP4Tensor

    d_out, d_in = 8 * rows, 32 * blocks
    w = torch.randn(d_out, d_in, dtype=torch.bfloat16)
    held = lambda t: sum(getattr(t, name).nbytes for name in t.__tensor_flatten__()[0])
    mx = MXTensor.to_mx(w, torch.float4_e2m1fn_x2, block_size=32)
    nv = NVFP4Tensor.to_nvfp4(w, per_tensor_scale=w.abs().amax().float() / (448 * 6),
                              act_per_tensor_scale=torch.tensor(1.0))
    assert held(mx) == Quantization(format="mxfp4").weight_bytes(d_in, d_out)
    mx8 = MXTensor.to_mx(w, torch.float8_e4m3fn, block_size=32)
    assert held(mx8) == Quantization(format="mxfp8").weight_bytes(d_in, d_out)
    assert held(nv) == Quantization(format="nvfp4").weight_bytes(d_in, d_out)


def stored_model_bytes(model, q: Quantization) -> int:
    """A transformers model's bytes with each linear a format stores packed (every nn.Linear but the LM
    head and the router, or a MoE's experts only), the fused experts as the checkpoints keep them (each
    expert's gate, up and down projections apart), the rest in bf16."""
    pack, total, packed = packer(q), 0, set()
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and name != "lm_head" and not name.endswith(".gate") and (
                q.which == "all-linear"):
            total += pack(m.weight.to(torch.bfloat16))
            packed.add(f"{name}.weight")
    for name, p in model.named_parameters():
        if ".experts." in name and p.dim() == 3:  # (experts, d_out, d_in): gate and up fused
            parts = p.chunk(2, dim=1) if name.endswith("gate_up_proj") else (p,)
            total += sum(pack(m.to(torch.bfloat16)) for part in parts for m in part)
        elif name not in packed:
            total += p.numel() * 2
    return total


@pytest.mark.needs("torch")
@pytest.mark.needs("transformers")
@pytest.mark.parametrize("name, fields", [
    ("llama", dict(format="gptq")), ("mixtral", dict(format="mxfp4", which="experts")),
    *(pytest.param(n, f, marks=pytest.mark.slow) for n, f in [  # the per-matrix test above covers each format
        ("mixtral", dict(format="nf4")), ("llama", dict(format="mxfp4")), ("llama", dict(format="fp8-block")),
        ("llama", dict(format="nf4")),
        ("mixtral", dict(format="gptq")), ("mixtral", dict(format="mxfp4")), ("mixtral", dict(format="fp8-block"))])],
    ids=lambda x: x if isinstance(x, str) else ",".join(x.values()))
def test_a_stored_model_s_weights_equal_its_packed_tensors(name, fields):
    """memory's weights_bytes of a spec with a quantization block == the bytes of a transformers model
    whose linears are packed by the format (experts-only formats on the MoE only)."""
    import transformers

    sizes = dict(d_model=64, n_heads=2, n_kv_heads=1, n_layers=2, d_ff=96, vocab=50)
    common = dict(hidden_size=64, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=2,
                  intermediate_size=96, vocab_size=50, tie_word_embeddings=False)
    if name == "mixtral":
        sizes |= dict(n_experts=3, top_k=2)
        config = transformers.MixtralConfig(**common, num_local_experts=3, num_experts_per_tok=2)
        model = transformers.MixtralForCausalLM(config)
    else:
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**common))
    spec = symcost.quantize(symcost.load(arch(name)), **fields)
    assert symcost.memory(spec, precision="bf16", **sizes).numbers["weights_bytes"] == stored_model_bytes(
        model, Quantization(**fields))


def test_llama_2_7b_gptq_and_the_stored_formats_by_hand():
    """Llama-2-7B at GPTQ 4-bit, group 128: each of the 7 x 32 linears (d_in, d_out) packs to
    d_in·d_out/2 + 2.5·d_out·d_in/128 + 4·d_in bytes; embeddings, head and norms stay bf16."""
    shapes = [(4096, 4096)] * 4 + [(4096, 11008)] * 2 + [(11008, 4096)]
    linears = 32 * sum(i * o // 2 + (i // 128) * o * 5 // 2 + 4 * i for i, o in shapes)
    rest = 2 * (2 * 32000 * 4096 + (2 * 32 + 1) * 4096)
    spec = symcost.quantize(symcost.load(arch("llama")), format="gptq")
    assert symcost.memory(spec).numbers["weights_bytes"] == linears + rest == 3_893_862_400


# Published checkpoints' tensor bytes (the sum of their safetensors headers' tensor sizes), as public
# repositories quote them: openai/gpt-oss-20b's model.safetensors.index.json ("total_size", beside its
# config.json, tests/data/hf/gpt-oss-20b.json); openai/gpt-oss-120b's 15 files' tensor_bytes in a
# deployment's inventory test (their file bytes, 65,248,893,184, add the headers); and an 80-layer
# Llama 3 checkpoint with AWQ's qweight tensors whose index a Go library's test embeds (9 shards, its
# name not given: the total pins Llama-3.x-70B at AWQ 4-bit, group 128 — GPTQ's g_idx would add 24,903,680)
PUBLISHED_CHECKPOINTS = [
    ("gpt-oss-20b", lambda: symcost.loads(import_hf("gpt-oss-20b")), 13_761_264_768),
    ("gpt-oss-120b", lambda: symcost.quantize(arch("gpt_oss"), format="mxfp4", which="experts"), 65_248_815_744),
    ("Llama-3.x-70B AWQ", lambda: symcost.quantize(symcost.loads(import_hf("Llama-3.3-70B-Instruct")), format="awq"),
     39_767_785_472),
]


# deepseek-ai/DeepSeek-R1's 163 safetensors files as a public report lists their 91,991 tensors (rows of like
# tensors merged: name, count, shape, dtype; 684,531,386,000 values in all, which the rows below reproduce):
# (tensors, values each, bytes a value, in layer 61: its multi-token-prediction module, not written by the importer)
D, V, FP8 = 7168, 129280, lambda o, i: ((o, i), 1, (-(-o // 128), -(-i // 128)), 4)  # values; fp32 block scales
R1_TENSORS = [
    (2, (V, D), 2, False), (1, (D,), 2, False),  # lm_head, embed_tokens; the final norm
    *((3, *pair, False) for o, i in ((18432, D), (18432, D), (D, 18432)) for pair in (FP8(o, i)[:2], FP8(o, i)[2:])),
    (61, (2 * D + 512 + 1536,), 2, False), (1, (2 * D + 512 + 1536,), 2, True),  # the norms of each layer
    *((n, *pair, mtp) for o, i in ((576, D), (32768, 512), (D, 16384), (1536, D), (24576, 1536))
      for pair in (FP8(o, i)[:2], FP8(o, i)[2:]) for n, mtp in ((61, False), (1, True))),  # latent attention
    *((n * 257, *pair, mtp) for o, i in ((2048, D), (2048, D), (D, 2048)) for pair in (FP8(o, i)[:2], FP8(o, i)[2:])
      for n, mtp in ((58, False), (1, True))),  # 256 routed and a shared expert a layer
    (58, (256,), 4, False), (1, (256,), 4, True),  # the router's e_score_correction_bias (fp32)
    (58, (256, D), 2, False), (1, (256, D), 2, True),  # the router (bf16)
    (1, (D, 2 * D), 2, True), (2, (V, D), 2, True), (3, (D,), 2, True),  # eh_proj; its table and head; three norms
]


def r1_bytes(with_mtp: bool) -> tuple[int, int]:
    """(values, bytes) of R1_TENSORS, with or without its layer 61."""
    import math

    rows = [(n, math.prod(shape), size) for n, shape, size, mtp in R1_TENSORS if with_mtp or not mtp]
    return sum(n * v for n, v, _ in rows), sum(n * v * size for n, v, size in rows)


def test_deepseek_r1_s_fp8_checkpoint_less_its_mtp_module():
    """FP8 block-128 weights with fp32 scales, the rest bf16 (its quantization_config, read by import-hf): the
    checkpoint's bytes less its layer 61 (the multi-token-prediction module, which transformers does not build and
    the importer writes apart, as the spec's `mtp`), less the routers' correction biases (58 x 256 fp32: buffers in
    transformers, which symcost does not count either, though the checkpoint stores them)."""
    values, stored = r1_bytes(True)
    assert values == 684_531_386_000  # the report's total: the rows are read right
    kept = r1_bytes(False)[1]
    assert symcost.memory(symcost.loads(import_hf("DeepSeek-R1"))).numbers["weights_bytes"] == kept - 58 * 256 * 4
    assert (stored, kept) == (688_574_839_360, 673_150_611_808)


def test_deepseek_r1_s_mtp_module_is_its_checkpoint_s_layer_61_reported_apart():
    """The importer writes R1's multi-token-prediction module (num_nextn_predict_layers 1) as the spec's `mtp`,
    apart from the model: its parameters are the checkpoint's layer 61 less its fp32 block scales, its copies of
    the shared table and head (2 x 129,280 x 7,168) and the router's correction bias (a buffer, as in the main
    model); its forward FLOPs a MoE layer's (the model at 5 layers less at 4), eh_proj's 2 x 2d^2 and the shared
    head's 2 d V a token. The main model's count is unchanged (transformers' 671,026,404,352)."""
    import math

    from symcost.evaluate import dim_values

    spec = symcost.loads(import_hf("DeepSeek-R1"))
    d = symcost.derive(spec)
    at = dim_values(d)
    layer_61 = sum(n * math.prod(shape) for n, shape, size, mtp in R1_TENSORS
                   if mtp and not (size == 4 and len(shape) == 2))  # the block scales are 2-d fp32
    assert d.mtp.params.xreplace(at) == layer_61 - 2 * V * D - 256 == 11_610_067_968
    assert symcost.evaluate(spec).total["params"] == 671_026_404_352
    forward = lambda n: symcost.evaluate(spec, {"n_layers": n}).total["forward"]
    tokens = symcost.evaluate(spec).dims["seq_len"]
    assert d.mtp.forward.xreplace(at) == forward(5) - forward(4) + 4 * D * D * tokens + 2 * D * V * tokens


# moonshotai/Kimi-K2.5's 208,550 tensors as the same public report lists them (170,738,182,128 values, its vision
# tower's and projector's included, which the rows below reproduce): its routed experts in compressed-tensors'
# pack-quantized INT4 (groups of 32, bf16 scales), the rest bf16; and its text_config's sizes and quantization
KIMI_INT4 = {"config_groups": {"group_0": {"targets": ["Linear"], "weights": {
    "group_size": 32, "num_bits": 4, "strategy": "group", "symmetric": True, "type": "int", "dynamic": False,
    "observer": "minmax", "actorder": None, "block_structure": None, "observer_kwargs": {}},
    "input_activations": None, "output_activations": None}}, "format": "pack-quantized",
    "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*", r"re:.*mlp\.(gate|up|gate_up|down)_proj.*"],
    "kv_cache_scheme": None, "quant_method": "compressed-tensors", "quantization_status": "compressed"}
KIMI_K25_TEXT = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "first_k_dense_replace": 1,
    "hidden_size": 7168, "intermediate_size": 18432, "kv_lora_rank": 512, "max_position_embeddings": 262144,
    "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 384, "n_shared_experts": 1,
    "norm_topk_prob": True, "num_attention_heads": 64, "num_experts_per_tok": 8, "num_hidden_layers": 61,
    "num_key_value_heads": 64, "num_nextn_predict_layers": 0, "q_lora_rank": 1536, "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64, "quantization_config": KIMI_INT4, "routed_scaling_factor": 2.827, "scoring_func": "sigmoid",
    "tie_word_embeddings": False, "topk_group": 1, "topk_method": "noaux_tc", "v_head_dim": 128, "vocab_size": 163840}


def test_kimi_k2_5_s_int4_experts_as_its_checkpoint_stores_them():
    """Each expert matrix (d_out, d_in): weight_packed int32 (d_out, d_in/8), weight_scale bf16 (d_out, d_in/32),
    weight_shape int32 (2); the text model's other tensors bf16 and its routers' correction biases fp32 (60 x 384 x
    4 bytes: buffers in transformers, named). import-hf reads the pack-quantized config and its ignore patterns
    (attention, shared experts and the dense MLP kept in 16 bits) as int4, group 32, experts only."""
    V, D = 163840, 7168
    expert = lambda d_out, d_in: d_out * d_in // 8 * 4 + d_out * d_in // 32 * 2 + 8
    text = {  # name: (tensors, values, bytes)
        "lm_head, embed_tokens": (2, V * D, 2 * V * D * 2), "norms": (61, 2 * D + 512 + 1536, 61 * (2 * D + 2048) * 2),
        "attention": (61, 576 * D + 16384 * 512 + D * 8192 + 1536 * D + 12288 * 1536, None),
        "dense mlp": (3, 18432 * D, 3 * 18432 * D * 2),
        "experts": (60 * 384, D * 256 + D * 64 + 2 + 2 * (2048 * 896 + 2048 * 224 + 2),
                    60 * 384 * (expert(D, 2048) + 2 * expert(2048, D))),
        "correction bias": (60, 384, 60 * 384 * 4), "router": (60, 384 * D, 60 * 384 * D * 2),
        "shared experts": (60, 3 * 2048 * D, 60 * 3 * 2048 * D * 2), "norm": (1, D, D * 2)}
    text["attention"] = (*text["attention"][:2], 61 * text["attention"][1] * 2)
    vision = (2 * 1152 + 4608 + 4608**2 + 7168 + 7168 * 4608 + 2 * 1152 + 64 * 64 * 1152 + 1152 + 1152 * 3 * 14 * 14
              + 27 * (4304 + 4304 * 1152 + 1152 + 1152 * 4304 + 4 * 1152 + 1152 + 1152**2 + 3456 + 3456 * 1152))
    assert sum(n * v for n, v, _ in text.values()) + vision == 170_738_182_128  # the report's total: rows read right
    spec = symcost.loads(import_config(KIMI_K25_TEXT, "text_config.json"))
    assert (spec.quantization.format, spec.quantization.group, spec.quantization.which) == ("int4", 32, "experts")
    stored = sum(b for _, _, b in text.values())
    assert symcost.memory(spec).numbers["weights_bytes"] == stored - 60 * 384 * 4 == 594_205_812_736


def import_hf(name):
    import json

    from published import DATA

    return import_config(json.loads((DATA / f"{name}.json").read_text()), f"{name}.json")


@pytest.mark.parametrize("name, spec, published", PUBLISHED_CHECKPOINTS)
def test_weights_equal_published_checkpoints_tensor_bytes(name, spec, published):
    assert symcost.memory(spec()).numbers["weights_bytes"] == published


def test_gpt_oss_s_mxfp4_experts_by_hand_and_its_model_card():
    """Each expert matrix's value in 4 bits and an E8M0 scale per 32 (17/32 of a byte); every other
    tensor (attention, router, biases, sinks, norms, embeddings, head) in bf16: the model card's
    checkpoint sizes (Table 1: 12.8 GiB and 60.8 GiB)."""
    for layers, experts, gib in ((24, 32, 12.8), (36, 128, 60.8)):
        values = layers * experts * 3 * 2880 * 2880
        params = symcost.evaluate(arch("gpt_oss"), {"n_layers": layers, "n_experts": experts}).total["params"]
        stored = values * 17 // 32 + 2 * (params - values)
        spec = symcost.quantize(arch("gpt_oss"), format="mxfp4", which="experts")
        assert symcost.memory(spec, n_layers=layers, n_experts=experts).numbers["weights_bytes"] == stored
        assert round(stored / 2**30, 1) == gib


def test_a_quantization_block_says_what_it_cannot_do(write):
    base = open(arch("llama")).read()
    with pytest.raises(SpecError, match="group.*setting of gptq, awq and int4"):
        symcost.quantize(arch("llama"), format="mxfp4", group=32)
    with pytest.raises(SpecError, match="awq packs 4-bit"):
        symcost.quantize(arch("llama"), format="awq", bits=8)
    with pytest.raises(SpecError, match=r"quantization.format"):
        symcost.quantize(arch("llama"), format="int3")
    with pytest.raises(SpecError, match=r":\d+:\d+: quantization.which: experts: no linear .* no moe layer"):
        symcost.derive(write(base + "quantization: {format: mxfp4, which: experts}\n"))
    with pytest.raises(SpecError, match=r"quantization: a fine-tune trains"):
        symcost.derive(write(base + "quantization: {format: nf4}\nfinetune: {method: lora, rank: 8}\n"))
    with pytest.raises(SpecError, match="plan trains a model"):
        symcost.plan(symcost.quantize(arch("llama"), format="fp8"), gpus=8)
    notes = symcost.memory(symcost.quantize(arch("llama"), format="fp8")).notes
    assert any("linears stored fp8 (all-linear)" in n and "cannot train" in n for n in notes)
