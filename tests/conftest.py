import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from symcost.cli import main

# Text is fitted to $COLUMNS, else to the terminal: the tests read it at one width whatever
# runs them (a narrow terminal, or pytest-xdist's workers).
os.environ["COLUMNS"] = "100"

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURES = ROOT / "architectures"


def arch(name: str) -> str:
    return str(ARCHITECTURES / f"{name}.yaml")


def block_spec(d: int, n: int, b: int, layer: str):
    """Token ids of n tokens x b sequences, embedded at width d, through one RMSNorm + `layer`
    block (a layer's YAML flow mapping, `mamba: {...}`)."""
    import symcost

    return symcost.loads(f"name: m\ndims: {{seq_len: {n}, batch: {b}}}\nlayers:\n  - embedding: {{vocab: 7, dim: {d}}}\n"
                         f"  - repeat: 1\n    layers:\n      - rmsnorm: {{dim: {d}}}\n      - {layer}\n")


@pytest.fixture
def cli():
    """Run `symcost ARGS…` in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def write(tmp_path):
    """Write a spec file and return its path."""

    def _write(text: str, name: str = "spec.yaml") -> str:
        p = tmp_path / name
        p.write_text(text)
        return str(p)

    return _write


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    """eval's cache of derived forms goes to a directory of the test session, not the user's."""
    monkeypatch.setenv("SYMCOST_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "symcost-cache"))
