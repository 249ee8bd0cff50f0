"""Mamba-2's SSD layer: parameters and FLOPs equal transformers' Mamba2ForCausalLM (its torch
path) and the reference build's at drawn sizes, with sequences cut into chunks evenly or not;
the bytes saved for backward equal PyTorch's; sizes the counter counts otherwise are refused.
Bamba's, Falcon-H1's and Zamba2's caches after a prompt and a decode step equal transformers'. (The reference
build's decode step and state: test_memory_inference.py; the shipped spec: test_verify.py.)"""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import block_spec
from published import BAMBA_9B, MAMBA_CODESTRAL
from symcost.errors import SpecError
from symcost.hf import import_config

T = pytest.importorskip("transformers")


def spec(d, inner, heads, state, groups, kernel, chunk, n, b, bias=False, conv_bias=True, **more):
    fields = {"dim": d, "inner": inner, "heads": heads, "state": state, "groups": groups, "kernel": kernel,
              "chunk": chunk, "bias": bias, "conv_bias": conv_bias, **more}
    return block_spec(d, n, b, "mamba2: {" + ", ".join(f"{k}: {str(v).lower()}" for k, v in fields.items()) + "}")


@st.composite
def layouts(draw):
    """heads x head_dim = inner, groups dividing heads."""
    heads, head_dim = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    groups = draw(st.sampled_from([g for g in range(1, heads + 1) if heads % g == 0]))
    return heads, head_dim, groups


@settings(max_examples=20, deadline=None, derandomize=True)
@given(layout=layouts(), d=st.integers(1, 8), state=st.integers(2, 5), kernel=st.integers(1, 4),
       chunk=st.integers(2, 6), n=st.integers(1, 14), b=st.integers(1, 3), bias=st.booleans(), conv_bias=st.booleans(),
       out_bias=st.booleans(), norm=st.booleans())
def test_counts_and_saved_bytes_equal_pytorch_at_drawn_sizes(layout, d, state, kernel, chunk, n, b, bias, conv_bias,
                                                              out_bias, norm):
    """With the gated norm or the gate alone (Falcon-H1's), out_proj's bias apart from in_proj's."""
    heads, head_dim, groups = layout
    inner = heads * head_dim
    s = spec(d, inner, heads, state, groups, kernel, chunk, n, b, bias, conv_bias, out_bias=out_bias, norm=norm)
    report = symcost.verify(s, backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]
    row = next(r for r in report.rows if r.kind == "mamba2")
    conv = inner + 2 * groups * state
    # in_proj (z, x, B, C, dt), the depthwise conv, dt_bias, A_log and D, the gated norm, out_proj
    assert row.symbolic["params"] == (d * (inner + conv + heads) + (inner + conv + heads) * bias + conv * kernel
                                      + conv * conv_bias + 3 * heads + inner * norm + inner * d + d * out_bias)
    for dtype in ("fp32", "bf16"):
        assert symcost.verify_memory(s, dtype=dtype).match


@settings(max_examples=12, deadline=None, derandomize=True)
@given(layout=layouts(), two=st.booleans(), state=st.integers(2, 5), kernel=st.integers(1, 4), chunk=st.integers(2, 6),
       layers=st.integers(1, 2), vocab=st.integers(2, 30), n=st.integers(1, 14), tied=st.booleans(), bias=st.booleans())
def test_equal_to_transformers_at_drawn_sizes(layout, two, state, kernel, chunk, layers, vocab, n, tied, bias):
    """Imported from a Mamba2Config and counted against Mamba2ForCausalLM on meta, its torch
    path (whose five einsums FlopCounterMode counts), per layer type too."""
    from symcost.measure.verify import verify_hf

    heads, head_dim, groups = layout
    expand = 2 if two and heads * head_dim % 2 == 0 else 1
    config = T.Mamba2Config(hidden_size=heads * head_dim // expand, expand=expand, num_heads=heads, head_dim=head_dim,
                            n_groups=groups, state_size=state, conv_kernel=kernel, chunk_size=chunk,
                            num_hidden_layers=layers, vocab_size=vocab, tie_word_embeddings=tied,
                            use_bias=bias).to_dict()
    report = verify_hf(symcost.loads(import_config(config)), config, {"seq_len": n, "batch": 2})
    assert report.params[0] == report.params[1]
    assert report.match, (report.forward, report.explained)
    assert report.kinds_agree, report.by_kind


