"""The printers: numpy forms equal exact evaluation (past int64 too), and the JavaScript compiler
refuses what it cannot compute exactly. (Their users are tested in their rooms: the page in the
browser, flops-per-token's module in plan, the eval cache in robustness.)"""

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symcost
from conftest import arch
from published import llama_forward
from symcost.codegen.js import Unsupported, js
from symcost.codegen.vectorized import Vectorized

GRID = {
    "transformer": dict(d_model=st.integers(1, 400).map(lambda k: 12 * k), n_layers=st.integers(1, 200),
                        seq_len=st.integers(1, 1024)),
    "resnet50": dict(image_size=st.integers(1, 1000), w=st.integers(1, 128), batch=st.integers(1, 64)),
    "gemma2": dict(seq_len=st.integers(1, 1 << 20), window=st.integers(1, 1 << 16)),
    "llama": dict(seq_len=st.integers(1, 1 << 26), d_model=st.sampled_from([64 * k for k in (1, 100, 1000, 100000)])),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GRID))
@pytest.mark.parametrize("convention", ["pytorch", "full"])
def test_vectorized_equals_evaluate(name, convention):
    """The compiled forms agree with exact evaluation, past int64 too (llama at 2^26 tokens)."""
    spec = symcost.load(arch(name))
    derivation = symcost.derive(spec, convention)

    @settings(max_examples=30, deadline=None, derandomize=True)
    @given(st.fixed_dictionaries(GRID[name]))
    def check(point):
        exact = symcost.evaluate(derivation, point).total
        values = {str(s): int(v) for s, v in symcost.evaluate(derivation, point).dims.items()}
        for metric in ("params", "forward", "train"):
            assert int(Vectorized(derivation.total.metrics()[metric])(values)) == exact[metric]

    check()


def test_vectorized_overflow_goes_exact():
    d = symcost.derive(symcost.load(arch("llama")))
    n = np.array([4096, 10**9])
    out = Vectorized(d.total.train)({"batch": 1, "d_model": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 32,
                                     "d_ff": 11008, "vocab": 32000, "seq_len": n})
    assert out[1] == 3 * llama_forward(10**9) and out[1] > 2**63  # a Python int, not a wrapped int64
    assert out[0] == 3 * llama_forward(4096)


def test_compiler_refuses_what_it_cannot_do_exactly():
    x = sympy.Symbol("x", positive=True, integer=True)
    with pytest.raises(Unsupported):
        js(sympy.sqrt(x))
    with pytest.raises(Unsupported):
        js(sympy.sin(x))
    assert js(sympy.Rational(3, 4) * x) == "mul(q(3n,4n),v[\"x\"])"
