"""Exploring trade-offs: sweep, solve, crossover, compare, approx, budget and plots, with
expected values derived here by hand from each architecture's published structure."""

import json
from fractions import Fraction

import pytest

import symcost
from conftest import arch
from symcost.explore.sweep import parse_values
from published import llama2_7b_params, llama_forward

LLAMA = dict(d=4096, L=32, ff=11008, V=32000)


@pytest.mark.parametrize(
    "text, values",
    [
        ("1,2,4", [1, 2, 4]),
        ("512:2048:512", [512, 1024, 1536, 2048]),
        ("512:2000:512", [512, 1024, 1536]),
        ("1024..16384x2", [1024, 2048, 4096, 8192, 16384]),
        ("3..100x3", [3, 9, 27, 81]),
        ("1_000", [1000]),
    ],
)
def test_parse_values(text, values):
    assert parse_values(text) == values


@pytest.mark.parametrize("text", ["0,1", "a,b", "10:1", "1..10x1", "5:10:0", "1:100000000"])
def test_parse_values_refuses(cli, text):
    result = cli("sweep", arch("llama"), "--vary", f"seq_len={text}")
    assert result.exit_code == 2 and "error:" in result.stderr


def test_sweep_seq_len_csv(cli):
    out = cli("sweep", arch("llama"), "--vary", "seq_len=1024..16384x2", "--metric", "forward", "--metric", "params",
              "--format", "csv").stdout.splitlines()
    assert out[0] == "seq_len,forward,params"
    for line in out[1:]:
        n, forward, params = map(int, line.split(","))
        assert forward == llama_forward(n)
        assert params == llama2_7b_params()


def test_sweep_grid_json(cli):
    data = json.loads(cli("sweep", arch("transformer"), "--vary", "d_model=96,192,384", "--vary", "n_layers=1:4",
                          "--metric", "params", "--format", "json").stdout)
    assert len(data["points"]) == 12
    for p in data["points"]:
        d, L = p["d_model"], p["n_layers"]
        assert p["params"] == L * (12 * d * d + 13 * d) + (50257 + 1024 + 2) * d  # by hand, GPT-2's layout


def test_sweep_honours_a_derived_dim(cli):
    data = json.loads(cli("sweep", arch("transformer"), "--vary", "d_ff=3072,3073", "--metric", "params",
                          "--format", "json").stdout)
    a, b = (p["params"] for p in data["points"])
    assert b - a == 12 * (768 + 1 + 768)  # one more hidden unit per layer: a column, its bias, a row


def test_sweep_reports_invalid_points_and_computes_the_rest(cli):
    # Before: one invalid point aborted the whole sweep.
    result = cli("sweep", arch("llama"), "--vary", "d_model=4096,4100,8192", "--format", "json")
    assert result.exit_code == 0
    ok, bad, big = json.loads(result.stdout)["points"]
    assert ok["params"] == llama2_7b_params() and "invalid" not in ok and "params" in big
    assert bad == {"d_model": 4100, "invalid": bad["invalid"]} and bad["invalid"].startswith("dims.d_head:")
    text = cli("sweep", arch("llama"), "--vary", "d_model=4096,4100").stdout
    assert "invalid: dims.d_head" in text and "1 invalid" in text
    csv = cli("sweep", arch("llama"), "--vary", "d_model=4096,4100", "--format", "csv").stdout.splitlines()
    assert csv[0].endswith(",invalid") and csv[2].startswith("4100,,,") and "d_head" in csv[2]


def test_solve_llama_7b(cli):
    data = json.loads(cli("solve", arch("llama"), "--target", "params=7e9", "--for", "d_model", "--set", "n_layers=32",
                          "--format", "json").stdout)
    # By hand at n_layers 32: 2·L·(2d²) attention + 3·d·ff·L + 2·d·L norms + 2·V·d + d = 128d² + 1,120,833d
    params = lambda d: 128 * d * d + 1_120_833 * d
    (root,) = data["roots"]
    assert abs(params(root["value"]) - 7e9) < 1e-3 * 7e9 / 1e6
    below, above = root["below"], root["above"]
    assert below["params"] == params(below["value"]) <= 7e9 <= params(above["value"]) == above["params"]
    assert below["value"] % 32 == 0 and above["value"] % 32 == 0  # n_heads must divide d_model
    assert above["value"] - below["value"] == 64  # the valid sizes around 4215.7: 4160 and 4224
    assert "sqrt" in root["exact"]  # a quadratic: the root in radicals


def test_solve_multiple_of(cli):
    data = json.loads(cli("solve", arch("llama"), "--target", "params=7e9", "--for", "d_model", "--multiple-of", "128",
                          "--format", "json").stdout)
    (root,) = data["roots"]
    assert (root["below"]["value"], root["above"]["value"]) == (4096, 4224)
    assert root["below"]["params"] == llama2_7b_params()


