"""The one error type symcost raises for bad input, and how it names a place in a file."""

from __future__ import annotations

from collections.abc import Sequence


def dotted(path: Sequence[str | int]) -> str:
    """`('layers', 3, 'attention', 'heads')` -> `layers.3.attention.heads` (pydantic's spelling)."""
    return ".".join(str(p) for p in path)


class SpecError(Exception):
    """Bad input: one message that says where (file:line:column, field path) and what was expected.

    Library code names the API's parameters, never a command-line flag: a leading parameter is
    `param`, a setting inside the message is marked as `name=value` (backticks included). The CLI
    prints the message with each one as its flag (cli/_options.flagged) and exits with status 2.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: Sequence[str | int] = (),
        param: str | None = None,
    ) -> None:
        self.message = message
        # the API parameter the message leads with (`metric …`), or "dims" for a dim's name: the
        # command line's edge (cli/_options.py) names the flag instead
        self.param = param
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


class DoesNotFit(SpecError):
    """Valid input whose model does not fit the memory it is given ("needs X GiB, has Y GiB"): the
    command line exits with status 1, as `plan` does for a plan that does not fit."""
