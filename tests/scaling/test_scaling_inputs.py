"""scaling takes no number on trust: runs that cannot determine the law, CSV cells past the csv
module's limit, fit files with booleans, strings, tiny exponents or deep nesting, contradictory
options and out-of-range budgets each end in one line, and --plot writes only an image, never over
an input."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symcost
from conftest import ROOT, arch
from strategies import HOSTILE_NUMBERS

EXAMPLE = str(ROOT / "examples" / "runs_synthetic.csv")


def one_line(cli, *args) -> str:
    out = cli(*args)
    assert out.exit_code == 2 and "Traceback" not in out.output and out.stderr.count("\n") == 1, out.output
    return out.stderr.strip()


def runs(tmp_path, rows, name="runs.csv") -> str:
    path = tmp_path / name
    path.write_text("params,tokens,loss\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return str(path)


def test_runs_that_cannot_determine_the_law_are_refused(cli, tmp_path):
    same = runs(tmp_path, [(1e9, 2e10, 2.5)] * 7)
    assert one_line(cli, "scaling", "fit", same) == (
        f"error: {same}: every run has the same params: L(N, D) = E + A/N^alpha + B/D^beta needs runs at two or more "
        "params to fit")
    rising = runs(tmp_path, [(1e8 * 2**i, 1e9 * 2**i, 2.0 + 0.2 * i) for i in range(6)], "rising.csv")
    assert one_line(cli, "scaling", "fit", rising, "--bootstrap", "0") == (
        f"error: {rising}: the best fit has alpha = -0.116: these runs' loss does not fall with params and tokens as "
        "L(N, D) = E + A/N^alpha + B/D^beta requires (all five positive); check the runs")


def test_a_huge_csv_cell_is_one_line(cli, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("params,tokens,loss\n" + "1" * 200_000 + ",1,1\n")
    assert one_line(cli, "scaling", "fit", path) == (
        f"error: {path}:2:1: not a CSV file of runs: field larger than field limit (131072)")


@pytest.mark.parametrize("plot, message", [
    (EXAMPLE, "--plot {p}: expected an image file name ending in .png, .svg, .pdf, .jpg, .jpeg, .webp, .tif, .tiff, "
              ".eps, .ps"),
    (arch("llama"), "--plot {p}: expected an image file name ending in .png, .svg, .pdf, .jpg, .jpeg, .webp, .tif, "
                    ".tiff, .eps, .ps"),
    ("/no/such/dir/fit.png", "--plot {p}: no directory /no/such/dir"),
])
def test_plot_writes_only_an_image_never_over_an_input(cli, plot, message):
    before = open(EXAMPLE).read()
    first = (f"{plot} is also the command's input {EXAMPLE}; write the output elsewhere" if plot == EXAMPLE
             else message.format(p=plot))
    assert one_line(cli, "scaling", "fit", EXAMPLE, "--bootstrap", "0", "--plot", plot) == "error: " + first
    second = (f"{plot} is also the command's input {plot}; write the output elsewhere" if plot == arch("llama")
              else message.format(p=plot))
    assert one_line(cli, "scaling", "optimal", arch("llama"), "--flops", "1e23", "--for", "n_layers", "--plot", plot) \
        == "error: " + second
    assert open(EXAMPLE).read() == before


@pytest.mark.parametrize("fit, message", [
    ({"E": True, "A": 400, "B": 400, "alpha": 0.3, "beta": 0.3}, "fit.E: True is not a number in [1e-06, 1000]"),
    ({"E": 1.7, "A": 400, "B": 400, "alpha": "0.34", "beta": 0.3}, "fit.alpha: '0.34' is not a number in [0.001, 10]"),
    ({"E": 1.7, "A": 400, "B": 400, "alpha": 1e-300, "beta": 0.3}, "fit.alpha: 1e-300 is not a number in [0.001, 10]"),
    ({"E": 1.7, "A": 400, "B": 400, "alpha": 0.3}, "not a fit that scaling fit writes as JSON: KeyError 'beta'"),
    ("[" * 100_000 + "]" * 100_000, "not a fit that scaling fit writes as JSON: RecursionError maximum recursion depth "
                                    "exceeded while decoding a JSON array from a unicode string"),
])
def test_a_fit_file_is_typed_strictly(cli, tmp_path, fit, message):
    path = tmp_path / "fit.json"
    path.write_text(fit if isinstance(fit, str) else json.dumps({"fit": fit}))
    assert one_line(cli, "scaling", "optimal", arch("llama"), "--flops", "1e23", "--for", "n_layers", "--fit", path) \
        == f"error: {path}: {message}"


@pytest.mark.parametrize("args, message", [
    (["--for", "n_layers", "--fit", EXAMPLE, "--law", "kaplan2020"], "--law 'kaplan2020' and a fit: give one of them"),
    (["--for", "d_head"], "--for 'd_head': a derived dim (= d_model/n_heads); size one of the dims it is made of"),
    (["--for", "d_model", "--multiple-of", "1000000000000000000"],
     "--multiple-of 1000000000000000000: expected an integer from 1 to 100,000 (sizes are searched up to 10,000,000)"),
    (["--for", "n_layers", "--flops", "1e40"], "at 1e+40 FLOPs the predicted loss is still falling above n_layers = "
     "10,000,000, the edge of the sizes searched: the optimum lies outside them; change the budget or the other dims"),
    (["--for", "n_layers", "--flops", "1e10"], "at 1e+10 FLOPs the predicted loss is still falling below n_layers = 1, "
     "the edge of the sizes searched: the optimum lies outside them; change the budget or the other dims"),
])
def test_optimal_refuses_what_has_no_answer(cli, args, message):
    flops = [] if "--flops" in args else ["--flops", "1e23"]
    assert one_line(cli, "scaling", "optimal", arch("llama"), *flops, *args) == f"error: {message}"


def test_a_fit_is_bounded(cli, tmp_path):
    many = runs(tmp_path, [(1e7 * (1 + i), 1e9 * (1 + i % 7), 3 - i / 1000) for i in range(600)])
    assert one_line(cli, "scaling", "fit", many, "--grid", "hoffmann") == (
        f"error: {many}: 4,500 starts on 600 runs is past the 1,000,000 start-runs a fit may take; use the default grid "
        "or fewer runs")
    assert one_line(cli, "scaling", "fit", many, "--bootstrap", "1000") == (
        "error: --bootstrap 1,000 refits of 600 runs is past the 500,000 refit-runs a fit may take; give at most 833")
    with pytest.raises(symcost.SpecError, match=r"^bootstrap 1001: expected an integer from 0 to 1,000$"):
        symcost.scaling_fit(EXAMPLE, bootstrap=1001)


@pytest.mark.slow  # a run that passes the checks is fitted: about a second each
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(["params", "tokens", "loss"]), value=HOSTILE_NUMBERS)
def test_any_hostile_run_is_refused_in_one_line(tmp_path_factory, column, value):
    """Drawn into the columns given to the API, and written into a CSV file as text."""
    good = {"params": [1e8 * 2**i for i in range(6)], "tokens": [2e9 * 3**i for i in range(6)],
            "loss": [3.0, 2.8, 2.6, 2.5, 2.4, 2.35]}
    good[column] = good[column][:5] + [value]
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    path.write_text("params,tokens,loss\n" + "\n".join(f"{p},{t},{l}" for p, t, l in zip(*good.values())) + "\n")
    for runs in (good, str(path)):
        try:
            fitted = symcost.scaling_fit(runs, bootstrap=0)
        except symcost.SpecError as e:
            assert "\n" not in str(e)
            continue
        assert all(math.isfinite(v) and v > 0 for v in fitted.values.values())
        json.loads(json.dumps(fitted.to_dict()), parse_constant=pytest.fail)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["E", "A", "B", "alpha", "beta"]), value=HOSTILE_NUMBERS)
def test_any_hostile_fit_file_is_refused_or_predicts_finitely(tmp_path_factory, key, value):
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    path.write_text(json.dumps({"fit": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, key: value}}))
    try:
        o = symcost.scaling_optimal(arch("llama"), flops="1e23", unknown="n_layers", fit=str(path))
    except symcost.SpecError as e:
        assert "\n" not in str(e)
        return
    json.loads(json.dumps(o.to_dict()), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
