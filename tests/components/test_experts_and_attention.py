"""Mixture of experts, MLA, sliding windows, hybrids, encoder-decoder and low-rank layers:
published totals computed here by hand, the shape of the formulas, and each new option
verified against PyTorch."""

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch, block_spec
from symcost import symbols
from symcost.evaluate import dim_values


def totals(name, **sizes):
    return symcost.evaluate(symcost.derive(symcost.load(arch(name))), sizes).total


def test_mixtral_total_and_active():
    # mistralai/Mixtral-8x7B-v0.1: d 4096, 32 layers, 32 heads / 8 kv heads (head 128), experts 8 x SwiGLU 14336, top-2
    d, L, V, ff, E, k = 4096, 32, 32000, 14336, 8, 2
    attention = 2 * d * d + 2 * d * (8 * 128)  # q and o: d x d; k and v: d x 1024 -> 41,943,040
    expert = 3 * d * ff  # gate, up, down: 176,160,768
    router = d * E  # 32,768
    norms = 2 * d
    shared = 2 * V * d + d  # embedding, untied head, final norm
    assert totals("mixtral")["params"] == L * (attention + router + E * expert + norms) + shared == 46_702_792_704
    assert totals("mixtral")["active_params"] == L * (attention + router + k * expert + norms) + shared == 12_879_925_248


def test_deepseek_v3_total_and_active():
    # deepseek-ai/DeepSeek-V3 config.json (main model, no MTP module)
    d, V, heads, qr, kvr, nope, rope, vd = 7168, 129280, 128, 1536, 512, 128, 64, 128
    mla = (d * qr + qr + qr * heads * (nope + rope)  # q_a_proj, q_a_layernorm, q_b_proj
           + d * (kvr + rope) + kvr + kvr * heads * (nope + vd)  # kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj
           + heads * vd * d)  # o_proj: 187,107,328
    dense_mlp = 3 * d * 18432
    expert = 3 * d * 2048  # 44,040,192
    router = 256 * d  # the score-correction bias is a buffer
    norms = 2 * d
    dense_layer = mla + dense_mlp + norms
    moe_layer_total = mla + router + 256 * expert + expert + norms  # 256 routed + 1 shared
    moe_layer_active = mla + router + 8 * expert + expert + norms
    outside = 2 * V * d + d  # embedding, untied head, final norm
    t = totals("deepseek_v3")
    assert t["params"] == 3 * dense_layer + 58 * moe_layer_total + outside == 671_026_404_352
    assert t["active_params"] == 3 * dense_layer + 58 * moe_layer_active + outside == 37_552_282_624


def test_gpt_oss_120b_matches_its_model_card_by_hand():
    # OpenAI 2025, gpt-oss model card, Table 1: 116.83B total, 5.13B active (embedding table left out);
    # its per-component split: attention 0.96B, MLP 114.71B, embedding + unembedding 1.16B
    d, L, heads, kv, hd, ff, E, k, V = 2880, 36, 64, 8, 64, 2880, 128, 4, 201_088
    attention = (d * heads * hd + heads * hd) + 2 * (d * kv * hd + kv * hd) + (heads * hd * d + d) + heads  # + sinks
    expert = (d * 2 * ff + 2 * ff) + (ff * d + d)  # gate and up (fused in the release), down, with biases
    router = d * E + E
    t = totals("gpt_oss")
    assert round(L * attention / 1e9, 2) == 0.96 and round(L * (router + E * expert) / 1e9, 2) == 114.71
    assert round(2 * V * d / 1e9, 2) == 1.16
    assert t["params"] == L * (attention + router + E * expert + 2 * d) + d + 2 * V * d == 116_829_156_672
    assert t["active_params"] == t["params"] - L * (E - k) * expert == 5_711_982_912
    assert round(t["params"] / 1e9, 2) == 116.83 and round((t["active_params"] - V * d) / 1e9, 2) == 5.13


def test_gemma2_matches_the_released_count():
    # google/gemma-2-2b: 26 layers of GQA attention (8 x 256 queries, 4 x 256 keys/values) and GeGLU 9216
    d, L, V, ff = 2304, 26, 256000, 9216
    layer = d * 8 * 256 * 2 + d * 4 * 256 * 2 + 3 * d * ff + 4 * d  # q, o; k, v; mlp; four norms
    assert totals("gemma2")["params"] == V * d + L * layer + d == 2_614_341_888  # tied head


def test_mixtral_formulas_in_experts():
    derivation = symcost.derive(symcost.load(arch("mixtral")))
    E, k, b, n, d, L = (symbols.dim(s) for s in ("n_experts", "top_k", "batch", "seq_len", "d_model", "n_layers"))
    t = derivation.total
    assert sympy.degree(t.params, E) == 1
    assert sympy.degree(t.active_params, k) == 1
    # Forward FLOPs depend on the number of experts only through the router: 2·b·n·d·E per layer.
    assert sympy.expand(sympy.diff(t.forward, E)) == 2 * b * n * d * L
    assert E not in sympy.diff(t.forward, k).free_symbols