@settings(max_examples=8, deadline=None, derandomize=True)
@given(layers=st.integers(1, 5), data=st.data(), heads=st.sampled_from([1, 2, 4]), chunk=st.integers(2, 6),
       n=st.integers(1, 12), tied=st.booleans())
def test_bamba_equal_to_transformers_at_drawn_layer_patterns(layers, data, heads, chunk, n, tied):
    """Bamba's Mamba-2 and attention layers, wherever attn_layer_indices puts the attention: each
    run of like layers a repeat; counted against BambaForCausalLM on the CPU (its masks read values)."""
    from symcost.measure.verify import verify_hf

    attention = sorted(data.draw(st.sets(st.integers(0, layers - 1))))
    config = T.BambaConfig(hidden_size=16, num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=1,
                           intermediate_size=24, vocab_size=40, attn_layer_indices=attention, mamba_n_heads=4,
                           mamba_d_state=3, mamba_chunk_size=chunk, mamba_n_groups=2,
                           tie_word_embeddings=tied).to_dict()
    report = verify_hf(symcost.loads(import_config(config)), config, {"seq_len": n, "batch": 2})
    assert report.match and report.params[0] == report.params[1], (report.params, report.forward)
    assert report.kinds_agree, report.by_kind


@settings(max_examples=8, deadline=None, derandomize=True)
@given(types=st.lists(st.sampled_from(["mamba", "attention", "linear_attention", "full_attention"]), min_size=1,
                      max_size=5), experts=st.sampled_from([0, 1, 3]), rope=st.sampled_from([None, "rope", "nope"]),
       n=st.integers(1, 12))
def test_granite_4_equal_to_transformers_at_drawn_layer_types(types, experts, rope, n):
    """Granite 4.0's layers as layer_types names them (in either vocabulary), with experts and a
    shared MLP or the shared MLP alone, rotary or none; against GraniteMoeHybridForCausalLM on the CPU."""
    from symcost.measure.verify import verify_hf

    config = T.GraniteMoeHybridConfig(hidden_size=16, num_hidden_layers=len(types), num_attention_heads=2,
                                      num_key_value_heads=1, intermediate_size=12, shared_intermediate_size=10,
                                      vocab_size=40, num_local_experts=experts, num_experts_per_tok=1,
                                      layer_types=types, position_embedding_type=rope, mamba_n_heads=4,
                                      mamba_d_state=3, mamba_chunk_size=4, mamba_n_groups=1,
                                      residual_multiplier=0.5).to_dict()
    config["layer_types"] = types  # as a file gives them (transformers renames the first files' names)
    spec = import_config(config)
    assert "Granite's scalar multipliers" in spec
    report = verify_hf(symcost.loads(spec), config, {"seq_len": n, "batch": 2})
    assert report.match and report.params[0] == report.params[1], (report.params, report.forward)


def test_the_shipped_spec_is_mamba2_130m_as_transformers_builds_it():
    import torch

    from symcost.measure.verify import verify_hf

    config = T.Mamba2Config(hidden_size=768, num_hidden_layers=24, num_heads=24, head_dim=64, n_groups=1,
                            state_size=128, vocab_size=50288, tie_word_embeddings=True)
    with torch.device("meta"):
        model = T.Mamba2ForCausalLM(config)
    shipped = symcost.load("architectures/mamba2.yaml")
    assert symcost.evaluate(shipped).total["params"] == sum(p.numel() for p in model.parameters()) == 128_989_632
    report = verify_hf(shipped, config.to_dict(), {"seq_len": 300, "batch": 1})  # two chunks, the second cut
    assert report.match, (report.forward, report.explained)


def test_the_carry_between_chunks_is_quadratic_in_their_number():
    """The torch path's carry runs over every pair of chunk starts: in whole chunks c, forward
    FLOPs are quadratic in c (a constant, positive second difference), not linear."""
    d = symcost.derive(symcost.load("architectures/mamba2.yaml"))
    f = lambda c: symcost.evaluate(d, seq_len=256 * c).total["forward"]
    assert f(3) - 2 * f(2) + f(1) == f(4) - 2 * f(3) + f(2) > 0


@pytest.mark.parametrize("field, value", [("state", 1), ("chunk", 1)])
def test_a_contracted_size_of_1_is_refused_where_it_is_written(field, value):
    text = ("name: m\ndims: {seq_len: 8, batch: 1}\nlayers:\n  - embedding: {vocab: 7, dim: 4}\n"
            f"  - mamba2: {{dim: 4, inner: 8, heads: 2, state: 4, chunk: 4, {field}: {value}}}\n")
    text = text.replace(f"{field}: 4, ", "")
    with pytest.raises(SpecError, match=rf"<spec>:5:\d+: layers\.1\.mamba2\.{field}: must be an integer >= 2 "
                                        r"\(at 1 torch\.einsum contracts it elementwise"):
        symcost.loads(text)


