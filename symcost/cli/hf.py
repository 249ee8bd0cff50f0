"""import-hf: a spec from a Hugging Face config."""

from __future__ import annotations

import click

from ._options import echo, edge


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

    text = import_config(read_config(config), source=config, name=name)
    api.loads(text, name=output or "<import-hf>")  # the spec must load before anyone sees it
    if output:
        with open(output, "w") as f:
            f.write(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
