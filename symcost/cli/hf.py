"""import-hf: a spec from a Hugging Face config."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import SpecError
from ._options import check_output, echo, edge, write_output


@click.command(name="import-hf", epilog="""\b
Examples:
  symcost import-hf config.json -o llama3.yaml
  symcost import-hf config.json | symcost eval /dev/stdin
""")
@click.argument("config", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str), help="Write the spec here (default: stdout).")
@click.option("--name", help="The spec's name (default: the config's _name_or_path, else its model_type).")
@edge
def import_hf(config, output, name) -> None:
    """Write a spec from a Hugging Face config.json: the config's values become dims under
    symcost's names. Reads only the JSON; an architecture field it does not understand is
    an error naming the field, never a silently wrong spec."""
    from .. import api
    from ..hf import import_config, read_config

    if output:
        check_output(output, config)
    data, raw = read_config(config)
    text = import_config(data, source=config, name=name, text=raw)
    try:  # the spec must load, and hold at its own sizes (heads dividing the width, …), before anyone sees it
        api.evaluate(api.loads(text, name=output or "<import-hf>"))
    except SpecError as e:
        raise SpecError(f"the config's sizes do not make a valid model: {e.reason}", file=config) from None
    if output:
        write_output(output, lambda path: Path(path).write_text(text))
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
