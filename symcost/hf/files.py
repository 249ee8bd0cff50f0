"""Finding a config (a file, a model directory, or the local Hugging Face cache) and reading it,
with each top-level field's line and column for errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import SpecError


def locate(config: str | None, model_id: str | None) -> Path:
    """The config.json to read: CONFIG itself, CONFIG/config.json for a model directory, or the
    one in the local Hugging Face cache for --model-id (the snapshot refs/main names, else the
    newest). Nothing is downloaded."""
    import os

    if (config is None) == (model_id is None):
        raise SpecError("give a config.json or a model directory, or `model_id=ORG/NAME` (one of them)")
    if config is not None:
        path = Path(config)
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise SpecError("a model directory without config.json", file=config)
            return path / "config.json"
        return path
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", model_id) or ".." in model_id:
        raise SpecError(f"model_id {model_id!r}: expected ORG/NAME, as on the Hub", param="model_id")
    root = Path(os.environ.get("HF_HUB_CACHE") or Path(
        os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
        / "hub")
    repo = root / ("models--" + model_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    snapshots = [repo / "snapshots" / ref.read_text().strip()] if ref.is_file() else []
    snapshots += sorted((repo / "snapshots").glob("*"), key=lambda d: d.stat().st_mtime, reverse=True) if (
        repo / "snapshots").is_dir() else []
    for snapshot in snapshots:
        if (snapshot / "config.json").is_file():
            return snapshot / "config.json"
    raise SpecError(f"model_id {model_id}: no config.json for it in the local Hugging Face cache ({root}); "
                    "symcost does not download: pass the config.json or the model directory", param="model_id")


def read_config(path: str | Path) -> tuple[dict, str]:
    """A config.json's data and its text."""
    from ..source import read_bytes

    try:
        text = read_bytes(path, "a JSON config", "configs").decode("utf-8")
        return json.loads(text), text
    except UnicodeDecodeError as e:
        raise SpecError(f"cannot read: {e}", file=str(path)) from None
    except json.JSONDecodeError as e:
        raise SpecError(f"not JSON: {e.msg}", file=str(path), line=e.lineno, column=e.colno) from None
    except RecursionError:
        raise SpecError("JSON nested too deeply", file=str(path)) from None


def key_places(text: str) -> dict[str, tuple[int, int]]:
    """(line, column) of each key of the top-level JSON object, where it is first written."""
    places: dict[str, tuple[int, int]] = {}
    depth, line, start, i, key_next = 0, 1, 0, 0, False
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line, start = line + 1, i + 1
        elif ch == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if depth == 1 and key_next:
                places.setdefault(json.loads(text[i:j + 1]), (line, i - start + 1))
            key_next, i = False, j
        elif ch in "{[":
            depth += 1
            key_next = ch == "{" and depth == 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 1:
            key_next = True
        i += 1
    return places
