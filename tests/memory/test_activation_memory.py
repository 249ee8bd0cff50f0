"""Activation memory: each layer type's saved-for-backward rule equals, byte for byte and
component by component, what saved_tensors_hooks sees on the reference build (real CPU
tensors at sizes hypothesis draws), for each attention implementation and recompute mode, and
under lists of recomputed parts (each norm, MLP or MoE layer checkpointed whole on the reference)."""

import json
from fractions import Fraction

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch, tracked_peak, unknown_keys
from symcost.evaluate import dim_values
from symcost.memory import saved_bytes
from symcost.precision import BYTES
from symcost.symbols import ACT
from strategies import STRATEGIES

torch = pytest.importorskip("torch")
from symcost.measure.saved import measure_saved  # noqa: E402



def assert_exact(name, sizes, attention, recompute, dtype):
    d = symcost.derive(symcost.load(arch(name)))
    values = dim_values(d, sizes)
    measured = measure_saved(d, values, dtype=dtype, attention=attention, recompute=recompute)
    width = BYTES[dtype]
    formulas = {p: int(e.xreplace(values).xreplace({ACT: width})) for p, e in saved_bytes(d, attention, recompute).items()}
    assert {p: v for p, v in formulas.items() if v} == measured.per_path, (name, sizes)


# Small sizes picked by hand; the test after draws them.
SIZES = {
    "transformer": dict(d_model=8, n_layers=2, n_heads=2, vocab=11, max_pos=6, seq_len=5, batch=2),
    "megatron_gpt": dict(d_model=8, n_layers=2, n_heads=2, vocab=11, max_pos=6, seq_len=5, batch=2,
                         dropout=Fraction(1, 10)),
    "llama": dict(d_model=8, n_heads=2, n_kv_heads=1, n_layers=2, d_ff=6, vocab=11, seq_len=5, batch=2),
    "mixtral": dict(d_model=8, n_heads=2, n_kv_heads=1, n_layers=2, d_ff=6, vocab=11, seq_len=5, batch=2,
                    n_experts=4, top_k=2),
    "mistral": dict(d_model=8, n_heads=2, n_kv_heads=1, n_layers=2, d_ff=6, vocab=11, seq_len=5, batch=2, window=3),
    "gemma2": dict(d_model=8, n_heads=2, n_kv_heads=1, d_head=4, d_ff=6, vocab=11, n_layers=2, window=3, seq_len=5,
                   batch=2),
    "deepseek_v3": dict(d_model=8, n_heads=2, q_lora_rank=3, kv_lora_rank=4, qk_nope_dim=2, qk_rope_dim=2,
                        v_head_dim=3, d_ff=6, d_expert=5, n_experts=3, top_k=2, n_shared=1, vocab=11, seq_len=5,
                        batch=2, n_layers=2, n_dense=1),
    "gpt_oss": dict(d_model=8, n_heads=2, n_kv_heads=1, d_head=4, d_ff=6, n_experts=4, top_k=2, vocab=11, n_layers=2,
                    window=3, seq_len=5, batch=2),
    "llama4_scout": dict(d_model=8, n_heads=2, n_kv_heads=1, d_head=4, d_ff=6, n_experts=3, top_k=1, vocab=11,
                         n_layers=4, chunk=3, seq_len=7, batch=2),
    "qwen3_next": dict(d_model=8, n_heads=2, n_kv_heads=1, d_head=4, d_rot=2, n_k_heads=1, n_v_heads=2, d_k=2, d_v=3,
                       d_conv=3, n_experts=3, top_k=2, d_expert=5, d_shared=4, vocab=11, n_layers=4, seq_len=70, batch=2),
    "transformer_base": dict(d_model=4, n_heads=2, n_layers=2, d_ff=6, vocab=11, src_len=3, seq_len=5, batch=2),
    "resnet50": dict(image_size=16, w=1, classes=3, batch=2, n1=2, n2=2, n3=2, n4=2),
    "vit_b16": dict(image_size=8, patch=4, d_model=4, n_heads=2, n_layers=2, d_ff=6, classes=3, batch=2),
    "clip": dict(d_text=4, n_text_heads=2, n_text_layers=2, d_text_ff=6, vocab=11, max_text=6, seq_len=5, d_vision=6,
                 n_vision_heads=2, n_vision_layers=2, d_vision_ff=5, image_size=8, patch=4, proj=3, batch=2),
    "mlp": dict(d_in=7, hidden=5, n_hidden=3, classes=3, batch=2, seq_len=1),
    "lstm": dict(vocab=11, d_embed=3, hidden=4, n_layers=2, seq_len=5, batch=2),
    "mamba": dict(d_model=4, n_layers=2, d_inner=6, d_state=3, d_conv=3, dt_rank=2, vocab=11, seq_len=5, batch=2),
    "mamba2": dict(d_model=3, n_layers=2, d_head=2, d_state=3, d_conv=3, chunk=4, vocab=11, seq_len=7, batch=2),
}