@pytest.mark.parametrize("change, fragment", [
    ({"state_size": 1}, "state_size: the config's sizes do not make a valid model: .*state = 1; must be an integer "
                        ">= 2 (at 1 torch.einsum contracts it elementwise"),
    ({"chunk_size": 1}, "chunk_size: .*chunk = 1; must be an integer >= 2"),
    ({"num_heads": 96}, "num_heads: 96 heads of head_dim 64 disagree with expand x hidden_size = 8192"),
    ({"n_groups": 3}, "3 groups do not divide 128 heads (from head_dim, hidden_size, n_groups)"),
    ({"hidden_act": "gelu"}, "hidden_act: 'gelu' is not supported"),
])
def test_import_refuses_configs_it_cannot_count(change, fragment):
    config = T.Mamba2Config(**MAMBA_CODESTRAL).to_dict() | change
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        symcost.loads(import_config(config))


@pytest.mark.parametrize("change, fragment", [
    ({"attn_layer_indices": [1, 32]}, "attn_layer_indices: expected layer indices from 0 to 31"),
    ({"attn_layer_indices": "9"}, "attn_layer_indices: expected layer indices from 0 to 31, got '9'"),
    ({"mamba_d_head": 48}, "mamba_n_heads: 128 heads of mamba_d_head 48 disagree with mamba_expand x hidden_size"),
    ({"mamba_chunk_size": 1}, "mamba_chunk_size: .*chunk = 1; must be an integer >= 2"),
])
def test_bamba_import_refuses_configs_it_cannot_count(change, fragment):
    with pytest.raises(SpecError, match=fragment):
        symcost.loads(import_config(T.BambaConfig(**BAMBA_9B).to_dict() | change))


def test_granite_4_files_switch_ignored():
    """Granite 4.0's published files carry IBM's normalization_function, which transformers never reads."""
    from symcost.hf import convert

    config = T.GraniteMoeHybridConfig(num_hidden_layers=2).to_dict() | {"normalization_function": "rmsnorm"}
    assert "normalization_function" in convert(config).ignored


def test_granite_4_refuses_layer_types_it_cannot_read():
    config = T.GraniteMoeHybridConfig(num_hidden_layers=3).to_dict() | {"layer_types": ["mamba", "moe", "mamba"]}
    with pytest.raises(SpecError, match="layer_types: expected 3 layer types, each one of linear_attention, mamba, "
                                        "full_attention, attention; got"):
        import_config(config)
    with pytest.raises(SpecError, match="layer_types: expected 3 layer types"):
        import_config(config | {"layer_types": ["mamba"]})


def test_heads_and_groups_must_divide():
    s = spec(4, 6, 4, 3, 1, 2, 4, 8, 1)
    with pytest.raises(SpecError, match="4 heads do not divide inner 6"):
        symcost.evaluate(s)
    with pytest.raises(SpecError, match="3 groups do not divide 4 heads"):
        symcost.evaluate(spec(4, 8, 4, 3, 3, 2, 4, 8, 1))


@pytest.mark.slow  # a comparison with transformers: in the full suite
@settings(max_examples=8, deadline=None, derandomize=True)
@given(pattern=st.text(alphabet="M*-E", min_size=1, max_size=6), n=st.integers(1, 12), listed=st.booleans(),
       latent=st.sampled_from([None, 6]))
def test_nemotron_h_equal_to_transformers_at_drawn_patterns(pattern, n, listed, latent):
    """Nemotron-H's blocks (a Mamba-2 layer, attention without positions, an ungated MLP of squared ReLUs, or
    Nemotron 3's MoE of such experts, at a latent width or not, beside a shared one; each on its own RMSNorm
    and residual) wherever hybrid_override_pattern, or the layers_block_type list transformers writes from it,
    puts them: parameters, active parameters and forward FLOPs against NemotronHForCausalLM (its causal mask
    written out, on meta), per layer type too."""
    from symcost.measure.verify import verify_hf

    config = T.NemotronHConfig(hidden_size=16, hybrid_override_pattern=pattern, num_attention_heads=2,
                               num_key_value_heads=1, head_dim=8, intermediate_size=24, mamba_num_heads=4,
                               mamba_head_dim=6, n_groups=2, ssm_state_size=3, chunk_size=5, conv_kernel=3,
                               vocab_size=40, n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=5,
                               moe_shared_expert_intermediate_size=7, moe_latent_size=latent).to_dict()
    if not listed:  # as the published files give it
        config = {k: v for k, v in config.items() if k != "layers_block_type"} | {"hybrid_override_pattern": pattern}
    report = verify_hf(symcost.loads(import_config(config)), config, {"seq_len": n, "batch": 2})
    assert report.match and report.params[0] == report.params[1], (report.params, report.forward)
    assert report.kinds_agree, report.by_kind