MOE = """\
name: moe
dims: {{d: {d}, h: {h}, e: {e}, k: {k}, seq_len: {n}, batch: {b}}}
layers:
  - moe: {{dim: d, hidden: h, experts: e, top_k: k, gated: {gated}, bias: {bias}, shared_experts: {shared},
          shared_gate: {gate}, router_bias: {bias}{capacity}}}
"""


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    d=st.integers(1, 8), h=st.integers(1, 8), e=st.integers(1, 6), k=st.integers(1, 6), n=st.integers(1, 9),
    b=st.integers(1, 3), gated=st.booleans(), bias=st.booleans(), shared=st.integers(0, 2), gate=st.booleans(),
    capacity=st.sampled_from([None, "1", "5/4", "1/2", "2"]),
)
def test_moe_options_verify_on_real_tensors(d, h, e, k, n, b, gated, bias, shared, gate, capacity):
    k = min(k, e)
    gate = gate and shared > 0
    text = MOE.format(d=d, h=h, e=e, k=k, n=n, b=b, gated=str(gated).lower(), bias=str(bias).lower(),
                      shared=shared, gate=str(gate).lower(),
                      capacity="" if capacity is None else f", capacity_factor: '{capacity}'")
    report = symcost.verify(symcost.loads(text), backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]


@settings(max_examples=12, deadline=None, derandomize=True)
@given(d=st.integers(1, 6), h=st.integers(1, 5), e=st.integers(1, 4), z=st.integers(0, 3), k=st.integers(1, 7),
       n=st.integers(1, 7), b=st.integers(1, 2), latent=st.sampled_from([None, 3]), shared=st.integers(0, 1),
       capacity=st.sampled_from([None, "5/4"]))
def test_zero_computation_experts_and_a_latent_width_verify_on_real_tensors(d, h, e, z, k, n, b, latent, shared,
                                                                          capacity):
    """LongCat-Flash's zero experts: the router scores e + z, a zero pick adds the token itself and runs a
    real expert at weight 0 (as transformers does), so the FLOPs are top_k experts' whatever the picks.
    Nemotron 3's latent MoE: the routed experts at the latent width between two projections. With shared
    experts and capacities too: parameters, FLOPs forward and backward, and saved bytes in fp32 and bf16 equal
    PyTorch's."""
    k = min(k, e + z)
    more = (f", latent: {latent}" if latent else "") + (f", capacity_factor: '{capacity}'" if capacity else "")
    s = block_spec(d, n, b, f"moe: {{dim: {d}, hidden: {h}, experts: {e}, top_k: {k}, zero_experts: {z}, "
                            f"shared_experts: {shared}{more}}}")
    report = symcost.verify(s, backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]
    row = next(r for r in report.rows if r.kind == "moe")
    width = latent or d  # the router over both kinds; gated experts at their width, the projections; the shared
    assert row.symbolic["params"] == (d * (e + z) + e * 3 * width * h + (2 * d * latent if latent else 0)
                                      + shared * 3 * d * h)
    for dtype in ("fp32", "bf16"):
        assert symcost.verify_memory(s, dtype=dtype).match


def test_capacity_factor_by_hand():
    # 2 x 9 tokens, top-2 of 4 experts, capacity factor 5/4: C = ceil(5/4 x 18 x 2 / 4) = 12 slots per
    # expert, so 4 x 12 = 48 rows run through an expert (not 36); each row: 2 FLOPs x 3 matrices x 6 x 10.
    text = MOE.format(d=6, h=10, e=4, k=2, n=9, b=2, gated="true", bias="false", shared=0, gate="false",
                      capacity=", capacity_factor: 5/4")
    t = symcost.evaluate(symcost.derive(symcost.loads(text))).total
    router = 2 * 18 * 6 * 4
    assert t["forward"] == router + 48 * 2 * 3 * 6 * 10


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 60), w=st.integers(1, 60))
def test_sliding_window_entries_under_full(n, w):
    text = f"name: w\ndims: {{seq_len: {n}}}\nlayers:\n  - attention: {{dim: 4, heads: 1, causal: true, window: {w}, residual: false}}\n"
    spec = symcost.loads(text)
    full = symcost.evaluate(symcost.derive(spec, "full")).total["forward"]
    pytorch = symcost.evaluate(symcost.derive(spec, "pytorch")).total["forward"]
    kept = sum(min(w, i + 1) for i in range(n))  # query i sees keys max(0, i - w + 1) .. i
    projections = 4 * 2 * n * 4 * 4
    assert pytorch == projections + 2 * 2 * n * n * 4  # the reference multiplies all n² scores
    assert full == projections + 2 * 2 * kept * 4 + kept * (1 + 5)  # plus scale and softmax per kept score


def test_low_rank_linear():
    text = "name: lr\ndims: {d: 64, r: 8, seq_len: 5}\nlayers:\n  - linear: {dim: d, out: d, rank: r, bias: true}\n"
    spec = symcost.loads(text)
    t = symcost.evaluate(symcost.derive(spec)).total
    assert t["params"] == 2 * 64 * 8 + 64  # instead of 64 x 64 + 64
    assert t["forward"] == 2 * 5 * (64 * 8 + 8 * 64)
    assert t["backward"] == 2 * 5 * 64 * 8 + 2 * 2 * 5 * 8 * 64  # raw input: the first matmul has no input gradient
    assert symcost.verify(spec, backward=True, device="cpu").match