# Attention dropout under sdpa without recomputation cannot be measured on the CPU (test_dropout.py), nor
# attention sinks under sdpa, which PyTorch's kernel does not take (test_experts_and_attention.py).
# Lists of parts: every layer a list can name checkpointed whole, and that with attention's core too; the
# activations alone, with the norms.
LISTS = ("norm,mlp,moe", "attention,norm,mlp,moe", "activation,norm")
CASES = [(name, attention, recompute) for name in sorted(SIZES)
         for attention in ("eager", "sdpa") for recompute in ("none", "selective", "full", *LISTS)
         if (name, attention, recompute) not in (("megatron_gpt", "sdpa", "none"), ("megatron_gpt", "sdpa", LISTS[0]),
                                                 ("megatron_gpt", "sdpa", LISTS[2]))
         and (name, attention) != ("gpt_oss", "sdpa")
]


# fp16 has bf16's sizes; a dtype scales each kept tensor alike under every recomputation mode, so the
# quick half checks bf16 without recomputation and fp32 under each mode, sdpa's recomputation modes in the
# full suite only (which runs every triple)
DTYPED = [pytest.param(*case, dtype, marks=[pytest.mark.slow] if dtype == "fp16" or (dtype == "bf16" and case[2] != "none")
                       or (case[1] == "sdpa" and case[2] != "none") or case[2] == LISTS[1] else [])
          for case in CASES for dtype in ("fp32", "bf16", "fp16")
          if not (dtype == "fp16" and case[2] in LISTS)]  # a list's bytes scale by dtype as a mode's: bf16's suffice


@pytest.mark.parametrize("name,attention,recompute,dtype", DTYPED)
def test_saved_bytes_equal_pytorch(name, attention, recompute, dtype):
    assert_exact(name, SIZES[name], attention, recompute, dtype)


@pytest.mark.slow
@pytest.mark.parametrize("name,attention,recompute", [c for c in CASES if c[2] not in LISTS[::2]])
def test_saved_bytes_equal_pytorch_at_drawn_sizes(name, attention, recompute):
    @settings(max_examples=3, deadline=None, derandomize=True)
    @given(STRATEGIES[name], st.sampled_from(["fp32", "bf16"]))
    def check(sizes, dtype):
        if name == "resnet50":  # batch norm cannot train on one value per channel (the last stage is 1 x 1)
            sizes = {**sizes, "batch": max(sizes["batch"], 2)}
        assert_exact(name, sizes, attention, recompute, dtype)

    check()


def test_a_broken_rule_is_caught(monkeypatch):
    from symcost.components import mlp

    monkeypatch.setattr(mlp, "mlp_saved", lambda rows, hidden, activation, gated, clamped=False: 0)
    with pytest.raises(AssertionError):
        assert_exact("transformer", dict(d_model=8, n_heads=2, n_layers=1, vocab=5, seq_len=3, max_pos=3),
                     "eager", "none", "fp32")


