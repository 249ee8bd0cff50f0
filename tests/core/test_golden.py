"""Shipped architectures at their published sizes: exact parameter counts, each expected
value computed here from the published config, module by module."""

import json

import sympy

from conftest import arch
from published import gpt2_small_params, llama2_7b_params


def test_published_counts_as_computed_here():
    assert gpt2_small_params() == 124_439_808  # the figure DESIGN.md and the issue quote
    assert llama2_7b_params() == 6_738_415_616


def test_eval_json_gpt2(cli):
    result = cli("eval", arch("transformer"), "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["params"] == gpt2_small_params()
    assert data["active_params"] == data["params"]
    assert data["convention"] == "pytorch"
    assert data["name"] == "gpt2-small"
    assert set(data["flops"]) == {"forward", "backward", "train"}
    assert data["flops"]["train"] == data["flops"]["forward"] + data["flops"]["backward"]
    assert all(isinstance(v, int) for v in data["dims"].values())
    for c in data["components"]:
        assert {"path", "kind", "params", "active_params", "flops"} <= set(c) and set(c["flops"]) == set(data["flops"])
    assert sum(c["params"] for c in data["components"]) == data["params"]
    assert sum(c["flops"]["forward"] for c in data["components"]) == data["flops"]["forward"]


def test_eval_json_llama(cli):
    data = json.loads(cli("eval", arch("llama"), "--format", "json").stdout)
    assert data["params"] == llama2_7b_params()


def test_gpt2_forward_flops_at_1024_tokens(cli):
    # Per token and layer: 2 FLOPs x (4d² attention projections + 8d² MLP) plus scores and
    # values 2 x 2·n·d; the tied head 2·d·V per token. The embeddings compute nothing.
    d, L, n, V = 768, 12, 1024, 50257
    expected = n * L * (2 * 12 * d * d + 4 * n * d) + 2 * n * d * V
    data = json.loads(cli("eval", arch("transformer"), "--format", "json").stdout)
    assert data["flops"]["forward"] == expected
    assert data["flops"]["backward"] == 2 * expected  # every matmul operand needs a gradient here


def test_derive_json_reads_back(cli):
    data = json.loads(cli("derive", arch("transformer"), "--format", "json").stdout)
    assert data["free_symbols"] == ["batch", "d_model", "max_pos", "n_layers", "seq_len", "vocab"]
    values = dict(batch=1, d_model=768, max_pos=1024, n_layers=12, seq_len=1024, vocab=50257)
    params = sympy.parse_expr(data["params"])
    assert params.subs(values) == gpt2_small_params()
    for key in ("forward", "backward", "train"):
        assert isinstance(sympy.parse_expr(data["flops"][key]), sympy.Expr)
    for c in data["components"]:
        sympy.parse_expr(c["params"]), sympy.parse_expr(c["flops"]["forward"])
    assert data["dims"]["d_ff"] == "4*d_model"
