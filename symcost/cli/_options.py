"""What the commands share: the error edge, option parsers and option bundles.

Light on purpose (no sympy, pydantic or numpy): `--help` of every command imports this.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import threading
import time

import click

from ..conventions import CONVENTIONS
from ..errors import DoesNotFit, SpecError
from ..precision import BYTES
from ..render.text import printable
from ..literals import exact, integer  # noqa: F401  (the commands' parsers, re-exported)
from ._sets import parse_sets  # noqa: F401

# The library names the API's parameters; a user of the command line knows them as these flags.
# An error's leading parameter (SpecError.param) and each `name=value` marked in its message become
# the flag: an option's own, or --set for a dim.
FLAGS = {"dims": "--set", "values": "--set", "keep": "--keep", "metric": "--metric", "vary": "--vary", "smallest": "--smallest",
         "model_id": "--model-id", "head": "--head", "gpus": "--gpus", "zero": "--zero", "device": "--device",
         "attention": "--attention", "tokens": "--tokens", "flops": "--flops",
         "optimal_for": "--optimal-for", "unknown": "--for", "fit": "--fit", "quantization": "--weights-format",
         "prompt": "--prompt-tokens", "output": "--output-tokens",
         "hit_rate": "--expert-hit-rate"}


# The library's parameters that are options of some command under their own names (--tp, --price, …)
OPTIONS = {"tp", "pp", "dp", "ep", "cp", "micro_batch", "global_batch", "virtual_stages", "first_stage_layers",
           "last_stage_layers", "stage_layers", "schedule", "sequence_parallel", "recompute", "optimizer", "mfu",
           "overlap", "price",
           "tokens_per_second", "top", "bootstrap", "multiple_of", "serve", "serve_context", "law", "fit", "grid",
           "concurrency"}


RECOMPUTE_HELP = ("Activation recomputation: none, selective (attention cores), full (each pass of the main repeat), "
                  "or a comma list of parts: attention (its core), activation (each MLP's and expert's act(gate) x "
                  "up), norm, mlp, moe (each such layer checkpointed whole).")


def recompute_option(default: str | None = "none", help: str = RECOMPUTE_HELP):
    """--recompute: a mode or a list of parts, checked where the library reads it (precision.recompute_setting)."""
    return click.option("--recompute", metavar="MODE|PARTS", default=default, show_default=default is not None,
                        help=help)


def flag(param: str) -> str:
    """The command line's name of a library parameter (one already named as on the command line, `--set
    seq_len`, as it is)."""
    if param.startswith("--"):
        return param
    return FLAGS.get(param) or "--" + param.replace("_", "-")


def flagged(e: SpecError) -> str:
    """The error as the command line says it: flags where the library names parameters."""
    text = str(e)
    if e.param == "dims":
        text = f"--set {text}"
    elif e.param and text.startswith((e.param + " ", e.param + ":")):
        text = flag(e.param) + text[len(e.param):]

    def setting(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        if name in FLAGS or name in OPTIONS:
            return f"{flag(name)} {value}".rstrip()
        return f"--set {name}={value}"

    return re.sub(r"`(\w+)=([^`]*)`", setting, text)




def edge(fn):
    """Turn symcost's errors into one line on stderr and exit status 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SpecError as e:
            click.echo(printable(f"error: {flagged(e)}"), err=True)
            sys.exit(1 if isinstance(e, DoesNotFit) else 2)

    return wrapper


@contextlib.contextmanager
def working(what: str, fmt: str = "text", after: float = 0.5):
    """While a long command runs, a line on stderr saying what it does and for how long, cleared
    when it ends: on a terminal only, and never under --format json (stdout stays the document)."""
    if fmt == "json" or not sys.stderr.isatty():
        yield
        return
    start, stop = time.monotonic(), threading.Event()

    def tick():
        while not stop.wait(after):
            sys.stderr.write(f"\r{what}… {time.monotonic() - start:.0f} s")
            sys.stderr.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def echo(text: str) -> None:
    click.echo(printable(text))


def check_output(output: str, *inputs: str) -> None:
    """Refuse to write over one of the command's own inputs."""
    import os

    for given in inputs:
        same = os.path.exists(output) and os.path.exists(given) and os.path.samefile(output, given)
        if same or os.path.realpath(output) == os.path.realpath(given):
            raise SpecError(f"{output} is also the command's input {given}; write the output elsewhere")


IMAGE_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "webp", "tif", "tiff", "eps", "ps")


def check_plot(plot: str | None, *inputs: str) -> None:
    """A --plot path must name an image (its extension says which format matplotlib writes), in a
    directory that exists, and not be one of the command's inputs."""
    import os

    if plot is None:
        return
    if not plot.strip():
        raise SpecError("--plot needs a file name")
    check_output(plot, *inputs)
    extension = os.path.splitext(plot)[1].lower().lstrip(".")
    if extension not in IMAGE_FORMATS:
        raise SpecError(f"--plot {plot}: expected an image file name ending in .{', .'.join(IMAGE_FORMATS)}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(plot))):
        raise SpecError(f"--plot {plot}: no directory {os.path.dirname(plot) or '.'}")


def write_output(output: str, write) -> None:
    """Run `write(path)`; a destination that cannot be written is one line, not a traceback."""
    try:
        write(output)
    except OSError as e:
        raise SpecError(f"cannot write: {e.strerror or e}", file=output) from None


spec_argument = click.argument("spec", type=click.Path(dir_okay=True, path_type=str))

FINETUNE_HELP = ("Train the spec as this fine-tune says, in place of its finetune block: the method, then "
                 "key=value fields, lists joined by '+' (qlora,rank=16 or lora,rank=8,targets=q_proj+v_proj).")
LISTS = ("targets", "trainable")  # the finetune fields that hold lists


def parse_finetune(text: str) -> dict:
    """`lora,rank=16,targets=q_proj+v_proj` as the fields of a finetune block: the method first (or
    method=…), values as YAML would read them (16, 0.05, true), lists joined by '+'."""
    return parse_block(text, "method", "finetune", LISTS)


def parse_block(text: str, head: str, param: str, lists=()) -> dict:
    """`first,key=value,…` as the fields of a block: the first item is the `head` field (or head=…)."""
    fields: dict = {}
    for i, item in enumerate(x.strip() for x in text.split(",")):
        key, eq, value = item.partition("=")
        if not eq and i == 0:
            key, value = head, key
        elif not eq or not key.strip():
            raise SpecError(f"{param} {item!r}: expected key=value after the {head}", param=param)
        key, value = key.strip(), value.strip()
        if key in fields:
            raise SpecError(f"{param} {key}: given twice", param=param)
        fields[key] = value.split("+") if key in lists and value != "all-linear" else _scalar(value)
    return fields


def _scalar(value: str):
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"[0-9]+", value):
        return int(value)
    if re.fullmatch(r"[0-9]*\.[0-9]+", value):
        return float(value)
    return value


def finetune_option(fn):
    """--finetune: the command's SPEC argument, a path, becomes the spec trained that way."""

    @functools.wraps(fn)
    def wrapper(*args, finetune: str | None, **kwargs):
        if finetune is not None:
            from .. import api

            kwargs["spec"] = api.finetune(api.load(kwargs["spec"]), **parse_finetune(finetune))
        return fn(*args, **kwargs)

    return click.option("--finetune", metavar="METHOD,KEY=VALUE…", help=FINETUNE_HELP)(wrapper)
set_option = click.option(
    "--set", "sets", multiple=True, metavar="NAME=VALUE", help="Give a dim a value (repeatable): --set d_model=1024."
)
convention_option = click.option(
    "--convention",
    type=click.Choice(list(CONVENTIONS)),
    default="pytorch",
    show_default=True,
    help="FLOP convention: pytorch (FlopCounterMode), macs (= pytorch/2), kernel (causal attention's kept scores "
         "only), full (+ elementwise, causal halved).",
)
dtype_option = click.option(
    "--dtype", type=click.Choice(list(BYTES)), default="bf16", show_default=True,
    help="Bytes per value: weights, and unless overridden cached values and gradients (the byte metrics).",
)


formulas_option = click.option("--formulas", is_flag=True, help="Show each figure's closed form beside its number.")


def format_option(choices=("text", "json", "markdown", "latex")):
    return click.option("--format", "fmt", type=click.Choice(choices), default="text", show_default=True)