@pytest.mark.slow
def test_memory_activations_follow_dtype_attention_recompute_and_layers():
    llama = lambda **kw: symcost.memory(arch("llama"), **kw).numbers["activation_bytes"]
    base = llama()
    assert llama(attention="eager") > base > llama(recompute="selective") >= llama(recompute="full")
    from symcost.precision import Precision
    assert llama(precision=Precision("fp32")) != base
    deepseek = str(symcost.memory(arch("deepseek_v3")).exprs["activation_bytes"])
    assert all(dim in deepseek for dim in ("kv_lora_rank", "q_lora_rank", "n_experts", "top_k", "d_expert"))


def test_memory_prints_totals_and_follows_its_options(cli):
    def numbers(*args):
        out = cli("memory", arch("llama"), *args)
        assert out.exit_code == 0
        lines = {line.split("  ")[0]: line.split()[-2] for line in out.output.splitlines()
                 if line.startswith(("activations", "peak, training step", "peak, inference"))}
        assert set(lines) == {"activations", "peak, training step", "peak, inference"}
        return lines["activations"]

    base = numbers()
    changed = [numbers(*args) for args in (["--dtype", "fp32"], ["--activation-dtype", "fp32"],
                                           ["--attention", "eager"], ["--recompute", "selective"],
                                           ["--recompute", "full"])]
    assert all(value != base for value in changed) and len(set(changed)) == 4  # --dtype fp32 moves activations too


def test_a_recompute_mode_with_nothing_to_act_on_says_so(cli):
    out = cli("memory", arch("mlp"), "--recompute", "selective").output
    assert "nothing is recomputed" in out
    out = cli("memory", arch("llama"), "--recompute", "full").output
    assert "keeps only its input" in out


@pytest.mark.parametrize("option,bad", [("--attention", "flash2"), ("--recompute", "partial"),
                                        ("--recompute", "norm,up_proj"), ("--recompute", "mlp,mlp"),
                                        ("--recompute", "full,mlp"), ("--recompute", "")])
def test_bad_attention_or_recompute_is_one_line_listing_the_choices(cli, option, bad):
    out = cli("memory", arch("llama"), option, bad)
    assert out.exit_code == 2 and "Traceback" not in out.output and out.output.count("\n") == 1
    assert all(choice in out.output for choice in (("eager", "sdpa", "flash") if option == "--attention"
                                                   else ("none", "selective", "full",
                                                         "attention, activation, norm, mlp, moe")))


def test_the_activations_alone_under_a_fine_tune_are_refused_in_one_line():
    tuned = symcost.finetune(symcost.load(arch("llama")), method="lora", rank=4)
    with pytest.raises(symcost.SpecError, match="recomputing the activations alone under a fine-tune is not "
                                                "modelled: checkpoint the mlp or moe layers whole"):
        symcost.memory(tuned, recompute="activation")
    with pytest.raises(symcost.SpecError, match="recomputing the activations alone under a fine-tune"):
        symcost.plan(tuned, recompute="activation")
    assert symcost.memory(tuned, recompute="mlp").numbers["activation_bytes"] > 0


def test_a_recompute_list_keeps_each_checkpointed_layer_s_input_and_says_what_it_lacks(cli):
    """Llama-2-7B at 4,096 tokens, bf16: each MLP checkpointed keeps its 4096 x 4096 input only (its own kept
    tensors: 4 x 11008-wide ones, and its input), each norm its input; a list naming moe on a dense model says it
    has none; the peak re-materialises the largest checkpointed layer."""
    llama = symcost.derive(arch("llama"))
    n, d, f, layers = 4096, 4096, 11008, 32
    mlp = lambda recompute: sum(v for k, v in saved_bytes(llama, "sdpa", recompute).items() if k.endswith("/mlp"))
    at = dim_values(llama)
    none, whole = (int(mlp(r).xreplace(at).xreplace({ACT: 2})) for r in ("none", "mlp"))
    assert whole == layers * n * d * 2 and none == layers * (n * d * 2 + 4 * n * f * 2)
    out = cli("memory", arch("llama"), "--recompute", "mlp,moe").output
    assert "recomputed layers (mlp): each checkpointed whole" in out and "this spec has no moe layer" in out
    report = symcost.memory(arch("llama"), recompute="mlp")
    assert report.numbers["backward_transient_bytes"] - symcost.memory(arch("llama")).numbers[
        "backward_transient_bytes"] == 4 * n * f * 2 + n * d * 2  # one MLP's own tensors, re-materialised