@pytest.mark.parametrize("change, fragment", [
    ({"hybrid_override_pattern": "M-ME*", "mlp_bias": True}, "mlp_bias: true with MoE blocks is not written by the "
                                                             "importer"),
    ({"hybrid_override_pattern": "M-X"}, "hybrid_override_pattern: expected a string of M, *, -, E"),
    ({"hybrid_override_pattern": "M-M", "num_hidden_layers": 4}, "num_hidden_layers: 4 disagrees with the 3 blocks"),
    ({"layers_block_type": ["mamba", "conv"]}, "layers_block_type: expected a list of block types"),
])
def test_nemotron_h_refusals(change, fragment):
    config = {"model_type": "nemotron_h", "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 24,
              "vocab_size": 40, "hybrid_override_pattern": "M-M*-"} | change
    with pytest.raises(SpecError, match=re.escape(fragment)):
        import_config(config, "config.json")


def test_bamba_prefill_step_and_caches_equal_transformers_on_the_cpu():
    """A Mamba-2 layer and an attention layer through BambaForCausalLM on the CPU: the cache keeps k conv inputs
    (zeros before the first) and the state, and a decode step convolves the k kept and the new one, as the
    formulas say."""
    from conftest import assert_prefill_and_step_match
    from symcost.measure.hf import build

    config = T.BambaConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                           intermediate_size=24, vocab_size=40, attn_layer_indices=[1], mamba_n_heads=4,
                           mamba_d_state=3, mamba_chunk_size=4, mamba_n_groups=2).to_dict()
    model = build(config, "cpu").eval().requires_grad_(False)
    assert_prefill_and_step_match(model, symcost.loads(import_config(config)), 2, 7, 40)


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=6, deadline=None, derandomize=True)
@given(norm=st.booleans(), before=st.booleans(), width=st.sampled_from([None, 24, 32]), biases=st.tuples(*[
    st.booleans()] * 4), heads=st.sampled_from([1, 2]), layers=st.integers(1, 2), n=st.integers(4, 9),
    b=st.integers(1, 2))
def test_falcon_h1_equal_to_transformers_at_drawn_sizes(norm, before, width, biases, heads, layers, n, b):
    """Falcon-H1's layers (a Mamba-2 mixer beside attention on one norm, then a gated MLP), its mixer's gated
    norm on or off, its width given or expand x hidden_size, every bias switch: parameters and forward FLOPs
    against FalconH1ForCausalLM on meta (its causal mask written out), per layer type too; then on the CPU a
    prompt of n tokens and a decode step: FlopCounterMode's counts and the caches equal the formulas."""
    from conftest import assert_prefill_and_step_match
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    proj, projectors, attention, mlp = biases
    config = T.FalconH1Config(hidden_size=16, num_hidden_layers=layers, num_attention_heads=2 * heads,
                              num_key_value_heads=heads, head_dim=8, intermediate_size=24, vocab_size=40,
                              mamba_d_ssm=width, mamba_n_heads=4, mamba_d_state=3, mamba_n_groups=2,
                              mamba_chunk_size=4, mamba_rms_norm=norm, mamba_norm_before_gate=before,
                              mamba_proj_bias=proj, projectors_bias=projectors, attention_bias=attention,
                              mlp_bias=mlp, key_multiplier=0.5, ssm_multipliers=[0.5, 1.0, 2.0, 1.0, 1.0]).to_dict()
    s = symcost.loads(import_config(config, "falcon_h1.json"))
    report = verify_hf(s, config, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1] and report.kinds_agree, report.by_kind
    assert_prefill_and_step_match(build(config, "cpu").eval().requires_grad_(False), s, b, n, 40)



