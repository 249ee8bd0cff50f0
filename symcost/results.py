"""What every result of the API shares: plain data (`to_dict()`, the shape of `--format
json`), text for the terminal (`str()`), a short summary (`repr()`), and displays for
Jupyter (`_repr_html_`, and `_repr_latex_` where there are formulas)."""

from __future__ import annotations

import html


class Result:
    """Subclasses implement `to_dict()`, `text(width)` and `summary()` (title, rows)."""

    def to_dict(self) -> dict:
        raise NotImplementedError

    def text(self, width: int | None = None) -> str:
        raise NotImplementedError

    def summary(self) -> tuple[str, list[tuple[str, str]]]:
        """A title and (label, value) rows: the few lines worth seeing first."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        title, rows = self.summary()
        width = max((len(k) for k, _ in rows), default=0)
        return "\n".join([f"<{type(self).__name__}: {title}>", *(f"  {k:<{width}}  {v}" for k, v in rows)])

    def _repr_html_(self) -> str:
        title, rows = self.summary()
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:right'>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<div><strong>{html.escape(title)}</strong><table>{body}</table></div>"

    def _repr_markdown_(self) -> str:
        title, rows = self.summary()
        return "\n".join([f"**{title}**", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


def frame(records: list[dict]):
    """A pandas DataFrame of `records` (pandas is optional: symcost[pandas])."""
    from .extras import require

    pd = require("pandas", "pandas", "to_pandas()")
    return pd.DataFrame.from_records(records)
