"""DeepSeek-V4's attention (`compressed_attention`: the sliding window alone, HCA, CSA with its indexer):
parameters, FLOPs forward and backward and the bytes saved for backward (fp32 and bf16) equal PyTorch's
on the reference build and on transformers' own DeepseekV4Attention at drawn sizes; the caches and the
FLOPs of a prefill and of the decode steps after it equal transformers' (its DeepseekV4CSACache and
HCACache); the `kernel` convention counts the pairs each query keeps, by a loop over positions at two
published sizes; bad layer mixes are refused in one line."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import assert_reference_matches, block_spec, cache_bytes, kernel_minus_pytorch, measured_layer
from symcost.errors import SpecError
from symcost.evaluate import dim_values
from symcost.memory import saved_bytes
from symcost.symbols import ACT

torch = pytest.importorskip("torch")  # the reference build and transformers' layer

MODES = {None: "sliding_attention", "hca": "heavily_compressed_attention", "csa": "compressed_sparse_attention"}


def layer(mode, d, h, hd, rope, qr, window, g, olr, m, ih=2, idim=4, topk=2):
    extra = "" if mode is None else f", compress: {m}"
    if mode == "csa":
        extra += f", index_heads: {ih}, index_dim: {idim}, index_topk: {topk}"
    return (f"compressed_attention: {{dim: {d}, heads: {h}, head_dim: {hd}, rope_dim: {rope}, q_lora_rank: {qr}, "
            f"window: {window}, o_groups: {g}, o_lora_rank: {olr}{extra}}}")


sizes = st.fixed_dictionaries({
    "mode": st.sampled_from([None, "hca", "csa"]), "d": st.integers(2, 8), "h": st.integers(1, 3),
    "rope": st.sampled_from([2, 4]), "qr": st.integers(1, 4), "window": st.integers(2, 5), "olr": st.integers(1, 3),
    "m": st.integers(2, 4), "topk": st.integers(1, 3), "n": st.integers(1, 10), "b": st.integers(1, 2)})


def spec_of(s):
    # head_dim 8, index_dim 4: each holds the rotated features; o_groups 2 divides heads x head_dim
    return block_spec(s["d"], s["n"], s["b"], layer(s["mode"], s["d"], s["h"], 8, s["rope"], s["qr"], s["window"], 2,
                                                     s["olr"], s["m"], topk=s["topk"]))


@settings(max_examples=8, deadline=None, derandomize=True)
@given(s=sizes)
def test_counts_saved_bytes_and_steps_equal_pytorch_at_drawn_sizes(s):
    assert_reference_matches(spec_of(s), s["n"], "compressed_attention")


def v4_config(T, mode, d, h, rope, qr, window, olr, m, topk):
    return T.DeepseekV4Config(
        hidden_size=d, num_attention_heads=h, head_dim=8, q_lora_rank=qr, o_groups=2, o_lora_rank=olr,
        sliding_window=window, index_n_heads=2, index_head_dim=4, index_topk=topk, num_hidden_layers=1,
        layer_types=[MODES[mode]], mlp_layer_types=["moe"], partial_rotary_factor=rope / 8, n_routed_experts=2,
        num_experts_per_tok=1, moe_intermediate_size=4, vocab_size=16,
        compress_rates={"compressed_sparse_attention": m, "heavily_compressed_attention": m})


def attention_module(T, config):
    """transformers' layer called as its decoder calls it: both rotary tables, positions after the cache, and
    the sliding-window mask over the keys it will hold (additive, as its eager path takes it)."""
    from transformers.models.deepseek_v4 import modeling_deepseek_v4 as v4

    class Called(torch.nn.Module):
        def __init__(self):
            super().__init__()
            config._attn_implementation = "eager"
            self.attention, self.rotary = v4.DeepseekV4Attention(config, 0), v4.DeepseekV4RotaryEmbedding(config)

        def forward(self, x, cache=None, past=0):
            B, n, _ = x.shape
            positions = (torch.arange(n) + past).unsqueeze(0).expand(B, -1)
            tables = {kind: self.rotary(x, positions, layer_type=kind) for kind in ("main", "compress")}
            keys = min(past, config.sliding_window - 1) + n
            i, j = torch.arange(n)[:, None] + past, torch.arange(keys)[None, :] + past + n - keys
            hidden = (j > i) | (i - j >= config.sliding_window)
            mask = torch.zeros(n, keys).masked_fill(hidden, float("-inf")).expand(B, 1, n, keys).to(x.dtype)
            return self.attention(x, position_embeddings=tables, position_ids=positions, attention_mask=mask,
                                  cache=cache)[0]

    return Called()


@pytest.mark.slow  # the quick half keeps the reference build's tests; these in the full suite
@settings(max_examples=8, deadline=None, derandomize=True)
@given(s=sizes, bf16=st.booleans())
def test_equal_to_transformers_deepseek_v4_attention(s, bf16):
    T = pytest.importorskip("transformers")
    config = v4_config(T, s["mode"], s["d"], s["h"], s["rope"], s["qr"], s["window"], s["olr"], s["m"], s["topk"])
    dtype = torch.bfloat16 if bf16 else torch.float32
    module = attention_module(T, config).to(dtype)
    for name, p in module.named_parameters():  # zeros would leave the indexer's choice to ties
        torch.nn.init.normal_(p)
        if any(kept in name for kept in ("sinks", "position_bias", "norm")):  # as its _keep_in_fp32_modules_strict
            p.data = p.data.float()
    x = torch.randn(s["b"], s["n"], s["d"], dtype=dtype, requires_grad=True)
    params, forward, backward, saved = measured_layer(module, x)
    derivation = symcost.derive(spec_of(s))
    node, ours = next((node, v) for node, v in symcost.evaluate(derivation).components
                      if node.kind == "compressed_attention")
    assert (ours["params"], ours["forward"], ours["backward"]) == (params, forward, backward)
    rule = saved_bytes(derivation, "eager", "none")[node.path]
    assert saved == int(rule.xreplace(dim_values(derivation)).xreplace({ACT: 2 if bf16 else 4}))


@pytest.mark.parametrize("mode", [None, "hca", "csa"])
def test_cache_after_a_prefill_and_six_steps_equals_transformers(mode):
    """Its DynamicCache with the V4 layers (sliding, HCA, CSA: compressed entries, the open window's tokens, the
    last window's halves, the indexer's own): bytes held and FLOPs after a 5-token prompt and each of six steps,
    windows of 3 (HCA) or 2 (CSA) closing on the way."""
    T = pytest.importorskip("transformers")
    from torch.utils.flop_counter import FlopCounterMode

    m, n, b = (2 if mode == "csa" else 3), 5, 2
    config = v4_config(T, mode, 8, 2, 4, 4, 4, 3, m, 2)
    module, cache = attention_module(T, config), T.DynamicCache(config=config)
    spec = block_spec(8, n, b, layer(mode, 8, 2, 8, 4, 4, 4, 2, 3, m))
    past = 0
    for step, length in enumerate([n] + [1] * 6):
        with torch.no_grad(), FlopCounterMode(display=False) as counted:
            module(torch.randn(b, length, 8), cache, past)
        at = {"batch": b, "seq_len": n} if step == 0 else {"batch": b, "context": past}
        derivation = symcost.derive(spec, decode=step > 0)
        past += length
        assert counted.get_total_flops() == symcost.evaluate(derivation, at).total["forward"]
        assert cache_bytes(cache) == 4 * int(derivation.raw_total.cache.xreplace(dim_values(derivation, at)))


V4_FLASH = dict(d=4096, h=64, hd=512, rope=64, qr=1024, window=128, g=8, olr=1024, ih=64, idim=128, topk=512)


def kept_pairs(n, window, m=None, topk=None):
    """By a loop over positions: the window keys and compressed entries each query sees, and the entries the
    indexer scores (the causal ones)."""
    pairs = scored = 0
    for p in range(n):
        closed = (p + 1) // m if m else 0
        pairs += min(window, p + 1) + (min(topk, closed) if topk else closed)
        scored += closed
    return pairs, scored


def test_the_kernel_convention_counts_kept_pairs_by_hand():
    """DeepSeek-V4-Flash's CSA layer (64 heads of 512, a window of 128, entries of 4 tokens, the top 512 kept;
    the indexer's 64 heads of 128) at 4,096 tokens, and its HCA layer (entries of 128) at 1,000 tokens with
    batch 3: under kernel the attention's two products run over the kept pairs and the indexer over the
    causal entries; under pytorch over every key held (4,096 + 1,024 a query) and every entry."""
    f, n = V4_FLASH, 4096
    pairs, scored = kept_pairs(n, 128, 4, 512)
    assert (pairs, scored) == (2_088_512, 2_096_128)
    kernel = 4 * 64 * 512 * pairs + 2 * 64 * 128 * scored
    pytorch = 4 * 64 * 512 * n * (n + n // 4) + 2 * 64 * 128 * n * (n // 4)
    assert (pytorch, kernel) == (2_817_498_546_176, 308_088_406_016)  # the README's figures
    csa = layer("csa", f["d"], f["h"], f["hd"], f["rope"], f["qr"], f["window"], f["g"], f["olr"], 4, f["ih"],
                f["idim"], f["topk"])
    assert kernel_minus_pytorch(4096, n, 1, csa) == kernel - pytorch == -2_509_410_140_160
    n, b = 1000, 3
    pairs, _ = kept_pairs(n, 128, 128)
    hca = layer("hca", f["d"], f["h"], f["hd"], f["rope"], f["qr"], f["window"], f["g"], f["olr"], 128)
    assert kernel_minus_pytorch(4096, n, b, hca) == 4 * b * 64 * 512 * (pairs - n * (n + n // 128))


@pytest.mark.parametrize("fields, message", [
    ("compress: 4, index_heads: 2", "index_heads: the lightning indexer needs index_heads, index_dim and"),
    ("index_heads: 2, index_dim: 4, index_topk: 2", "index_heads: the lightning indexer needs"),
    ("rope_dim: 12", "rope_dim: rope_dim 12 exceeds head_dim 8"),
    ("rope_dim: 3", "rope_dim: rope_dim 3 is odd"),
    ("o_groups: 3", "o_groups: o_groups 3 does not divide heads x head_dim = 16"),
    ("compress: 4, index_heads: 2, index_dim: 2, index_topk: 2", "index_dim: the indexer rotates rope_dim 4"),
])
def test_inconsistent_fields_are_refused_in_one_line(fields, message):
    base = {"dim": 8, "heads": 2, "head_dim": 8, "rope_dim": 4, "q_lora_rank": 4, "window": 4, "o_groups": 2,
            "o_lora_rank": 3}
    base |= dict(item.split(": ") for item in fields.split(", "))
    text = "compressed_attention: {" + ", ".join(f"{k}: {v}" for k, v in base.items()) + "}"
    with pytest.raises(SpecError) as raised:
        symcost.evaluate(symcost.derive(block_spec(8, 5, 1, text)))
    assert message in str(raised.value) and "\n" not in str(raised.value)


CSA_VS_MLA = """name: csa-vs-mla
dims: {seq_len: 4096}
layers:
  - embedding: {vocab: 129280, dim: 4096}
  - compressed_attention: {dim: 4096, heads: 64, head_dim: 512, rope_dim: 64, q_lora_rank: 1024, window: 128,
                           o_groups: 8, o_lora_rank: 1024, compress: 4,
                           index_heads: 64, index_dim: 128, index_topk: 512}
  - rotary: {dim: 64}
  - mla: {dim: 4096, heads: 128, kv_lora_rank: 512, qk_nope_dim: 128, qk_rope_dim: 64, v_head_dim: 128,
          q_lora_rank: 1536, causal: true}