@pytest.mark.parametrize("kv", ["absent", None])
def test_falcon_h1_key_value_heads_as_its_config_class_reads_them(kv):
    """A file without num_key_value_heads gets FalconH1Config's 8; a null one, one a query head: the parameters
    equal the model transformers builds from the same file."""
    from symcost.measure.hf import parameters

    config = T.FalconH1Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=16, head_dim=4,
                              intermediate_size=24, vocab_size=40, mamba_d_ssm=32, mamba_n_heads=4,
                              mamba_d_state=3).to_dict()
    if kv == "absent":
        del config["num_key_value_heads"]
    else:
        config["num_key_value_heads"] = kv
    spec = symcost.loads(import_config(config, "falcon_h1.json"))
    assert symcost.evaluate(spec).total["params"] == parameters(config).params


def zamba2(types, blocks=2, adapters=True, rope=True, rank=3, bias=False, **more) -> dict:
    return T.Zamba2Config(hidden_size=16, num_hidden_layers=len(types), num_attention_heads=4, vocab_size=40,
                          intermediate_size=24, layers_block_type=types, num_mem_blocks=blocks, adapter_rank=rank,
                          n_mamba_heads=4, mamba_d_state=3, mamba_ngroups=2, chunk_size=4, add_bias_linear=bias,
                          use_shared_attention_adapter=adapters, use_mem_rope=rope, **more).to_dict()


def test_zamba2_prefill_step_and_caches_equal_transformers_on_the_cpu():
    """Zamba2's Mamba-2 layers and its hybrid layers (a shared block of two in turn, with its per-use adapters and
    rotary, then the layer's own linear and Mamba-2) through Zamba2ForCausalLM on the CPU: after a prompt each
    hybrid layer keeps its own keys and values beside its mixer's state, and a decode step costs what the
    formulas say."""
    from conftest import assert_prefill_and_step_match
    from symcost.measure.hf import build

    config = zamba2(["mamba", "hybrid", "mamba", "hybrid", "hybrid"])
    model = build(config, "cpu").eval().requires_grad_(False)
    assert_prefill_and_step_match(model, symcost.loads(import_config(config, "zamba2.json")), 2, 7, 40)


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=6, deadline=None, derandomize=True)
@given(types=st.lists(st.sampled_from(["mamba", "hybrid"]), min_size=1, max_size=5).filter(lambda t: "hybrid" in t),
       blocks=st.integers(1, 3), adapters=st.booleans(), rope=st.booleans(), rank=st.integers(1, 4),
       bias=st.booleans(), n=st.integers(4, 9), b=st.integers(1, 2))
def test_zamba2_equal_to_transformers_at_drawn_sizes(types, blocks, adapters, rope, rank, bias, n, b):
    """Zamba2 at drawn layer patterns, shared blocks, adapters, rotary and biases: parameters (each shared block's
    weights once, each use's adapters and linear apart) and forward FLOPs against Zamba2ForCausalLM on meta (its
    causal mask written out), per layer type too; then on the CPU a prompt of n tokens and a decode step:
    FlopCounterMode's counts and the caches equal the formulas."""
    from conftest import assert_prefill_and_step_match
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    config = zamba2(types, blocks, adapters, rope, rank, bias)
    s = symcost.loads(import_config(config, "zamba2.json"))
    report = verify_hf(s, config, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1] and report.kinds_agree, report.by_kind
    assert_prefill_and_step_match(build(config, "cpu").eval().requires_grad_(False), s, b, n, 40)


@pytest.mark.parametrize("change, fragment", [
    ({"layers_block_type": ["mamba", "attention"]}, "layers_block_type: expected a list of layer types, each one of "
                                                    "linear_attention, mamba, hybrid"),
    ({"layers_block_type": []}, "layers_block_type: expected a list of layer types"),
    ({"num_hidden_layers": 4}, "num_hidden_layers: 4 disagrees with layers_block_type's 2 layers"),
    ({"n_mamba_heads": 5}, "n_mamba_heads: 5 heads do not divide mamba_expand x hidden_size = 32"),
    ({"num_attention_heads": 3}, "num_attention_heads: 3 heads do not divide the shared attention's width"),
    ({"num_key_value_heads": 2}, "num_key_value_heads: 2 key/value heads: the k and v adapters write 2 x hidden_size"),
    ({"hidden_act": "laplace"}, "hidden_act: 'laplace' is not supported"),
])
def test_zamba2_refusals(change, fragment):
    with pytest.raises(SpecError, match=re.escape(fragment)):
        import_config(zamba2(["mamba", "hybrid"]) | change, "zamba2.json")
