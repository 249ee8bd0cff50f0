"""`python -m symcost`: the same as the `symcost` command."""

from .cli import run

run()
