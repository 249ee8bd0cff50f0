"""The one error type symcost raises for bad input, and how it names a place in a file."""

from __future__ import annotations

from collections.abc import Sequence


def dotted(path: Sequence[str | int]) -> str:
    """`('layers', 3, 'attention', 'heads')` -> `layers.3.attention.heads` (pydantic's spelling)."""
    return ".".join(str(p) for p in path)


class SpecError(Exception):
    """Bad input: one message that says where (file:line:column, field path) and what was expected.

    The CLI prints `str(error)` and exits with status 2; nothing else about it is special.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: Sequence[str | int] = (),
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = tuple(path)
        super().__init__(str(self))

    @property
    def reason(self) -> str:
        """The field path and message without the file's place: why one set of sizes is invalid."""
        return (f"{dotted(self.path)}: " if self.path else "") + self.message

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}:{self.column or 1}"
            where += ": "
        return where + self.reason
