"""page: a spec as one HTML file that computes its numbers in the browser, exactly and offline."""

from __future__ import annotations

import click

from ._options import (check_output, convention_option, dtype_option, echo, edge, parse_sets, set_option, spec_argument,
                       write_output)


@click.command(epilog="""\b
Examples:
  symcost page architectures/llama.yaml -o llama.html
  symcost page architectures/mixtral.yaml -o mixtral.html --set seq_len=32768 --dtype fp8
""")
@spec_argument
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@set_option
@convention_option
@dtype_option
@edge
def page(spec: str, output: str, sets: tuple[str, ...], convention: str, dtype: str) -> None:
    """Write SPEC as one self-contained HTML page: a control per free dim, the exact numbers
    (params, FLOPs, FLOPs per token, bytes), a per-component breakdown, a plot and the closed
    forms. It opens from disk, needs no network, and its numbers equal `symcost eval`'s.

    --set gives the sizes it opens at; --dtype the bytes per value of its byte metrics.
    """
    from .. import api

    check_output(output, spec)
    built = api.page(api.load(spec), parse_sets(sets), convention=convention, dtype=dtype)
    write_output(output, built.write)
    echo(f"wrote {output} ({len(built.html.encode()):,} bytes)")
