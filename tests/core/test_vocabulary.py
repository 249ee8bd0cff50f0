"""One vocabulary (metrics.py): every key of every command's --format json document is a metric
in the table or a documented structural key, and the API, the JSON, --metric and the page use the
same names."""

import json
import re

import pytest

import symcost
from conftest import JSON_COMMANDS, ROOT, TORCH_JSON_COMMANDS, arch, unknown_keys
from symcost.metrics import ALL_METRICS, BY_NAME, STRUCTURE


def test_the_checker_finds_a_key_outside_the_vocabulary():
    document = {"params": 1, "dims": {"anything": 2}, "rows": [{"flops_forward": 3, "seq_len": 4}]}
    assert unknown_keys(document, {"seq_len"}) == {"/rows[]/flops_forward"}
    assert unknown_keys(document) == {"/rows[]/flops_forward", "/rows[]/seq_len"}


@pytest.mark.parametrize("args", JSON_COMMANDS + TORCH_JSON_COMMANDS,
                         ids=lambda a: " ".join(str(x) for x in a[:2]).replace(str(ROOT) + "/", ""))
def test_every_json_key_is_a_metric_or_a_documented_structural_key(cli, args):
    out = cli(*args, "--format", "json")
    assert out.exit_code in (0, 1), out.stderr  # 1: a plan that does not fit still prints its document
    json.loads(out.stdout, parse_constant=pytest.fail)  # strict JSON: no NaN or Infinity
    dims = {d.name for a in args if str(a).endswith(".yaml") for d in symcost.load(a).dimset.items}
    assert unknown_keys(json.loads(out.stdout), dims) == set()


def test_the_table_and_the_structure_do_not_overlap_and_each_key_is_documented():
    assert not set(BY_NAME) & set(STRUCTURE)
    assert all(m.label and m.unit for m in BY_NAME.values()) and all(STRUCTURE.values())


def test_metric_is_spelled_the_same_in_the_api_the_json_and_the_command_line(cli):
    """eval's totals (the API's Evaluation.total) carry the table's names, the JSON puts them in the
    one shape at every level, and --metric offers the same names."""
    e = symcost.evaluate(arch("mixtral"), n_layers=2)
    assert set(e.total) <= set(BY_NAME)
    data = json.loads(cli("eval", arch("mixtral"), "--set", "n_layers=2", "--no-cache", "--format", "json").stdout)
    for level in (data, *data["components"]):
        assert set(level["flops"]) == {"forward", "backward", "train"} and "params" in level
    assert data["flops"] == {k: e.total[k] for k in ("forward", "backward", "train")}
    choices = re.search(r"--metric \[([^\]]+)\]", cli("sweep", "--help").stdout).group(1).split("|")
    assert choices == list(ALL_METRICS)


def test_the_page_names_its_figures_with_the_table(tmp_path):
    """The page's metric rows (data-metric) and its byte functions are named as the JSON names them."""
    page = (ROOT / "symcost" / "page" / "page.js").read_text()
    rows = re.search(r"const METRIC_ROWS = \[(.*?)\]\.map", page, re.S).group(1)
    names = set(re.findall(r'\["(\w+)",', rows)) | set(re.findall(r'dataset\.metric = "(\w+)"', page))
    names |= set(re.findall(r'data-metric="(\w+)"', page))
    assert names and names <= set(BY_NAME), names - set(BY_NAME)
    html = symcost.page(arch("llama")).html
    byte_functions = set(re.findall(r"^  (\w+): v =>", html, re.M))
    assert byte_functions and byte_functions <= set(BY_NAME)