def test_encoder_decoder_cross_attention_by_hand():
    # cross-attention: queries over n target tokens, keys/values over m source tokens
    text = """\
name: ed
dims: {d: 8, m: 5, seq_len: 3}
layers:
  - encoder: m
    layers:
      - embedding: {vocab: 11, dim: d}
  - embedding: {vocab: 11, dim: d, shared: true}
  - cross_attention: {dim: d, heads: 2, residual: false}
"""
    t = symcost.evaluate(symcost.derive(symcost.loads(text))).total
    assert t["params"] == 11 * 8 + 4 * 8 * 8
    assert t["forward"] == 2 * 3 * 64 * 2 + 2 * 5 * 64 * 2 + 2 * 2 * 3 * 5 * 8  # q, o; k, v; scores + values
    assert symcost.verify(symcost.loads(text), backward=True, device="cpu").match


@settings(max_examples=10, deadline=None, derandomize=True)
@given(heads=st.integers(1, 4), n=st.integers(1, 6), b=st.integers(1, 2), layers=st.integers(1, 3))
def test_alibi_adds_no_parameter_and_no_counted_flop(heads, n, b, layers):
    """ALiBi (BLOOM): fixed slopes, no table; the attention layers after it cost what they cost
    without it, forward and backward, against PyTorch."""
    body = f"""\
name: a
dims: {{seq_len: {n}, batch: {b}}}
layers:
  - embedding: {{vocab: 9, dim: 8}}
  - %s
  - repeat: {layers}
    layers:
      - attention: {{dim: 8, heads: {heads if 8 % heads == 0 else 1}, causal: true, bias: true}}
"""
    with_alibi, without = (symcost.loads(body % line) for line in ("alibi: {heads: %d}" % heads, "layernorm: {dim: 8}"))
    report = symcost.verify(with_alibi, backward=True, device="cpu")
    assert report.match
    alibi = next(r for r in report.rows if r.kind == "alibi")
    assert alibi.symbolic["params"] == alibi.measured["params"] == 0
    t, u = (symcost.evaluate(s).to_dict() for s in (with_alibi, without))
    assert t["params"] == u["params"] - 16 and t["flops"] == u["flops"]  # the layernorm's 2 x 8 weights


@settings(max_examples=15, deadline=None, derandomize=True)
@given(biases=st.lists(st.booleans(), min_size=4, max_size=4), heads=st.integers(1, 2), n=st.integers(1, 4),
       m=st.integers(1, 5), b=st.integers(1, 2))
def test_cross_attention_biases_per_projection(biases, heads, n, m, b):
    """Whisper's cross-attention: q, v and o with biases, k without; each switch on its own,
    against PyTorch's parameters, FLOPs and saved bytes."""
    q, k, v, o = biases
    text = f"""\
name: ed
dims: {{m: {m}, seq_len: {n}, batch: {b}}}
layers:
  - encoder: m
    layers:
      - embedding: {{vocab: 11, dim: 4}}
  - embedding: {{vocab: 11, dim: 4, shared: true}}
  - cross_attention: {{dim: 4, heads: {heads}, bias: true, q_bias: {str(q).lower()}, k_bias: {str(k).lower()}, \
v_bias: {str(v).lower()}, o_bias: {str(o).lower()}}}
"""
    spec = symcost.loads(text)
    report = symcost.verify(spec, backward=True, device="cpu")
    assert report.match
    cross = next(r for r in report.rows if r.kind == "cross_attention")
    assert cross.symbolic["params"] == 4 * 4 * 4 + 4 * sum(biases)
    assert symcost.verify_memory(spec).match


GPT_OSS = """\
name: gpt-oss-like
dims: {{d: {d}, seq_len: {n}, batch: {b}}}
layers:
  - embedding: {{vocab: 11, dim: d}}
  - rotary: {{dim: {hd}}}
  - attention: {{dim: d, heads: {h}, kv_heads: {kv}, head_dim: {hd}, causal: true, bias: true, sinks: true{window}}}
  - moe: {{dim: d, hidden: {f}, experts: {e}, top_k: {k}, activation: quick_gelu, gated: true, bias: true,
          router_bias: true, router_softmax: {softmax}{limit}}}
  - mlp: {{dim: d, hidden: {f}, activation: silu, gated: true{limit}}}
"""


def gpt_oss_like(d, h, kv, hd, f, e, k, n, b, window, softmax, limit, sinks="true"):
    return symcost.loads(GPT_OSS.format(d=d, h=h, kv=kv, hd=hd, f=f, e=e, k=min(k, e), n=n, b=b, softmax=softmax,
                                        window="" if window is None else f", window: {window}",
                                        limit="" if limit is None else f", limit: {limit}").replace(
                                            "sinks: true", f"sinks: {sinks}"))


@settings(max_examples=12, deadline=None, derandomize=True)
@given(d=st.integers(1, 8), h=st.integers(1, 3), kv=st.integers(1, 3), hd=st.sampled_from([2, 4]),
       f=st.integers(1, 8), e=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 7), b=st.integers(1, 2),
       window=st.sampled_from([None, 1, 3]), softmax=st.sampled_from(["experts", "top_k"]),
       limit=st.sampled_from([None, 7, "1/2", "7, shifted: false"]), dtype=st.sampled_from(["fp32", "bf16"]))
