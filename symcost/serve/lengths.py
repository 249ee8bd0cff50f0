"""A mix of request lengths for `serve`: a CSV file of `prompt,output` token counts, one row a request or,
with a `count` column, a row for that many requests of those lengths (a histogram)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import SpecError

COLUMNS = ("prompt", "output", "count")
MAX_ROWS = 100_000  # distinct lengths: every one is a prefill bound and a cache size


def read(path: str | Path) -> tuple[tuple[int, int, int], ...]:
    """The file's (prompt, output, count) rows; one line naming the file and row of anything else."""
    from ..source import read_bytes

    where = str(path)
    try:
        rows = csv.DictReader(read_bytes(path, "a CSV file of lengths").decode("utf-8-sig").splitlines())
        header = rows.fieldnames or []
        if not {"prompt", "output"} <= set(header) or set(header) - set(COLUMNS):
            raise SpecError(f"expected the columns prompt,output and optionally count; got {','.join(header)}",
                            file=where, line=1)
        shapes = []
        for row in rows:
            if len(shapes) == MAX_ROWS:
                raise SpecError(f"more than {MAX_ROWS:,} rows: group like lengths with a count column",
                                file=where, line=rows.line_num)
            shapes.append(tuple(_count(row.get(k) or ("1" if k == "count" else ""), k, where, rows.line_num)
                                for k in COLUMNS))
    except (UnicodeDecodeError, csv.Error) as e:
        raise SpecError(f"not a CSV file of lengths: {e}", file=where) from None
    if not shapes:
        raise SpecError("no requests: give a row of prompt,output token counts", file=where, line=2)
    return tuple(shapes)


def _count(text: str, column: str, where: str, line: int) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) < 1:
        raise SpecError(f"{column} {text!r}: expected a whole number of {'requests' if column == 'count' else 'tokens'}"
                        " from 1", file=where, line=line)
    return int(text)
