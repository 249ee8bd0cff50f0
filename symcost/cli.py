"""symcost — closed-form parameter and FLOP formulas for neural architectures.

Every command is a few lines over the library (symcost.load, derive, evaluate, verify);
bad input is caught here and printed as one message, with exit status 2.
"""

from __future__ import annotations

import functools
import re
import sys
from decimal import Decimal, InvalidOperation

import click

from . import render
from .conventions import CONVENTIONS
from .errors import SpecError

EPILOG_DERIVE = """\b
Examples:
  symcost derive architectures/transformer.yaml
  symcost derive architectures/llama.yaml --keep d_head --format latex
"""
EPILOG_EVAL = """\b
Examples:
  symcost eval architectures/transformer.yaml
  symcost eval architectures/llama.yaml --set seq_len=2048 --set batch=8 --format json
"""
EPILOG_VERIFY = """\b
Examples:
  symcost verify architectures/transformer.yaml
  symcost verify architectures/llama.yaml --set n_layers=2 --backward --format json
"""

_SET = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)=(.+)$")


def _integer(text: str) -> int:
    """'1024', '50_257', '7e9' -> int; anything not a whole number is refused."""
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        raise ValueError from None
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError
    return int(value)


def parse_sets(items: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        m = _SET.match(item)
        try:
            if not m:
                raise ValueError
            out[m.group(1)] = _integer(m.group(2))
        except ValueError:
            raise SpecError(f"--set {item!r}: expected NAME=INTEGER, e.g. --set d_model=1024") from None
    return out


def edge(fn):
    """Turn symcost's errors into one line on stderr and exit status 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SpecError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)

    return wrapper


spec_argument = click.argument("spec", type=click.Path(dir_okay=True, path_type=str))
set_option = click.option(
    "--set", "sets", multiple=True, metavar="NAME=VALUE", help="Give a dim a value (repeatable): --set d_model=1024."
)
convention_option = click.option(
    "--convention",
    type=click.Choice(list(CONVENTIONS)),
    default="pytorch",
    show_default=True,
    help="FLOP convention: pytorch (FlopCounterMode), macs (= pytorch/2), full (+ elementwise, causal halved).",
)


def format_option(choices=render.FORMATS):
    return click.option("--format", "fmt", type=click.Choice(choices), default="text", show_default=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="symcost")
def main() -> None:
    """symcost: what an architecture costs, before you train it.

    Parameters and FLOPs as closed-form formulas in width, depth, sequence length and
    number of experts, the numbers they give, and an exact check against PyTorch.

    \b
    Examples:
      symcost derive architectures/transformer.yaml
      symcost eval architectures/llama.yaml --set seq_len=2048
      symcost verify architectures/transformer.yaml --backward
    """


@main.command(epilog=EPILOG_DERIVE)
@spec_argument
@click.option("--keep", multiple=True, metavar="NAME", help="Keep a derived dim as a symbol (repeatable).")
@click.option(
    "--leading",
    multiple=True,
    metavar="NAME",
    help="Show the totals' dominant terms as NAME grows (repeatable; default: image_size or seq_len).",
)
@convention_option
@format_option()
@edge
def derive(spec: str, keep: tuple[str, ...], leading: tuple[str, ...], convention: str, fmt: str) -> None:
    """Print the closed forms of params, active params and forward/backward/train FLOPs.

    Derived dims (d_ff: 4 * d_model) are substituted unless kept. A table gives each
    component's params, active params, forward FLOPs and how often each weight is used
    per input; the totals' leading terms show what dominates as the input grows.
    """
    from . import api

    s = api.load(spec)
    d = api.derive(s, convention, keep)
    api.evaluate(d)  # at the defaults, when every dim has one: catches heads not dividing width
    for name in leading:
        if name not in s.dimset:
            raise SpecError(f"--leading {name}: no such dim")
    default = [n for n in ("image_size", "seq_len") if n in d.free_symbols][:1]
    click.echo(render.render_derivation(d, fmt, leading or default))


@main.command(name="eval", epilog=EPILOG_EVAL)
@spec_argument
@set_option
@convention_option
@format_option()
@edge
def eval_(spec: str, sets: tuple[str, ...], convention: str, fmt: str) -> None:
    """Print exact numbers at the spec's sizes (defaults, overridden by --set)."""
    from . import api

    e = api.evaluate(api.derive(api.load(spec), convention), parse_sets(sets))
    click.echo(render.render_evaluation(e, fmt))


@main.command(epilog=EPILOG_VERIFY)
@spec_argument
@set_option
@click.option("--backward", is_flag=True, help="Also measure forward + backward (training) FLOPs.")
@click.option(
    "--device",
    type=click.Choice(["meta", "cpu"]),
    default="meta",
    show_default=True,
    help="meta allocates nothing (any size); cpu runs real tensors.",
)
@click.option(
    "--convention",
    type=click.Choice(["pytorch", "macs"]),
    default="pytorch",
    show_default=True,
    help="Compare under pytorch, or macs (both sides halved). `full` counts work the counter cannot see.",
)
@format_option(("text", "json"))
@edge
def verify(spec: str, sets: tuple[str, ...], backward: bool, device: str, convention: str, fmt: str) -> None:
    """Build the spec in PyTorch and compare every count with the formulas, exactly.

    Parameters are summed from the built module (tied weights once); FLOPs come from
    torch.utils.flop_counter.FlopCounterMode. Exit status 0 on a full match, 1 otherwise.
    """
    from . import api

    report = api.verify(api.load(spec), parse_sets(sets), backward=backward, device=device, convention=convention)
    click.echo(render.render_report(report, fmt))
    sys.exit(0 if report.match else 1)


if __name__ == "__main__":
    main()