def test_gpt_oss_layer_kinds_verify_on_real_tensors(d, h, kv, hd, f, e, k, n, b, window, softmax, limit, dtype):
    """Attention sinks (with and without a window), the router's softmax over the top k, biased experts
    and the clamped SwiGLU (limit, in an MoE's experts and an MLP; DeepSeek-V4's without the + 1 when not
    shifted): parameters, forward and backward FLOPs and the bytes saved for backward equal PyTorch's on the
    reference build."""
    kv = kv if h % kv == 0 else 1
    spec = gpt_oss_like(d, h, kv, hd, f, e, k, n, b, window, softmax, limit)
    report = symcost.verify(spec, backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]
    for recompute in ("none", "selective"):
        saved = symcost.verify_memory(spec, attention="eager", recompute=recompute, dtype=dtype)
        assert saved.match, [(r.path, r.symbolic, r.measured) for r in saved.rows]


def test_gpt_oss_layer_kinds_by_hand():
    spec = gpt_oss_like(6, 3, 1, 2, 4, 5, 2, 7, 2, None, "top_k", 7)
    rows = {r.kind: r for r in symcost.verify(spec, device="meta").rows}
    # q, k, v, o with biases, and one sink logit per head
    assert rows["attention"].symbolic["params"] == (6 * 6 + 6) + 2 * (6 * 2 + 2) + (6 * 6 + 6) + 3
    full = lambda text: {node.kind: v["forward"] for node, v in symcost.evaluate(symcost.derive(text, convention="full")).components}
    ours, plain = full(spec), full(gpt_oss_like(6, 3, 1, 2, 4, 5, 2, 7, 2, None, "experts", None))
    tokens = 2 * 7
    # the clamps (1 each on gate and up) and up + 1 (1) per hidden value: the MLP's 14 tokens; the experts'
    # 14 x 2 routed rows, and the router's softmax over the 2 chosen logits, not 5 experts (5 FLOPs each)
    assert ours["mlp"] - plain["mlp"] == 3 * 4 * tokens
    assert ours["moe"] - plain["moe"] == 3 * 4 * tokens * 2 - 5 * tokens * (5 - 2)
    # DeepSeek-V4's clamp has no + 1: two FLOPs a hidden value, not three; the same bytes kept
    v4 = gpt_oss_like(6, 3, 1, 2, 4, 5, 2, 7, 2, None, "top_k", "7, shifted: false")
    assert full(v4)["mlp"] - plain["mlp"] == 2 * 4 * tokens
    kept = lambda s: symcost.memory(s).to_dict()["bytes"]["activation_bytes"]
    assert kept(v4) == kept(spec)
    # the sink: one more softmax entry a query and head (5 FLOPs each); none under pytorch
    no_sinks = gpt_oss_like(6, 3, 1, 2, 4, 5, 2, 7, 2, None, "top_k", 7, sinks="false")
    assert ours["attention"] - full(no_sinks)["attention"] == 5 * 2 * 3 * 7
    assert symcost.evaluate(spec).total["forward"] == symcost.evaluate(no_sinks).total["forward"]


@settings(max_examples=8, deadline=None, derandomize=True)
@given(heads=st.integers(1, 3), n=st.integers(1, 6), b=st.integers(1, 2), attention=st.sampled_from(["eager", "sdpa"]),
       qk=st.sampled_from(["false", "true"]))
def test_a_layer_without_rotary_verifies_beside_rotated_ones(heads, n, b, attention, qk):
    """NoPE (SmolLM3's every fourth layer): `rope: false` leaves the rotary layer's rotation out of one
    attention layer: its FLOPs and saved bytes (q and k as projected, o_proj reading the core's output as a
    view where it can) equal PyTorch's."""
    text = f"""\
name: nope
dims: {{seq_len: {n}, batch: {b}}}
layers:
  - embedding: {{vocab: 9, dim: 8}}
  - rotary: {{dim: 4}}
  - attention: {{dim: 8, heads: {heads}, head_dim: 4, causal: true, qk_norm: {qk}}}
  - attention: {{dim: 8, heads: {heads}, head_dim: 4, causal: true, qk_norm: {qk}, rope: false}}
"""
    spec = symcost.loads(text)
    assert symcost.verify(spec, backward=True, device="cpu").match
    saved = symcost.verify_memory(spec, attention=attention)
    assert saved.match, [(r.path, r.symbolic, r.measured) for r in saved.rows]


@settings(max_examples=10, deadline=None, derandomize=True)
@given(chunk=st.integers(1, 5), n=st.integers(1, 9), b=st.integers(1, 2), context=st.integers(0, 11),
       attention=st.sampled_from(["eager", "sdpa"]))
