"""symcost benchmarks: figures quoted in the README, each a ratio measured in one run.

    python benchmarks/bench.py            # all
    python benchmarks/bench.py derive     # one section

Sections: startup (CLI cold start vs `import sympy`), derive (depth 12 vs 12,000),
verify-vs-eval (the alternative a user has: build on meta and count with FlopCounterMode).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ARCH = ROOT / "architectures"


def best(fn, repeat: int = 5) -> float:
    """The best of `repeat` wall-clock runs, in seconds (the least disturbed)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def startup() -> None:
    floor = best(lambda: run(sys.executable, "-c", "import sympy"))
    cli = best(lambda: run(sys.executable, "-m", "symcost.cli", "derive", str(ARCH / "transformer.yaml")))
    print(f"startup: `import sympy` {floor:.2f} s; `symcost derive transformer.yaml` {cli:.2f} s "
          f"({cli / floor:.1f}x the floor, +{cli - floor:.2f} s)")


def derive_depth() -> None:
    import symcost

    text = (ARCH / "transformer.yaml").read_text()
    times = {}
    for depth in (12, 12_000):
        spec = symcost.loads(text.replace("n_layers: 12 ", f"n_layers: {depth} "))
        times[depth] = best(lambda: symcost.evaluate(symcost.derive(spec)))
    print(f"derive+eval: n_layers=12 {times[12] * 1e3:.1f} ms, n_layers=12000 {times[12_000] * 1e3:.1f} ms "
          f"(ratio {times[12_000] / times[12]:.2f})")


LLAMA_70B = {"d_model": 8192, "n_layers": 80, "n_heads": 64, "n_kv_heads": 8, "d_ff": 28672, "vocab": 32000}


def against_torch() -> None:
    import symcost
    from symcost.evaluate import dim_values
    from symcost.torchref import measure

    spec = symcost.load(ARCH / "llama.yaml")
    derivation = symcost.derive(spec)
    ours = best(lambda: symcost.evaluate(symcost.derive(spec), LLAMA_70B))
    values = dim_values(derivation, LLAMA_70B)
    theirs = best(lambda: measure(derivation, values, backward=False), repeat=1)
    e = symcost.evaluate(derivation, LLAMA_70B)
    print(f"Llama-2-70B-sized ({e.total['params']:,} params): symcost derive+eval {ours * 1e3:.1f} ms; "
          f"build on meta + FlopCounterMode {theirs:.2f} s ({theirs / ours:.0f}x)")
    sizes = [dict(LLAMA_70B, seq_len=256 * (i + 1)) for i in range(100)]
    ours100 = best(lambda: [symcost.evaluate(derivation, s) for s in sizes], repeat=1)
    print(f"  100 sizes: symcost {ours100:.2f} s; torch (extrapolated from one) {100 * theirs:.0f} s")


SECTIONS = {"startup": startup, "derive": derive_depth, "torch": against_torch}

if __name__ == "__main__":
    for name in sys.argv[1:] or SECTIONS:
        SECTIONS[name]()