def test_memory_takes_a_run_s_parallel_settings_as_plan_does(cli):
    """--parallel gives the bytes per GPU of the most loaded rank, exactly plan's for the same run (memory's
    precision, optimizer, recomputation and attention passed on); on one GPU each part is memory's own, and the
    peak, which holds the gradients beside the activations, is memory's peak's bound (that takes the larger)."""
    kinds = ("weights_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes", "total_bytes",
             "transient_bytes", "peak_bytes")
    m = symcost.memory(arch("mixtral"), parallel={"gpus": 32, "tp": 2, "ep": 8, "pp": 2, "zero": 1},
                       recompute="selective")
    p = symcost.plan(arch("mixtral"), gpus=32, tp=2, ep=8, pp=2, zero=1, recompute="selective", attention="sdpa")
    assert m.per_gpu == {"gpus": 32, "stage": p.stage, "hardware": "h100-sxm", **{k: p.numbers[k] for k in kinds}}
    one = symcost.memory(arch("llama"), parallel={"gpus": 1})
    n = one.numbers
    assert [one.per_gpu[k] for k in kinds[:4]] == [n[k] for k in kinds[:4]]
    assert one.per_gpu["transient_bytes"] == n["backward_transient_bytes"]
    assert one.per_gpu["peak_bytes"] == n["peak_training_bytes"] + min(n["gradient_bytes"], n["activation_bytes"]
                                                                        + n["backward_transient_bytes"])
    assert not symcost.memory(arch("llama")).per_gpu
    out = cli("memory", arch("llama"), "--parallel", "gpus=8,zero=3", "--format", "json")
    data = json.loads(out.output)
    assert out.exit_code == 0 and not unknown_keys(data) and data["per_gpu"]["gpus"] == 8
    text = cli("memory", arch("llama"), "--parallel", "gpus=8,zero=3").output
    assert "per GPU on 8 x h100-sxm, the most loaded rank (only stage)" in text
    v3 = symcost.memory(arch("deepseek_v3"), parallel={"gpus": 64, "ep": 64}).notes  # its MTP: out here, in per GPU
    assert any(n.startswith("multi-token prediction") and "not in these figures" in n for n in v3)
    assert any(n.startswith("per GPU: multi-token prediction") and "trains on the rank holding" in n for n in v3)


@pytest.mark.parametrize("value, message", [("gpus=8,tp=x", "--parallel tp 'x': expected a whole number"),
                                            ("foo=1", "--parallel 'foo=1': expected KEY=VALUE with KEY one of gpus"),
                                            ("gpus=8,tp=3", "gpus 8 is not a multiple of tp x pp x cp = 3"),
                                            ("gpus=8,sequence_parallel=yes", "expected true or false")])
def test_bad_parallel_settings_are_one_line(cli, value, message):
    out = cli("memory", arch("llama"), "--parallel", value)
    assert out.exit_code == 2 and message in out.stderr and "Traceback" not in out.output


# -- every layer type and option, in small specs drawn by hypothesis -------------------------------

def token_spec(layers: str, **dims) -> str:
    dims = {"d": 4, "seq_len": 3, "batch": 2, **dims}
    return "name: zoo\ndims: {" + ", ".join(f"{k}: {v}" for k, v in dims.items()) + "}\nlayers:\n" + layers