def test_chunked_attention_verifies_and_its_cache_and_steps_equal_the_reference(chunk, n, b, context, attention):
    """Llama 4's local layers: FLOPs forward and backward and saved bytes at a prefill, and after `context`
    tokens the cache and a decode step's FLOPs, equal PyTorch's on the reference build; under `kernel`,
    the kept pairs by hand: position p sees p mod C + 1 keys."""
    from symcost.measure.reference import measure_decode

    spec = symcost.loads(f"""\
name: chunked
dims: {{seq_len: {n}, batch: {b}, C: {chunk}}}
layers:
  - embedding: {{vocab: 9, dim: 8}}
  - rotary: {{dim: 4}}
  - attention: {{dim: 8, heads: 2, head_dim: 4, causal: true, chunk: C}}
  - attention: {{dim: 8, heads: 2, head_dim: 4, causal: true, chunk: C, rope: false}}
""")
    assert symcost.verify(spec, backward=True, device="cpu").match
    assert symcost.verify_memory(spec, attention=attention).match
    step = symcost.derive(spec, decode=True)
    at = dim_values(step, {"context": context})
    measured = measure_decode(step, at, context, device="cpu")
    assert measured.cache_bytes == 4 * int(step.raw_total.cache.xreplace(at))
    assert measured.forward_total == symcost.evaluate(step, {"context": context}).total["forward"]
    kept = sum(p % chunk + 1 for p in range(context, context + 1))  # the step's one query
    kernel = symcost.evaluate(symcost.derive(spec, "kernel", decode=True), {"context": context}).components
    scores = {node.path: v["forward"] for node, v in kernel}["layers/2/attention"] - 4 * 2 * b * 8 * 8
    assert scores == 2 * 2 * b * 2 * kept * 4  # scores and values: 2 FLOPs x b x 2 heads x kept x head_dim


def test_attention_sinks_under_sdpa_are_refused_in_one_line(cli, write):
    path = write(GPT_OSS.format(d=4, h=2, kv=1, hd=2, f=3, e=2, k=1, n=3, b=1, softmax="top_k", window="", limit=""))
    out = cli("verify", path, "--memory", "--attention", "sdpa")
    assert out.exit_code == 2 and len(out.output.strip().splitlines()) == 1
    assert "attention sinks run eagerly here" in out.output and "layers/2/attention" in out.output


@pytest.mark.parametrize(
    "layers, path, fragment",
    [
        ("  - mlp: {dim: 4, hidden: 4, limit: 7}\n", "layers.0.mlp.limit", "needs gated: true"),
        ("  - mlp: {dim: 4, hidden: 4, gated: true, shifted: false}\n", "layers.0.mlp.shifted", "give limit"),
        ("  - moe: {dim: 4, hidden: 4, experts: 2, top_k: 1, shifted: false}\n", "layers.0.moe.shifted", "give limit"),
        ("  - attention: {dim: 4, heads: 1, chunk: 2}\n", "layers.0.attention.chunk", "needs causal: true"),
        ("  - attention: {dim: 4, heads: 1, causal: true, chunk: 2, window: 2}\n", "layers.0.attention.chunk",
         "a window or chunks, not both"),
        ("  - moe: {dim: 4, hidden: 4, experts: 2, top_k: 1, gated: false, limit: 7}\n", "layers.0.moe.limit",
         "needs gated: true"),
        ("  - moe: {dim: 4, hidden: 4, experts: 2, top_k: 1, router_softmax: all}\n", "layers.0.moe.router_softmax",
         "'experts' or 'top_k'"),
        ("  - mlp: {dim: 4, hidden: 4, gated: true, limit: -1}\n", "layers.0.mlp.limit", "must be positive"),
        ("  - moe: {dim: 4, hidden: 4, experts: 2, top_k: 3}\n", "layers.0.moe.top_k", "top_k 3 exceeds 2 experts"),
        ("  - attention: {dim: 4, heads: 1, window: 2}\n", "layers.0.attention.window", "needs causal: true"),
        ("  - cross_attention: {dim: 4, heads: 1}\n", "layers.0.cross_attention.dim", "needs an `encoder`"),
        ("  - embedding: {vocab: 3, dim: 4, shared: true}\n", "layers.0.embedding.shared", "needs a token `embedding`"),
        ("  - encoder: 3\n    layers: [{linear: {dim: 4, out: 4}}]\n  - encoder: 3\n    layers: [{linear: {dim: 4, out: 4}}]\n",
         "layers.1.encoder", "one encoder per spec"),
        ("  - rotary: {dim: 4}\n  - mla: {dim: 4, heads: 1, kv_lora_rank: 2, qk_nope_dim: 2, qk_rope_dim: 2, v_head_dim: 2}\n",
         "layers.1.mla.qk_rope_dim", "rotates 4 features"),
        ("  - moe: {dim: 4, hidden: 4, experts: 2, top_k: 1, capacity_factor: 0}\n", "layers.0.moe.capacity_factor",
         "must be positive"),
    ],
)
def test_new_layer_errors(cli, write, layers, path, fragment):
    result = cli("eval", write(f"name: e\ndims: {{seq_len: 4}}\nlayers:\n{layers}"))
    assert result.exit_code == 2, result.stdout
    assert f": {path}: " in result.stderr and fragment in result.stderr, result.stderr


