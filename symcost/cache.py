"""A cache of derived forms as generated Python, so that a repeated `eval` imports no sympy.

An entry is keyed by the sha256 of the spec's bytes, the convention, symcost's version and
a fingerprint of its source files (their sizes and modification times: an edited checkout
or a reinstall is another key, as a new version is — never stale). It holds:
- `evaluate(values)`: every dim, and every component's params, active params and forward
  and backward FLOPs, as integer Python (floors and divisions as `//` of exact integer
  polynomials, printed by codegen.python.evaluator); it returns eval's JSON data;
- `CHECKED`: the --set combinations at which the spec's constraints (heads dividing
  width, positive sizes, …) were checked by the full path. Only those are answered from
  the cache; any other point goes through the full path once, which adds it.

Where: $SYMCOST_CACHE_DIR, else $XDG_CACHE_HOME/symcost, else ~/.cache/symcost. A cache
that cannot be read or written is skipped without a word: it only ever saves time. An entry is
code the next eval runs, so one is read only from a directory and a file that this user owns and no
group or other can write (the directory is made 0700, entries 0600), and only if its first line's
sha256 is that of the rest: an edited, truncated, non-UTF-8 or foreign entry is a miss.
"""

from __future__ import annotations

import functools
import os

from . import __version__

MAX_CHECKED = 256  # points remembered per entry (the newest win)


def directory():
    from pathlib import Path

    if root := os.environ.get("SYMCOST_CACHE_DIR"):
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symcost"


@functools.cache  # once a process: a miss and then its store would walk the files twice
def _fingerprint() -> str:
    """symcost's build: its version, and the size and mtime of each of its source files."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256(__version__.encode())
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        h.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def _entry(digest: str, convention: str):
    return directory() / f"eval-{digest}-{convention}-{__version__}-{_fingerprint()}.py"


def _owned(path) -> bool:
    """Whether only this user can have written `path` (a file or directory): owned by them, and
    writable by no group or other. An entry is code the next eval runs: as ssh does with its keys,
    symcost runs none that another user could have written."""
    import stat

    try:
        info = os.stat(path)
    except OSError:
        return False
    return (not hasattr(os, "getuid") or info.st_uid == os.getuid()) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _sealed(source: str) -> str:
    """The entry's text: its source under a first line holding the source's sha256."""
    import hashlib

    return f"# sha256 {hashlib.sha256(source.encode()).hexdigest()}\n{source}"


def _load(path) -> dict | None:
    """The entry's namespace (its source under SOURCE), or None for a missing, damaged, edited or
    foreign one: in a directory or file another user could write, not UTF-8, or whose first line's
    sha256 is not its text's."""
    if not (_owned(path.parent) and _owned(path)):
        return None
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    source = text.partition("\n")[2]
    if _sealed(source) != text:
        return None
    namespace: dict = {}
    try:
        exec(compile(source, str(path), "exec"), namespace)  # our own generated file (see store)
    except Exception:  # a damaged entry is a miss
        return None
    namespace["SOURCE"] = source
    return namespace if namespace.get("VERSION") == __version__ else None


def _point(values: dict) -> tuple:
    """The --set values as a key: a rate's Fraction as its text ('1/10'), so that CHECKED's repr reads back."""
    return tuple(sorted((k, v if isinstance(v, int) else str(v)) for k, v in values.items()))


def lookup(raw: bytes, convention: str, values: dict[str, int]) -> dict | None:
    """eval's data for the spec with these bytes at `values`, if cached and checked there."""
    import hashlib

    entry = _load(_entry(hashlib.sha256(raw).hexdigest(), convention))
    if entry is None or _point(values) not in entry["CHECKED"]:
        return None
    return entry["evaluate"](dict(values))


def store(evaluation, values: dict[str, int]) -> None:
    """Remember the evaluation's derived forms, and that `values` passed every check."""
    derivation = evaluation.derivation
    digest = derivation.spec.doc.digest
    if not digest:
        return
    path = _entry(digest, derivation.convention.name)
    old = _load(path)
    checked = [p for p in (old["CHECKED"] if old else ()) if p != _point(values)] + [_point(values)]
    # The same key means the same derived forms: only a new entry pays for printing them.
    if old:
        source = old["SOURCE"]
    else:
        from .codegen.python import evaluator

        source = evaluator(evaluation)
    text = "\n".join(f"CHECKED = {set(checked[-MAX_CHECKED:])!r}" if line.startswith("CHECKED = ") else line
                     for line in source.split("\n"))
    import tempfile

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _owned(path.parent):  # never write where another user could put code of theirs beside it
            return
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:  # mode 0600
            f.write(_sealed(text))
        os.replace(f.name, path)  # whole or not at all, even with two evals at once
    except OSError:
        return
