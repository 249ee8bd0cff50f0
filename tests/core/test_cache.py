"""The eval cache holds code the next eval runs, so it trusts nothing it did not write: an edited,
truncated, non-UTF-8 or foreign entry (in a directory or file another user can write) is a miss,
never obeyed, never a crash."""

import json
import os
import subprocess
import sys

import pytest

from conftest import arch


def run_eval(cache):
    """`symcost eval llama --format json` in its own process, as a user runs it (the cached path runs
    before the command line is parsed)."""
    return subprocess.run([sys.executable, "-m", "symcost", "eval", arch("llama"), "--format", "json"],
                          capture_output=True, text=True, env={**os.environ, "SYMCOST_CACHE_DIR": str(cache)})


@pytest.fixture
def cached(tmp_path):
    """An eval of llama answered once and stored; returns (the entry's path, eval's JSON)."""
    first = run_eval(tmp_path / "cache")
    assert first.returncode == 0
    (entry,) = (tmp_path / "cache").glob("eval-*.py")
    return entry, json.loads(first.stdout)


def answer(entry):
    out = run_eval(entry.parent)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_cache_is_made_private_and_its_entries_are_sealed(cached):
    entry, _ = cached
    assert entry.stat().st_mode & 0o077 == 0 and entry.parent.stat().st_mode & 0o077 == 0
    assert entry.read_text().startswith("# sha256 ")


def test_an_edited_entry_is_ignored_not_obeyed(cached):
    entry, truth = cached
    text = entry.read_text()
    entry.write_text(text.replace("def evaluate(values):", "def evaluate(values):\n    1/0", 1))  # seal unchanged
    assert answer(entry) == truth
    lied = text.split("\n", 1)[1].replace("def evaluate(values):", "def evaluate(values):\n    1/0", 1)
    entry.write_text(text.split("\n", 1)[0] + "\n" + lied)  # same seal, other code
    assert answer(entry) == truth
    assert "1/0" not in entry.read_text()  # the miss was answered by the full path and stored afresh


@pytest.mark.parametrize("damage", [b"\xff\xfe not UTF-8", b"", b"# sha256 0\n"])
def test_a_damaged_entry_is_a_miss(cached, damage):
    entry, truth = cached
    entry.write_bytes(damage)
    assert answer(entry) == truth


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
@pytest.mark.parametrize("where", ["entry", "directory"])
def test_an_entry_others_could_write_is_not_run(cached, where):
    entry, truth = cached
    poisoned = entry.read_text().split("\n", 1)[1].replace("def evaluate(values):", "def evaluate(values):\n    1/0", 1)
    import hashlib

    sealed = f"# sha256 {hashlib.sha256(poisoned.encode()).hexdigest()}\n{poisoned}"  # a valid seal
    entry.write_text(sealed)
    target = entry if where == "entry" else entry.parent
    target.chmod(target.stat().st_mode | 0o022)  # group- and world-writable: anyone could have written it
    assert answer(entry) == truth
    entry.parent.chmod(0o700)
    entry.write_text(sealed)
    entry.chmod(0o600)
    control = run_eval(entry.parent)  # the same entry, private: run (so the cases above would have run it)
    assert control.returncode == 1 and "ZeroDivisionError" in control.stderr