def test_derive_shows_active_and_compute_per_parameter(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = cli("derive", arch("mixtral")).stdout
    assert "active params" in out and "uses/weight/input" in out
    row = next(line for line in out.splitlines() if line.startswith("layers/2/repeat/3/moe"))
    assert row.rstrip().endswith("  1.00")  # every active expert weight: one multiply-add per token
    formulas = cli("derive", arch("mixtral"), "--formulas").stdout.splitlines()
    block = formulas[formulas.index("layers/2/repeat/3/moe  (moe)"):][:3]
    assert "3·d_ff·d_model·n_experts·n_layers" in block[1] and "3·d_ff·d_model·n_layers·top_k" in block[2]
    evaluated = cli("eval", arch("mixtral")).stdout
    assert "45,098,205,184  11,275,337,728" in evaluated  # the MoE layers: held vs active


@settings(max_examples=20, deadline=None, derandomize=True)
@given(heads=st.integers(1, 3), kv=st.integers(1, 3), head_dim=st.sampled_from([2, 4]), n=st.integers(1, 6),
       b=st.integers(1, 2), types=st.integers(1, 3), buckets=st.integers(1, 5), causal=st.booleans(),
       qk=st.sampled_from(["true", "full"]))
def test_qk_norm_token_types_and_relative_bias_verify(heads, kv, head_dim, n, b, types, buckets, causal, qk):
    """qk_norm per head (one head_dim of weights for every head, Qwen3) or over all heads (OLMo 2)."""
    kv = kv if heads % kv == 0 else 1
    text = f"""\
name: t
dims: {{seq_len: {n}, batch: {b}}}
layers:
  - embedding: {{vocab: 9, dim: 6}}
  - token_type_embedding: {{types: {types}, dim: 6}}
  - relative_position_bias: {{buckets: {buckets}, heads: {heads}}}
  - rotary: {{dim: {head_dim}}}
  - attention: {{dim: 6, heads: {heads}, kv_heads: {kv}, head_dim: {head_dim}, qk_norm: {qk}, causal: {str(causal).lower()}}}
"""
    report = symcost.verify(symcost.loads(text), backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]
    params = {r.kind: r.symbolic["params"] for r in report.rows}
    assert params["token_type_embedding"] == types * 6
    assert params["relative_position_bias"] == buckets * heads
    norms = (heads + kv) * head_dim if qk == "full" else 2 * head_dim  # q_norm, k_norm
    assert params["attention"] == 6 * heads * head_dim * 2 + 6 * kv * head_dim * 2 + norms


@settings(max_examples=6, deadline=None, derandomize=True)
@given(d=st.integers(1, 8), h=st.integers(1, 3), kv=st.integers(1, 3), hd=st.sampled_from([2, 4]),
       rot=st.booleans(), n=st.integers(1, 6), b=st.integers(1, 2), dtype=st.sampled_from(["fp32", "bf16"]))
def test_an_output_gate_verifies_on_real_tensors(d, h, kv, hd, rot, n, b, dtype):
    """Qwen3-Next's gated attention: q_proj makes a query and a gate per value (2 x heads x head_dim outputs),
    o_proj reads the core's output times sigmoid(gate). FLOPs forward and backward, and saved bytes eager and
    fused, with the core recomputed or not; per-head Q/K norms and rotary on part of each head or none."""
    kv = kv if h % kv == 0 else 1
    text = (f"name: m\ndims: {{seq_len: {n}, batch: {b}}}\nlayers:\n  - embedding: {{vocab: 7, dim: {d}}}\n"
            + (f"  - rotary: {{dim: {hd // 2 * 2}}}\n" if rot else "")
            + f"  - repeat: 2\n    layers:\n      - rmsnorm: {{dim: {d}}}\n      - attention: {{dim: {d}, heads: {h}, "
            f"kv_heads: {kv}, head_dim: {hd}, causal: true, qk_norm: true, gate: true}}\n")
    report = symcost.verify(text, backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]
    row = next(r for r in report.rows if r.kind == "attention")
    assert row.symbolic["params"] == 2 * (d * 2 * h * hd + 2 * d * kv * hd + h * hd * d + 2 * hd)
    for attention in ("eager", "sdpa"):
        for recompute in ("none", "selective"):
            assert symcost.verify_memory(text, dtype=dtype, attention=attention, recompute=recompute).match


def test_an_output_gate_needs_per_head_norms():
    text = ("name: m\ndims: {seq_len: 4}\nlayers:\n  - embedding: {vocab: 7, dim: 8}\n"
            "  - attention: {dim: 8, heads: 2, causal: true, gate: true}\n")
    with pytest.raises(symcost.errors.SpecError, match="gate: an output gate is modelled with per-head Q/K norms"):
        symcost.evaluate(symcost.derive(symcost.loads(text)))


def sparse_mla(d, h, heads, width, topk, n, b, layers=2):
    return (f"name: m\ndims: {{seq_len: {n}, batch: {b}}}\nlayers:\n  - embedding: {{vocab: 7, dim: {d}}}\n"
            f"  - rotary: {{dim: 2}}\n  - repeat: {layers}\n    layers:\n      - rmsnorm: {{dim: {d}}}\n"
            f"      - mla: {{dim: {d}, heads: {h}, q_lora_rank: 3, kv_lora_rank: 4, qk_nope_dim: 2, qk_rope_dim: 2, "
            f"v_head_dim: 3, causal: true, index_heads: {heads}, index_dim: {width}, index_topk: {topk}}}\n"
            f"  - lm_head: {{dim: {d}, vocab: 7}}\n")


@settings(max_examples=5, deadline=None, derandomize=True)
@given(d=st.integers(1, 8), h=st.integers(1, 3), heads=st.integers(1, 3), width=st.integers(1, 4),
       topk=st.integers(1, 8), n=st.integers(1, 9), b=st.integers(1, 2), dtype=st.sampled_from(["fp32", "bf16"]))
def test_sparse_mla_verifies_on_real_tensors(d, h, heads, width, topk, n, b, dtype):
    """DeepSeek Sparse Attention as transformers runs it: the indexer without gradients over every key,
    the attention over every key with the unchosen ones masked (top-k below and above the sequence's
    length). FLOPs forward and backward, saved bytes eager and fused, recomputed or not (a mask a
    sequence; the checkpoint keeps the choice), and a decode step's FLOPs and cache (the indexer's keys
    beside the latent) after drawn contexts."""
    from symcost.measure.reference import measure_decode

    text = sparse_mla(d, h, heads, width, topk, n, b)
    report = symcost.verify(text, backward=True, device="cpu")
    assert report.match, [(r.path, r.symbolic, r.measured) for r in report.rows]
    row = next(r for r in report.rows if r.kind == "mla")
    plain = next(r for r in symcost.verify(text.replace(f", index_heads: {heads}, index_dim: {width}, "
                                                        f"index_topk: {topk}", ""), device="cpu").rows
                 if r.kind == "mla")
    # the indexer: its query from the query's latent, its key (and LayerNorm) and head weights from x
    assert row.symbolic["params"] - plain.symbolic["params"] == 2 * (3 * heads * width + d * width + 2 * width
                                                                      + d * heads)
    for attention in ("eager", "sdpa"):
        for recompute in ("none", "selective"):
            assert symcost.verify_memory(text, dtype=dtype, attention=attention, recompute=recompute).match
    step = symcost.derive(symcost.loads(text), decode=True)
    for context in (0, n):
        at = dim_values(step, {"context": context})
        measured = measure_decode(step, at, context, dtype=dtype, device="cpu")
        assert measured.forward_total == symcost.evaluate(step, {"context": context}).total["forward"]
        assert measured.cache_bytes == (4 if dtype == "fp32" else 2) * int(step.raw_total.cache.xreplace(at))


def test_sparse_mla_under_kernel_counts_the_kept_pairs_by_hand():
    """Under kernel the attention of DeepSeek-V3.2's layer (128 heads, 192 + 128 head sizes, top-2,048) scores
    each query's min(p + 1, 2,048) kept keys and the indexer (64 heads of 128) the causal pairs. At 4,096
    tokens: kept pairs 2,048·2,049/2 + 2,048·2,048 = 6,292,480, causal pairs 4,096·4,097/2 = 8,390,656; the
    attention's two matmuls 2·128·6,292,480·(192 + 128) = 515,479,961,600 FLOPs, the indexer's scores
    2·64·8,390,656·129 = 138,546,511,872. At 1,000 tokens (all within top-k): 500,500 pairs each,
    2·128·500,500·320 = 41,000,960,000 and 2·64·500,500·129 = 8,264,256,000."""
    layer = ("mla: {dim: 7168, heads: 128, q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_dim: 128, qk_rope_dim: 64, "
             "v_head_dim: 128, causal: true, index_heads: 64, index_dim: 128, index_topk: 2048}")
    for n, attention, scores in ((4096, 515_479_961_600, 138_546_511_872), (1000, 41_000_960_000, 8_264_256_000)):
        text = f"name: m\ndims: {{seq_len: {n}}}\nlayers:\n  - embedding: {{vocab: 7, dim: 7168}}\n  - {layer}\n"
        parts = symcost.derive(symcost.loads(text), "kernel").nodes[-1].parts
        values = {symcost.symbols.dim("seq_len"): n, symcost.symbols.dim("batch"): 1}
        assert int((parts["scores"].forward + parts["values"].forward).xreplace(values)) == attention
        full = symcost.derive(symcost.loads(text)).nodes[-1].parts  # pytorch: every key, 2·128·n²·320 (README)
        assert int((full["scores"].forward + full["values"].forward).xreplace(values)) == 2 * 128 * n * n * 320
        projections = 2 * n * (1536 * 64 * 128 + 7168 * (128 + 64))
        assert int(parts["indexer"].forward.xreplace(values)) == scores + projections
    assert 2 * 128 * 4096**2 * 320 == 1_374_389_534_720  # the README's pytorch figure


def test_sparse_mla_needs_its_three_sizes_a_query_latent_and_causal():
    text = ("name: m\ndims: {seq_len: 4}\nlayers:\n  - embedding: {vocab: 7, dim: 8}\n"
            "  - mla: {dim: 8, heads: 2, kv_lora_rank: 4, qk_nope_dim: 2, qk_rope_dim: 2, v_head_dim: 3, causal: true, "
            "index_heads: 2, index_dim: 4, index_topk: 3}\n")
    with pytest.raises(symcost.errors.SpecError, match="index_heads: the sparse attention's indexer needs"):
        symcost.evaluate(symcost.derive(symcost.loads(text)))


@pytest.mark.slow  # a comparison with transformers: in the full suite
@settings(max_examples=3, deadline=None, derandomize=True)
@given(n=st.integers(1, 9), topk=st.integers(1, 6), b=st.integers(1, 2))
def test_sparse_mla_prefill_step_and_caches_equal_transformers_on_the_cpu(n, topk, b):
    """DeepSeek-V3.2's layers in transformers on the CPU: a prompt of n tokens and one decode step; the cache
    after each (the latent, the rope key and the indexer's key a token) holds exactly the bytes the formulas say,
    and FlopCounterMode's counts of both (the indexer's scores over every held key) equal symcost's."""
    T = pytest.importorskip("transformers")
    from conftest import assert_prefill_and_step_match
    from symcost.hf import import_config
    from symcost.measure.hf import build

    cfg = T.DeepseekV32Config(hidden_size=32, num_hidden_layers=2, first_k_dense_replace=1, num_attention_heads=4,
                              num_key_value_heads=4, q_lora_rank=8, kv_lora_rank=8, qk_nope_head_dim=4,
                              qk_rope_head_dim=4, v_head_dim=6, index_n_heads=2, index_head_dim=8, index_topk=topk,
                              intermediate_size=40, moe_intermediate_size=12, n_routed_experts=4, num_experts_per_tok=2,
                              n_shared_experts=1, n_group=1, topk_group=1, vocab_size=50).to_dict()
    model = build(cfg, "cpu").eval().requires_grad_(False)
    assert_prefill_and_step_match(model, symcost.loads(import_config(cfg, "deepseek_v32.json")), b, n, 50)


def longcat_small(**more):
    T = pytest.importorskip("transformers")
    sizes = dict(hidden_size=16, num_layers=2, num_attention_heads=2, q_lora_rank=6, kv_lora_rank=8, qk_nope_head_dim=4,
                 qk_rope_head_dim=2, v_head_dim=4, head_dim=2, ffn_hidden_size=24, expert_ffn_hidden_size=6,
                 vocab_size=40)
    return T.LongcatFlashConfig(**sizes | more).to_dict()


@pytest.mark.slow  # comparisons with transformers: in the full suite
@settings(max_examples=4, deadline=None, derandomize=True)
@given(layers=st.integers(1, 2), experts=st.integers(1, 4), zero=st.integers(1, 3), k=st.integers(1, 4),
       n=st.integers(2, 9), b=st.integers(1, 2))
def test_longcat_flash_equal_to_transformers(layers, experts, zero, k, n, b):
    """LongCat-Flash's layers (two latent-attention sublayers, two MLPs, a shortcut MoE with zero experts):
    parameters, active parameters (top_k experts: the bound) and forward FLOPs against
    LongcatFlashForCausalLM on meta, per layer type too; then on the CPU, routing by value, a prompt and a
    decode step: the counts and the latent caches equal the formulas."""
    from conftest import assert_prefill_and_step_match
    from symcost.hf import import_config
    from symcost.measure.hf import build
    from symcost.measure.verify import verify_hf

    cfg = longcat_small(num_layers=layers, n_routed_experts=experts, zero_expert_num=zero,
                        moe_topk=min(k, experts + zero))
    s = symcost.loads(import_config(cfg, "longcat_flash.json"))
    report = verify_hf(s, cfg, {"seq_len": n, "batch": b})
    assert report.match and report.params[0] == report.params[1] and report.kinds_agree, report.by_kind
    assert_prefill_and_step_match(build(cfg, "cpu").eval().requires_grad_(False), s, b, n, 40)


def test_longcat_flash_refuses_a_head_dim_its_rotary_cannot_run():
    from symcost.errors import SpecError
    from symcost.hf import import_config

    with pytest.raises(SpecError, match="head_dim: 4 differs from qk_rope_head_dim 2, which the rotary rotates"):
        import_config(longcat_small() | {"head_dim": 4}, "config.json")


@pytest.mark.parametrize("window", [2, 3, 4])
def test_a_window_s_first_decode_steps_hold_what_pytorch_holds(window):
    """A decode step from an empty cache (context 0) and the next: the cache and the step's FLOPs equal the
    reference build's. (The context dim is a positive symbol, so sympy once took min(window - 1, context + 1) for
    window - 1 at every context: two tokens held after the first step with a window of 3, where one is.)"""
    from symcost.measure.reference import measure_decode

    s = block_spec(8, 5, 2, f"attention: {{dim: 8, heads: 2, causal: true, window: {window}}}")
    step = symcost.derive(s, decode=True)
    for context in (0, 1, 2):
        at = dim_values(step, {"context": context})
        measured = measure_decode(step, at, context, device="cpu")
        assert measured.cache_bytes == 4 * int(step.raw_total.cache.xreplace(at))
        assert measured.forward_total == symcost.evaluate(step, {"context": context}).total["forward"]
    kernel = symcost.derive(s, "kernel", decode=True)  # the first query sees itself alone
    assert symcost.evaluate(kernel, {"context": 0}).total["forward"] == symcost.evaluate(
        step, {"context": 0}).total["forward"]
