"""Every command's output on the shipped specs, written to a directory, so that a refactor can be
shown to change no number: run it before and after, then `python benchmarks/golden.py --compare
BEFORE AFTER` (JSON keys renamed in between are mapped by RENAMED; everything else byte for byte).

    python benchmarks/golden.py OUT_DIR
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p.stem for p in (ROOT / "architectures").glob("*.yaml"))
LLM = ("transformer", "llama", "mixtral", "deepseek_v3", "mamba2", "gemma2")

COMMANDS: list[tuple[str, ...]] = [
    *((cmd, f"architectures/{s}.yaml", *fmt) for s in SPECS for cmd in ("derive", "eval")
      for fmt in ((), ("--format", "json"), ("--format", "markdown"))),
    *(("memory", f"architectures/{s}.yaml", *fmt) for s in SPECS for fmt in ((), ("--format", "json"))),
    *(("inference", f"architectures/{s}.yaml", *fmt) for s in LLM for fmt in ((), ("--format", "json"))),
    *(("plan", f"architectures/{s}.yaml", "--gpus", "64", "--tp", "8", "--pp", "2", "--zero", "1", "--tokens", "1e12",
       *fmt) for s in LLM for fmt in ((), ("--format", "json"))),
    *(("approx", f"architectures/{s}.yaml", *fmt) for s in LLM for fmt in ((), ("--format", "json"))),
    *(("budget", f"architectures/{s}.yaml", "--tokens", "1e12", *fmt) for s in LLM for fmt in ((), ("--format", "json"))),
    *(("sweep", "architectures/llama.yaml", "--vary", "seq_len=1024..8192x2", *fmt)
      for fmt in ((), ("--format", "json"))),
    *(("solve", "architectures/llama.yaml", "--target", "params=7e9", "--for", "d_model", *fmt)
      for fmt in ((), ("--format", "json"))),
    *(("crossover", "architectures/transformer.yaml", "--between", "attention:scores", "mlp", "--in", "seq_len", *fmt)
      for fmt in ((), ("--format", "json"))),
    *(("compare", "architectures/llama.yaml", "architectures/mixtral.yaml", *fmt) for fmt in ((), ("--format", "json"))),
    *(("verify", f"architectures/{s}.yaml", *fmt) for s in ("transformer", "mixtral", "mamba2")
      for fmt in ((), ("--format", "json"))),
    *(("verify", "architectures/transformer.yaml", "--memory", *fmt) for fmt in ((), ("--format", "json"))),
    *(("scaling", "optimal", "architectures/llama.yaml", "--flops", "1e23", "--for", "n_layers", *fmt)
      for fmt in ((), ("--format", "json"))),
    ("flops-per-token", "architectures/llama.yaml"),
    ("import-hf", "tests/data/hf/Mixtral-8x7B-v0.1.json"),
]

# JSON keys renamed in #31 (one vocabulary): old spelling -> the flat spelling both sides are compared in
RENAMED = {"type": "kind", "by_type": "by_kind", "forward_per_input": "flops_per_input_forward",
           "train_per_input": "flops_per_input_train", "spec": "name"}  # spec: scaling's spelling of a spec's name


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for i, args in enumerate(COMMANDS):
        done = subprocess.run([sys.executable, "-m", "symcost", *args], cwd=ROOT, capture_output=True, text=True,
                              env={"COLUMNS": "100", "SYMCOST_CACHE_DIR": str(out / ".cache"), "PATH": "/usr/bin:/bin"})
        (out / f"{i:03d}.txt").write_text(f"$ symcost {' '.join(args)}\nexit {done.returncode}\n{done.stdout}{done.stderr}")


def flat(value):
    """A document in one flat spelling, old or new: `flops: {forward}` and `flops_forward` alike as
    flops_forward (flops_per_input likewise), and the renamed keys as RENAMED says."""
    if isinstance(value, list):
        return [flat(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    cost = "params" in value  # a Cost's metrics, written flat before (derive's leading forms)
    for k, v in value.items():
        k = f"flops_{k}" if cost and k in ("forward", "backward", "train") else RENAMED.get(k, k)
        if k in ("flops", "flops_per_input") and isinstance(v, dict) and all(isinstance(x, str) and x.isidentifier()
                                                                             for x in v):
            out |= {f"{k}_{leaf}": flat(x) for leaf, x in v.items()}
        else:
            out[k] = flat(v)
    return out


def added(old, new, path="") -> list[str]:
    """The key paths `new` has beyond `old`; raises where a value `old` has differs in `new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        missing = old.keys() - new.keys()
        if missing:
            raise ValueError(f"{path}: lost {sorted(missing)}")
        return [f"{path}/{k}" for k in new.keys() - old.keys()] + [
            p for k in old for p in added(old[k], new[k], f"{path}/{k}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new)) for p in added(a, b, f"{path}[{i}]")]
    if old != new:
        raise ValueError(f"{path}: {old!r} became {new!r}")
    return []


def compare(before: Path, after: Path) -> int:
    differ, extra = 0, set()
    for old in sorted(before.glob("*.txt")):
        text, new = old.read_text(), (after / old.name).read_text()
        head, _, body = text.partition("\n")
        if "--format json" in head and text.split("\n")[1] == new.split("\n")[1] == "exit 0":
            try:
                found = added(flat(json.loads(body.partition("\n")[2])), flat(json.loads(new.split("\n", 2)[2])))
                extra |= {re.sub(r"/parts/[^/]+/", "/parts/*/", re.sub(r"\[\d+\]", "[]", p)) for p in found}
                continue
            except ValueError as e:
                print(f"differs: {head}: {e}")
                differ += 1
                continue
        if text != new:
            differ += 1
            print(f"differs: {head}")
    print(f"{len(list(before.glob('*.txt'))) - differ} identical, {differ} differ; keys added: {sorted(extra)}")
    return 1 if differ else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    run(Path(sys.argv[1]))