def test_crossover_attention_vs_mlp(cli):
    # GPT-2: scores + values 4·b·L·n²·d = MLP 16·b·L·n·d² when n = 4·d
    data = json.loads(cli("crossover", arch("transformer"), "--between", "attention:scores+values", "mlp",
                          "--in", "seq_len", "--format", "json").stdout)
    assert data["general"] == ["4*d_model"]
    assert data["roots"] == [{"exact": "3072", "value": 3072.0}]


def test_crossover_errors(cli):
    result = cli("crossover", arch("transformer"), "--between", "attention:nope", "mlp", "--in", "seq_len")
    assert result.exit_code == 2 and "no part 'nope'" in result.stderr


def test_compare_llama_mixtral(cli):
    data = json.loads(cli("compare", arch("llama"), arch("mixtral"), "--format", "json").stdout)
    (row,) = data["rows"]
    assert row["a"]["params"] == llama2_7b_params()
    assert row["b"]["params"] == 46_702_792_704
    assert row["a"]["flops_per_input"]["forward"] == llama_forward(4096) / 4096
    assert row["ratio_b_over_a"]["params"] == pytest.approx(46_702_792_704 / llama2_7b_params())


def test_compare_vary(cli):
    data = json.loads(cli("compare", arch("llama"), arch("mixtral"), "--vary", "seq_len=1024,2048",
                          "--format", "json").stdout)
    assert [r["at"] for r in data["rows"]] == [{"seq_len": 1024}, {"seq_len": 2048}]
    assert data["rows"][1]["a"]["flops_per_input"]["forward"] == llama_forward(2048) / 2048


def test_approx_gpt2(cli):
    data = json.loads(cli("approx", arch("transformer"), "--format", "json").stdout)
    by = {e["name"]: e for e in data["estimates"]}
    d, L, n, V = 768, 12, 1024, 50257
    N = L * (12 * d * d + 13 * d) + 2 * d  # non-embedding: blocks and the final LayerNorm
    assert by["6ND"]["estimate"] == 6 * N * n
    assert by["kaplan_forward"]["estimate"] == (2 * N + 2 * L * n * d) * n
    exact_train = 3 * (n * L * (24 * d * d + 4 * n * d) + 2 * n * d * V)
    assert by["6ND"]["exact"] == exact_train
    # Megatron's 72BsLh²(1 + s/6h + V/12hL) is exactly the pytorch count of a GPT-2 layout
    assert by["megatron"]["relative_error"] == "0" and by["megatron"]["estimate"] == exact_train


def test_budget(cli):
    data = json.loads(cli("budget", arch("llama"), "--tokens", "2e12", "--format", "json").stdout)
    per_token = Fraction(3 * llama_forward(4096), 4096)
    assert data["train_flops"] == int(per_token * 2 * 10**12)
    back = json.loads(cli("budget", arch("llama"), "--flops", str(data["train_flops"]), "--format", "json").stdout)
    assert back["tokens"] == 2 * 10**12


def test_budget_optimal(cli):
    data = json.loads(cli("budget", arch("llama"), "--flops", "1e23", "--optimal-for", "d_model", "--format",
                          "json").stdout)
    (root,) = data["roots"]
    assert root["below"]["train_flops"] <= 1e23 <= root["above"]["train_flops"]


def test_budget_needs_one_of(cli):
    assert cli("budget", arch("llama")).exit_code == 2
    assert cli("budget", arch("llama"), "--tokens", "1", "--flops", "1").exit_code == 2


def test_plot(cli, tmp_path):
    import matplotlib.image  # the plot extra, which the README's test command installs
    from symcost.explore.plot import plot_sweep
    from symcost.explore.sweep import sweep

    path = tmp_path / "cost.png"
    result = cli("sweep", arch("transformer"), "--vary", "seq_len=128..1024x2", "--vary", "n_layers=6,12,24",
                 "--metric", "forward", "--metric", "params", "--plot", path)
    assert result.exit_code == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = sweep(symcost.load(arch("transformer")), {"seq_len": [128, 256, 512], "n_layers": [6, 12, 24]},
              ["forward", "params"], components=True)
    fig = plot_sweep(s, str(tmp_path / "b.png"), ["forward", "params"], stack=True)
    forward, params, shares = fig.axes
    assert len(forward.get_lines()) == len(params.get_lines()) == 3  # one per n_layers value
    assert forward.get_xscale() == "linear" and len(shares.collections) == 8  # one area per component
    assert matplotlib.image.imread(str(tmp_path / "b.png")).ndim == 3


def test_a_table_too_wide_for_its_exact_bytes_rounds_them_in_binary_units(cli, monkeypatch):
    """Rounded where the exact numbers do not fit, bytes read as GiB and MiB (never 13.48B)."""
    monkeypatch.setenv("COLUMNS", "40")
    out = cli("sweep", arch("llama"), "--vary", "seq_len=1024,2048", "--metric", "weights_bytes", "--metric",
              "kv_cache_bytes", "--metric", "params").stdout
    assert "12.55 GiB" in out and "512.00 MiB" in out and "1.00 GiB" in out and "13.48B" not in out
