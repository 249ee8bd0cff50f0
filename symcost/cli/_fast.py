"""`symcost eval SPEC [--set NAME=VALUE]… [--convention C] [--format text|json]` answered
from the cache (symcost.cache) without click or sympy. Anything else — another command,
another option, a miss, any doubt — returns False and the full path runs."""

from __future__ import annotations

import os
import stat

from ..conventions import CONVENTIONS

OPTIONS = {"--set": "sets", "--convention": "convention", "--format": "fmt"}


def _parse(argv: list[str]) -> dict | None:
    if len(argv) < 2 or argv[0] != "eval" or argv[1].startswith("-"):
        return None
    out = {"spec": argv[1], "sets": [], "convention": "pytorch", "fmt": "text"}
    rest = argv[2:]
    while rest:
        token, rest = rest[0], rest[1:]
        option, inline, arg = token.partition("=")
        if option not in OPTIONS:
            return None
        if not inline:
            if not rest:
                return None
            arg, rest = rest[0], rest[1:]
        if option == "--set":
            out["sets"].append(arg)
        else:
            out[OPTIONS[option]] = arg
    if out["convention"] not in CONVENTIONS or out["fmt"] not in ("text", "json"):
        return None
    return out


def cached_eval(argv: list[str]) -> bool:
    """Print eval's answer from the cache and return True, or return False."""
    from ..limits import MAX_FILE_BYTES

    args = _parse(argv)
    if args is None:
        return False
    try:
        info = os.stat(args["spec"])
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return False
        with open(args["spec"], "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return False
    from ..errors import SpecError
    from ._sets import parse_sets

    try:
        values = parse_sets(tuple(args["sets"]))
    except SpecError:
        return False  # the full path reports it
    from .. import cache

    data = cache.lookup(raw, args["convention"], values)
    if data is None:
        return False
    if args["fmt"] == "json":
        import json

        text = json.dumps(data, indent=2)
    else:
        from ..render.model import evaluation_text

        text = evaluation_text(data)
    from ..render.text import printable

    print(printable(text))
    return True