ZOO = ("token types, relative bias", "qk norm and rotary", "full-width qk norm", "alibi", "mamba", "mlp options", "moe: shared experts, gate, capacity",
       "recurrent", "conv1d, batchnorm, activations", "untied head with bias, layernorm without",
       "image encoder, contrastive head", "image tokens in the stream")


@st.composite
def zoo(draw, name):
    """(spec text, attention, recompute): a layer type (or an option of one) no shipped
    architecture exercises, at drawn sizes."""
    d, n, b = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    heads = draw(st.sampled_from([h for h in range(1, 4) if d % h == 0]))
    act = draw(st.sampled_from(["relu", "relu2", "gelu", "gelu_tanh", "quick_gelu", "silu"]))
    gated, bias, kind = draw(st.booleans()), draw(st.booleans()), draw(st.sampled_from(["rnn", "lstm", "gru"]))
    embed = "  - embedding: {vocab: 7, dim: d}\n"
    shared = draw(st.integers(0, 2))
    capacity = st.sampled_from(["", ", capacity_factor: 1", ", capacity_factor: 5/4", ", capacity_factor: 2"])
    cases = {
        "token types, relative bias": embed + "  - token_type_embedding: {types: 2, dim: d}\n"
        f"  - relative_position_bias: {{buckets: 3, heads: {heads}}}\n"
        f"  - attention: {{dim: d, heads: {heads}, causal: {str(draw(st.booleans())).lower()}}}\n",
        "qk norm and rotary": embed + f"  - rotary: {{dim: 2}}\n  - attention: {{dim: d, heads: {heads}, "
        f"head_dim: 2, qk_norm: {draw(st.sampled_from(['true', 'full']))}, causal: true}}\n",
        "full-width qk norm": embed + f"  - attention: {{dim: d, heads: {heads}, qk_norm: full, "
        f"causal: {str(draw(st.booleans())).lower()}}}\n",
        "alibi": embed + f"  - alibi: {{heads: {heads}}}\n  - attention: {{dim: d, heads: {heads}, causal: true}}\n",
        "mamba": embed + f"  - mamba: {{dim: d, inner: {draw(st.integers(1, 6))}, state: {draw(st.integers(1, 4))}, "
        f"kernel: {draw(st.integers(1, 4))}, dt_rank: {draw(st.integers(1, 3))}, bias: {str(bias).lower()}, "
        f"conv_bias: {str(gated).lower()}, norms: {str(draw(st.booleans())).lower()}}}\n",
        "mlp options": embed + f"  - mlp: {{dim: d, hidden: {draw(st.integers(1, 5))}, activation: {act}, "
        f"gated: {str(gated).lower()}, bias: {str(bias).lower()}}}\n",
        "moe: shared experts, gate, capacity": embed + f"  - moe: {{dim: d, hidden: 3, experts: 3, top_k: 2, "
        f"shared_experts: {shared}, shared_gate: {str(shared > 0 and draw(st.booleans())).lower()}, "
        f"activation: {act}, gated: {str(gated).lower()}{draw(capacity)}}}\n",
        "recurrent": embed + f"  - {kind}: {{dim: d, hidden: {draw(st.integers(1, 4))}, num_layers: "
        f"{draw(st.integers(1, 2))}, bidirectional: {str(draw(st.booleans())).lower()}, bias: {str(bias).lower()}}}\n",
        "conv1d, batchnorm, activations": f"  - conv1d: {{dim: d, out: 3, kernel: {draw(st.integers(1, n))}}}\n"
        "  - batchnorm: {dim: 3}\n"
        f"  - activation: {{function: {draw(st.sampled_from(['relu', 'gelu', 'quick_gelu', 'silu', 'tanh', 'sigmoid']))}}}\n"
        "  - linear: {dim: 3, out: 2, rank: 1}\n",
        "untied head with bias, layernorm without": embed + "  - layernorm: {dim: d, bias: false}\n"
        "  - lm_head: {dim: d, vocab: 7, bias: true}\n",
        "image encoder, contrastive head": image_and_text(draw, heads, act),
        "image tokens in the stream": image_tokens(draw, heads, act),
    }
    # batch norm in training needs more than one value per channel
    extra = 9 if name == "image tokens in the stream" else 0  # room for up to 3 x 3 image tokens
    spec = token_spec(cases[name], d=d, seq_len=n + extra, batch=b + 1 if name.startswith("conv1d") else b)
    return spec, draw(st.sampled_from(["eager", "sdpa"])), draw(st.sampled_from(["none", "selective", "full"]))