"""


def test_crossover_of_v4_flash_csa_and_v3_mla_in_seq_len():
    """DeepSeek-V4-Flash's CSA layer beside DeepSeek-V3's MLA layer (at V4's width): as transformers runs them
    (pytorch) the CSA layer costs more from 99 tokens on; as the kernels run them it costs less at every
    length, checked at each power of two to 2^20 (the answer docs/explore.md gives)."""
    spec = symcost.loads(CSA_VS_MLA)
    forward = lambda n, convention: {node.kind: v["forward"] for node, v in symcost.evaluate(
        symcost.derive(spec, convention), {"seq_len": n}).components}
    [root] = symcost.crossover(spec, "compressed_attention", "mla", "seq_len").roots
    assert float(root) == 98.5  # between the sizes 98 and 99 (bisection over integers)
    below, above = forward(98, "pytorch"), forward(99, "pytorch")
    assert below["compressed_attention"] < below["mla"] and above["compressed_attention"] > above["mla"]
    assert symcost.crossover(spec, "compressed_attention", "mla", "seq_len", convention="kernel").roots == []
    for n in (2**k for k in range(21)):
        counts = forward(n, "kernel")
        assert counts["compressed_attention"] < counts["mla"]


def test_cache_per_token_counts_the_entries_on_average():
    """`memory`'s KV cache per token (bf16), before the window fills: the CSA layer's key (512) and its entries'
    512 + 128 values every 4 tokens; MLA's latent and rope key (512 + 64). The last window's halves, a flag once
    a window closed, do not grow with the context."""
    m = symcost.memory(symcost.loads(CSA_VS_MLA))
    assert m.numbers["kv_bytes_per_token"] == 2 * (512 + (512 + 128) // 4 + 512 + 64) == 2_496


def v4_small(types, **more):
    T = pytest.importorskip("transformers")
    return T.DeepseekV4Config(
        vocab_size=30, hidden_size=8, moe_intermediate_size=4, num_hidden_layers=len(types), num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, q_lora_rank=4, o_groups=2, o_lora_rank=3, n_routed_experts=3,
        n_shared_experts=1, num_experts_per_tok=2, hc_mult=2, hc_sinkhorn_iters=3, sliding_window=3, index_n_heads=2,
        index_head_dim=4, index_topk=2, layer_types=types, compress_rates={"compressed_sparse_attention": 2,
                                                                          "heavily_compressed_attention": 3},
        partial_rotary_factor=0.5, pad_token_id=0, **more).to_dict()


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=4, deadline=None, derandomize=True)
@given(types=st.lists(st.sampled_from(list(MODES.values())), min_size=1, max_size=4), n=st.integers(1, 9),
       b=st.integers(1, 2), hashed=st.integers(0, 2))
def test_deepseek_v4_equal_to_transformers_at_drawn_layer_mixes(types, n, b, hashed):
    """Window-only, HCA and CSA layers wherever layer_types put them, hash-routed MoE on the first layers, two
    hyper-connected streams: parameters, active parameters and forward FLOPs against DeepseekV4ForCausalLM on meta;
    then on the CPU a prompt of n tokens and a decode step: the counts and the caches (window keys, compressed
    entries, the open window's projections, the last window's halves) equal the formulas."""
    from conftest import assert_prefill_and_step_match
    from symcost.hf import import_config
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    cfg = v4_small(types, mlp_layer_types=["hash_moe"] * min(hashed, len(types)) + ["moe"] * (len(types) - hashed))
    s = symcost.loads(import_config(cfg, "deepseek_v4.json"))
    report = verify_hf(s, cfg, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1], report.by_kind
    assert_prefill_and_step_match(build(cfg, "cpu").eval().requires_grad_(False), s, b, n, 30)


def test_the_published_flash_file_imports_as_the_shipped_spec():
    """DeepSeek-V4-Flash's released fields (its legacy compress_ratios, with the MTP layer's entry after the 43,
    qk_rope_head_dim and num_hash_layers) import to architectures/deepseek_v4_flash.yaml: 284,332,230,231 parameters
    and 13,799,622,231 active, which transformers builds from the same fields (tests/hf/test_hf.py, on meta)."""
    from conftest import arch
    from symcost.hf import import_config

    shipped = open(arch("deepseek_v4_flash")).read()
    flash = {"model_type": "deepseek_v4", "architectures": ["DeepseekV4ForCausalLM"], "vocab_size": 129280,
             "hidden_size": 4096, "moe_intermediate_size": 2048, "num_hidden_layers": 43, "num_attention_heads": 64,
             "num_key_value_heads": 1, "head_dim": 512, "qk_rope_head_dim": 64, "q_lora_rank": 1024, "o_groups": 8,
             "o_lora_rank": 1024, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 6,
             "num_hash_layers": 3, "scoring_func": "sqrtsoftplus", "hc_mult": 4, "hc_sinkhorn_iters": 20,
             "sliding_window": 128, "index_n_heads": 64, "index_head_dim": 128, "index_topk": 512,
             "max_position_embeddings": 1048576, "num_nextn_predict_layers": 1,
             "compress_ratios": [0, 0] + [4, 128] * 20 + [4, 0]}
    imported = import_config(json.loads(json.dumps(flash)), "config.json")
    assert imported[imported.index("dims:"):] == shipped[shipped.index("dims:"):]
    total = symcost.evaluate(symcost.loads(shipped)).total
    assert (total["params"], total["active_params"]) == (284_332_230_231, 13_799_622_231)


@pytest.mark.slow  # a 1.6T model's meta build: in the full suite
def test_deepseek_v4_pro_equals_transformers_on_meta():
    """DeepSeek-V4-Pro's released fields (deepseek-ai/DeepSeek-V4-Pro config.json: 61 layers of 7,168, 128 heads,
    384 experts, HCA on the first two layers then CSA and HCA in turn, the top 1,024 entries): 1,572,997,179,491
    parameters (the card's 1.6T) and 49,779,058,787 active (its 49B), and the forward FLOPs at 64 tokens, as
    transformers builds it on meta."""
    from symcost.hf import import_config
    from symcost.measure.verify import verify_hf

    pro = {"model_type": "deepseek_v4", "architectures": ["DeepseekV4ForCausalLM"], "vocab_size": 129280,
           "hidden_size": 7168, "moe_intermediate_size": 3072, "num_hidden_layers": 61, "num_attention_heads": 128,
           "num_key_value_heads": 1, "head_dim": 512, "qk_rope_head_dim": 64, "q_lora_rank": 1536, "o_groups": 16,
           "o_lora_rank": 1024, "n_routed_experts": 384, "n_shared_experts": 1, "num_experts_per_tok": 6,
           "num_hash_layers": 3, "hc_mult": 4, "hc_sinkhorn_iters": 20, "sliding_window": 128, "index_n_heads": 64,
           "index_head_dim": 128, "index_topk": 1024, "max_position_embeddings": 1048576,
           "num_nextn_predict_layers": 1, "compress_ratios": [128, 128] + [4, 128] * 29 + [4, 0]}
    report = verify_hf(symcost.loads(import_config(pro, "config.json")), pro, {"seq_len": 64})
    assert report.match and report.params == (1_572_997_179_491,) * 2 and report.active == (49_779_058_787,) * 2


@pytest.mark.parametrize("change, fragment", [
    ({"hc_mult": 0}, "hc_mult"),
    ({"compress_ratios": [0, 4, 64]}, "compress_ratios: expected at least 3 ratios (one a layer), each 0, 4 or 128"),
    ({"layer_types": ["sliding_attention"] * 2}, "layer_types: expected 3 layer types"),
    ({"mlp_layer_types": ["moe", "dense", "moe"]}, "mlp_layer_types: expected 3 layer types, each hash_moe or moe"),
    ({"num_key_value_heads": 2}, "num_key_value_heads"),
    ({"max_position_embeddings": 7}, "index_topk: 2 is more than the 1 compressed entries of the longest context "
                                     "(max_position_embeddings 7, one entry per 4 tokens)"),
])
def test_deepseek_v4_refusals(change, fragment):
    from symcost.hf import import_config

    base = {"model_type": "deepseek_v4", "hidden_size": 8, "num_hidden_layers": 3, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 8, "q_lora_rank": 4, "o_groups": 2, "o_lora_rank": 3,
            "sliding_window": 3, "index_n_heads": 2, "index_head_dim": 4, "index_topk": 2, "hc_mult": 2,
            "hc_sinkhorn_iters": 3, "moe_intermediate_size": 4, "n_routed_experts": 3, "n_shared_experts": 1,
            "num_experts_per_tok": 2, "vocab_size": 30, "compress_ratios": [0, 4, 128]}
    with pytest.raises(SpecError, match=re.escape(fragment)):
        import_config(base | change, "config.json")


def test_the_flash_spec_serves_and_plans_or_refuses_in_one_line(cli):
    """serve on one GPU large enough runs to its capacity (the prefill's working set reads the hyper-connection
    sites too); tensor parallelism is refused in one line, as no rule splits these layers."""
    from conftest import arch

    out = cli("serve", arch("deepseek_v4_flash"), "--hardware", "mi325x", "--gpus", "1", "--weights-format", "mxfp4")
    assert out.exit_code in (0, 1) and "Traceback" not in out.output and "KV" in out.output, out.output
    # past the window a token adds, on average, its CSA layers' entries (512 + 128 every 4 tokens) and its HCA
    # layers' (512 every 128), in bf16: not the open window's tokens, a sawtooth
    served = cli("serve", arch("deepseek_v4_flash"), "--hardware", "mi325x", "--gpus", "1", "--weights-format",
                 "mxfp4", "--format", "json")
    per_token = json.loads(served.output)["per_gpu"]["kv_bytes_per_token"]
    assert per_token == 2 * (21 * (512 + 128) // 4 + 20 * 512 // 128) == 6_880
    out = cli("serve", arch("deepseek_v4_flash"), "--hardware", "b200", "--gpus", "8", "--tp", "8")
    assert out.exit_code == 2 and "hyper_expand layers have no tensor-parallel rule" in out.output


def test_serve_rounds_a_fractional_growth_a_token_up():
    """HCA entries of head_dim 8 every 3 tokens: past the window a token adds 8/3 values on average, 16/3 bytes in
    bf16 — served as 6 bytes a token (rounded up: the capacity never overstated), where the one-token difference
    would read the open window's tokens, a sawtooth, as +32 or -48 bytes by the phase of the context."""
    s = block_spec(8, 5, 1, layer("hca", 8, 2, 8, 4, 4, 4, 2, 3, 3))
    assert symcost.serve(s, hardware="h100-sxm", gpus=1, prompt=100, output=10).to_dict()["per_gpu"][
        "kv_bytes_per_token"] == 6


def test_an_fp8_checkpoint_keeps_the_compressors_and_the_indexer_s_projections_in_16_bits():
    """As DeepSeek-V4-Flash ships them (transformers' _keep_in_fp32_modules: the compressors' and the indexer's kv
    and gate projections and its head weights carry no FP8 scale): under `quantization: {format: fp8}` those
    parameters are not stored quantized; the query path's, the output projections' and the indexer's query
    projection are."""
    spec = symcost.loads("name: m\ndims: {seq_len: 5}\nquantization: {format: fp8}\nlayers:\n"
                         "  - embedding: {vocab: 7, dim: 8}\n  - " + layer("csa", 8, 2, 8, 4, 4, 4, 2, 3, 2) + "\n")
    node = next(n for n in symcost.derive(spec).raw if n.kind == "compressed_attention")
    d, qr, h, hd, idim, ih = 8, 4, 2, 8, 4, 2
    assert node.parts["compressor"].packed == 0 and node.parts["indexer"].packed == qr * ih * idim
    assert node.parts["q_proj"].packed == d * qr + qr * h * hd
