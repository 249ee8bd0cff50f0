"""import-hf: a spec from a Hugging Face config."""

from __future__ import annotations

from pathlib import Path

import click

from ..render.text import printable
from ._options import check_output, edge, write_output


@click.command(name="import-hf", epilog="""\b
Examples:
  symcost import-hf config.json -o llama3.yaml
  symcost import-hf path/to/Meta-Llama-3-8B/ -o llama3.yaml
  symcost import-hf --model-id meta-llama/Meta-Llama-3-8B -o llama3.yaml
  symcost import-hf config.json | symcost eval /dev/stdin
""")
@click.argument("config", required=False, type=click.Path(path_type=str))
@click.option("--model-id", metavar="ORG/NAME", help="Read its config.json from the local Hugging Face cache (no network).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str), help="Write the spec here (default: stdout).")
@click.option("--name", help="The spec's name (default: the config's _name_or_path, else its file's or model directory's name).")
@click.option("--head", type=click.Choice(["lm", "mlm", "classifier", "none"]),
              help="The model's head (default: the one the config's `architectures` names: …ForCausalLM, "
                   "…ForMaskedLM, …ForSequenceClassification, or the bare …Model).")
@edge
def import_hf(config, model_id, output, name, head) -> None:
    """Write a spec from a Hugging Face config.json (CONFIG, a model directory holding one, or
    --model-id from the local cache): the config's values become dims under symcost's names.
    Reads only the JSON. Fields that change no count (token ids, dropouts, dtypes, auto_map,
    quantization_config, …) are listed as ignored; any other field it does not understand is an
    error naming the field, never a silently wrong spec."""
    from .. import api
    from ..hf import locate

    path = str(locate(config, model_id))
    if output:
        check_output(output, path)
    imported = api.import_hf(path, name=name, head=head)
    for note in imported.notes:
        click.echo(printable(f"note: {note}"), err=True)
    if imported.ignored:
        click.echo(printable("ignored (they change no count): " + ", ".join(imported.ignored)), err=True)
    if output:
        write_output(output, lambda out: Path(out).write_text(imported.yaml))
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(imported.yaml, nl=False)