def image_and_text(draw, heads, act) -> str:
    """CLIP's shape: an image encoder (its output pooled, as a view or projected), a text stream
    whose blocks may cross-attend to it, and the contrastive head reading both."""
    patch = draw(st.sampled_from([1, 2]))
    project = draw(st.booleans())  # else the pooled class token is the image side, a view of the stream
    width = draw(st.integers(1, 5)) if project else "d"
    image = ("  - encoder: 4\n    image: true\n    layers:\n"
             f"      - patch_embedding: {{channels: 2, dim: {width}, patch: {patch}}}\n"
             f"      - class_token: {{dim: {width}}}\n"
             f"      - mlp: {{dim: {width}, hidden: 3, activation: {act}}}\n"
             f"      - pool_tokens: {{mode: {draw(st.sampled_from(['first', 'mean']))}}}\n"
             + (f"      - linear: {{dim: {width}, out: d}}\n" if project else ""))
    cross = (f"      - cross_attention: {{dim: d, heads: {heads}}}\n" if draw(st.booleans()) else "")
    return (image + "  - embedding: {vocab: 7, dim: d}\n  - repeat: 2\n    layers:\n"
            f"      - attention: {{dim: d, heads: {heads}, causal: true}}\n{cross}"
            f"      - mlp: {{dim: d, hidden: 3, activation: {act}}}\n"
            f"  - pool_tokens: {{mode: {draw(st.sampled_from(['first', 'mean']))}}}\n  - contrastive: {{dim: d}}\n")


def image_tokens(draw, heads, act) -> str:
    """Gemma 3's shape: an image encoder whose patch grid is averaged (pool_grid) and projected,
    its vectors put in place of the first tokens of the text stream (insert_encoder)."""
    patch, side = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kernel, width = draw(st.integers(1, side)), draw(st.integers(1, 4))
    image = ("  - encoder: " + str(patch * side) + "\n    image: true\n    layers:\n"
             f"      - patch_embedding: {{channels: 2, dim: {width}, patch: {patch}}}\n"
             f"      - mlp: {{dim: {width}, hidden: 3, activation: {act}}}\n"
             f"      - pool_grid: {{kernel: {kernel}}}\n      - rmsnorm: {{dim: {width}}}\n"
             f"      - linear: {{dim: {width}, out: d}}\n")
    return (image + "  - embedding: {vocab: 7, dim: d}\n  - insert_encoder: {dim: d}\n  - repeat: 2\n    layers:\n"
            f"      - attention: {{dim: d, heads: {heads}, causal: true}}\n"
            f"      - mlp: {{dim: d, hidden: 3, activation: {act}}}\n")


