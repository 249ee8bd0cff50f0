"""Every --format json document is strict JSON (RFC 8259: no NaN, no Infinity), for ordinary
inputs (tests/core/test_vocabulary.py parses every command's strictly) and for the largest and
smallest values each command accepts; what it cannot print finitely it refuses in one line."""

import json

import pytest

from conftest import ROOT, arch

EXTREMES = [
    ["plan", arch("llama"), "--gpus", "10000000", "--tp", "8", "--tokens", "999999999999999999", "--price", "1000000",
     "--mfu", "1e-30", "--overlap", "1"],
    ["plan", arch("llama"), "--gpus", "1", "--tokens", "1", "--price", "1e-30", "--tokens-per-second", "1e-30"],
    ["sweep", arch("llama"), "--vary", "seq_len=1,999999999999999999", "--metric", "train", "--metric",
     "peak_training_bytes"],
    ["budget", arch("llama"), "--flops", "1e60"], ["budget", arch("llama"), "--tokens", "999999999999999999"],
    ["scaling", "optimal", arch("llama"), "--flops", "1e30", "--for", "d_model", "--serve", "1e30"],
    ["scaling", "compare", arch("llama"), arch("mixtral"), "--flops", "1e60"],
    pytest.param(["scaling", "fit", ROOT / "examples" / "runs_synthetic.csv", "--bootstrap", "1000"],
                 marks=pytest.mark.slow),
    ["inference", arch("deepseek_v3"), "--context", "999999999999999999", "--new", "999999999999999999"],
    ["memory", arch("llama"), "--set", "seq_len=999999999999999999", "--set", "batch=999999999999999999"],
    ["compare", arch("llama"), arch("mixtral"), "--set", "seq_len=999999999999999999"],
    ["plan", arch("llama"), "--gpus", "8", "--price", "inf"],  # before: "Infinity" in the document
    ["plan", arch("llama"), "--gpus", "8", "--tokens-per-second", "1e300"],  # before: MFU inf
]


def reject(constant: str):
    raise ValueError(f"{constant} is not JSON")


@pytest.mark.parametrize("args", EXTREMES, ids=lambda a: " ".join(map(str, a[:2])).replace(str(ROOT) + "/", "")
                         if isinstance(a, list) else None)
def test_extreme_values_print_strict_json_or_one_line(cli, args):
    out = cli(*args, "--format", "json")
    if out.exit_code == 2:
        assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1 and "Traceback" not in out.output
        return
    assert out.exit_code in (0, 1), out.output  # 1: a plan that does not fit prints its document too
    json.loads(out.stdout, parse_constant=reject)