@st.composite
def image_zoo(draw):
    pools = [("pool: {function: avg, kernel: 2}", lambda n: n // 2),
             ("pool: {function: max, kernel: 2, stride: 1}", lambda n: n - 1),
             ("adaptive_pool: {function: max, size: 2}", lambda n: 2),
             ("adaptive_pool: {function: avg, size: 2}", lambda n: 2),
             ("adaptive_pool: {function: avg, size: 1}", lambda n: 1)]
    pool, side = draw(st.sampled_from(pools))
    size = draw(st.integers(2, 5))
    act = draw(st.sampled_from(["relu", "gelu", "tanh"]))
    layers = (f"  - conv2d: {{dim: 2, out: 3, kernel: 1}}\n  - activation: {{function: {act}}}\n"
              f"  - repeat: 2\n    layers:\n      - conv2d: {{dim: 3, out: 3, kernel: 1}}\n"
              f"      - activation: {{function: {act}}}\n"
              f"  - {pool}\n  - flatten: {{}}\n  - linear: {{dim: {3 * side(size) ** 2}, out: 2}}\n")
    if draw(st.booleans()):  # the vision transformer's front end instead
        layers = (f"  - patch_embedding: {{channels: 2, dim: 4, patch: 2}}\n  - class_token: {{dim: 4}}\n"
                  f"  - pool_tokens: {{mode: {draw(st.sampled_from(['first', 'mean']))}}}\n"
                  "  - linear: {dim: 4, out: 2}\n")
    return (f"name: zoo\ndims: {{image_size: {size}, batch: {draw(st.integers(2, 3))}}}\nlayers:\n{layers}",
            "eager", draw(st.sampled_from(["none", "full"])))


@pytest.mark.parametrize("name", [*ZOO, "image"])
def test_every_layer_type_saves_what_its_rule_says(name):
    @settings(max_examples=15, deadline=None, derandomize=True)
    @given(image_zoo() if name == "image" else zoo(name), st.sampled_from(["fp32", "bf16", "fp16"]))
    def check(case, dtype):
        text, attention, recompute = case
        d = symcost.derive(symcost.loads(text))
        values = dim_values(d, {})
        measured = measure_saved(d, values, dtype=dtype, attention=attention, recompute=recompute)
        width = BYTES[dtype]
        formulas = {p: int(e.xreplace(values).xreplace({ACT: width}))
                    for p, e in saved_bytes(d, attention, recompute).items()}
        assert {p: v for p, v in formulas.items() if v} == measured.per_path, text

    check()


# -- the command ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SIZES))
@pytest.mark.parametrize("attention", [pytest.param("eager", marks=pytest.mark.slow), "sdpa"])  # the rules: above
def test_verify_memory_exits_0_on_every_architecture(cli, name, attention):
    sets = [arg for k, v in SIZES[name].items() for arg in ("--set", f"{k}={v}")]
    for recompute in ("none", "selective", "full"):
        if (name, attention, recompute) not in CASES:  # refused: test_dropout.py
            continue
        for dtype in ("fp32", "bf16"):
            out = cli("verify", arch(name), "--memory", *sets, "--attention", attention, "--recompute", recompute,
                      "--dtype", dtype)
            assert out.exit_code == 0, out.output
            assert "MATCH" in out.output


def test_verify_memory_exits_1_on_a_wrong_rule(cli, monkeypatch):
    from symcost.components import layernorm

    monkeypatch.setattr(layernorm.LayerNorm, "saved", lambda self, ctx: symcost.cost.Cost())
    out = cli("verify", arch("transformer"), "--memory", "--set", "n_layers=1", "--set", "seq_len=4")
    assert out.exit_code == 1 and "DIFFERS" in out.output


def test_verify_memory_json_and_refusals(cli):
    import json

    out = cli("verify", arch("llama"), "--memory", "--set", "n_layers=1", "--set", "seq_len=4", "--set", "d_model=256",
              "--set", "d_ff=512", "--format", "json")
    data = json.loads(out.output)
    assert data["match"] and data["saved_bytes"]["symbolic"] == data["saved_bytes"]["measured"] > 0
    assert data["unattributed_bytes"] == {"saved_bytes": 0}
    for args in (["--memory", "--backward"], ["--memory", "--device", "meta"], ["--recompute", "full"]):
        bad = cli("verify", arch("llama"), *args)
        assert bad.exit_code == 2 and "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1


# -- the peak, an estimate, against PyTorch's MemTracker ---------------------------------------------

@pytest.mark.parametrize("name,sizes", [
    ("llama", dict(d_model=64, n_heads=4, n_kv_heads=2, n_layers=2, d_ff=96, vocab=500, seq_len=32, batch=2)),
    ("mixtral", dict(d_model=64, n_heads=4, n_kv_heads=2, n_layers=2, d_ff=96, vocab=500, seq_len=32, batch=2,
                     n_experts=4, top_k=2)),
    ("transformer", dict(d_model=64, n_heads=4, n_layers=2, vocab=500, seq_len=32, max_pos=64, batch=2)),
])
@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_peak_training_estimate_within_0_1_percent_of_memtracker(name, sizes, dtype):
    """An estimate, so a tolerance: what it leaves out is allocator-level (Adam's step counters,
    the token ids counted once as input and once as saved)."""
    from symcost.memory import memory_metrics
    from symcost.precision import Precision
    from symcost.measure.reference import DTYPES, build, example_input

    d = symcost.derive(symcost.load(arch(name)))
    values = dim_values(d, sizes)
    torch.manual_seed(0)
    model = build(d, values, attention="sdpa").to(DTYPES[dtype]).train()
    measured = tracked_peak(model, example_input(d, values, "cpu", dtype=DTYPES[dtype]))
    precision = Precision(dtype, optimizer=dtype, master=False)  # torch's Adam keeps its moments in the weights' dtype
    predicted = int(memory_metrics(d, precision, "adam", "none", "sdpa")["peak_training_bytes"].xreplace(values))
    assert abs(predicted - measured) <= 0.001 * measured, (predicted, measured)


def test_memory_json_keeps_its_shape_and_lists_activations_by_component(cli):
    import json

    data = json.loads(cli("memory", arch("deepseek_v3"), "--format", "json").output)
    assert {"activation_bytes", "peak_training_bytes", "peak_inference_bytes", "train_state_bytes"} <= set(data["bytes"])
    assert set(data["bytes"]) == set(data["formulas"])
    parts = data["activations_by_component"]
    assert sum(p["bytes"] for p in parts) == data["bytes"]["activation_bytes"]
    assert {p["kind"] for p in parts} >= {"mla", "moe", "mlp", "lm_head"}


def test_verify_memory_refuses_a_run_that_would_not_fit(cli):
    out = cli("verify", arch("llama"), "--memory")  # full size: 69 GiB on cpu
    assert out.exit_code == 2 and "more than 1 GiB" in out.stderr and "--set" in out.stderr
    assert out.stderr.count("\n") == 1


def test_approx_keeps_korthikanti_beside_the_exact_bytes(cli):
    import json

    data = json.loads(cli("approx", arch("transformer"), "--format", "json").output)
    rows = {e["name"]: e for e in (data["estimates"] if isinstance(data, dict) else data)}
    for name, published in (("korthikanti", 34 + 5 * 12 * 1024 / 768), ("korthikanti_selective", 34)):
        row = rows[name]
        assert row["metric"] == "activation_bytes" and "Korthikanti" in row["source"]
        assert row["estimate"] == round(12 * 1024 * 768 * published)  # eq. 1 at GPT-2 small's sizes, batch 1
        exact = symcost.memory(arch("transformer"), precision="bf16", attention="eager",
                               recompute="none" if name == "korthikanti" else "selective").numbers["activation_bytes"]
        assert row["exact"] == exact != row["estimate"]


def test_memory_names_the_sizes_it_is_at(cli):
    """Before: `--set d_model=8192` printed "llama-2-7b — memory in bytes" and nothing of the sizes it
    was at; the report names every dim's value (derived ones too), in text and JSON."""
    out = cli("memory", arch("llama"), "--set", "d_model=8192")
    assert out.exit_code == 0 and "dims: d_model=8192, n_layers=32" in out.output and "d_head=256" in out.output
    data = json.loads(cli("memory", arch("llama"), "--set", "d_model=8192", "--format", "json").stdout)
    assert data["dims"]["d_model"] == 8192 and data["dims"]["d_head"] == 256
