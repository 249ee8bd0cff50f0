"""sweep, solve, crossover, compare, approx and budget: exploring trade-offs."""

from __future__ import annotations

import click

from ..metrics import ALL_METRICS, METRICS
from ..render import render
from ._options import (
    check_plot, convention_option, dtype_option, echo, edge, exact, finetune_option, format_option, parse_sets, set_option,
    spec_argument, working, write_output,
)


def _vary(items: tuple[str, ...]) -> dict[str, list[int]]:
    from ..errors import SpecError
    from ..explore.sweep import parse_values

    out = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name:
            raise SpecError(f"--vary {item!r}: expected NAME=VALUES, e.g. --vary seq_len=1024..131072x2")
        if name in out:
            raise SpecError(f"--vary {name}: given twice; give one list of values per dim")
        out[name] = parse_values(values)
    return out


@click.command(epilog="""\b
Examples:
  symcost sweep architectures/llama.yaml --vary seq_len=1024..131072x2 --metric forward
  symcost sweep architectures/llama.yaml --vary d_model=2048:8192:1024 --vary n_layers=16,32 --format csv
  symcost sweep architectures/transformer.yaml --vary seq_len=128..8192x2 --plot cost.png --stack
""")
@spec_argument
@click.option("--vary", multiple=True, required=True, metavar="NAME=VALUES",
              help="Values of a dim: a list 1,2,4, a range 512:8192:512 or a series 1024..131072x2 (repeatable: a grid).")
@click.option("--metric", "metrics", multiple=True, type=click.Choice(ALL_METRICS),
              help="Metric to report (repeatable): parameters, FLOPs or bytes.")
@set_option
@convention_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False), help="Also draw the metrics against the first --vary (PNG).")
@click.option("--stack", is_flag=True, help="With --plot: each component's share of the first metric.")
@dtype_option
@edge
@finetune_option
def sweep(spec, vary, metrics, sets, convention, fmt, plot, stack, dtype) -> None:
    """Metrics over a grid of sizes, exactly and vectorised; invalid points are listed
    with their reason and the rest computed."""
    from .. import api
    from ..extras import require
    from ..precision import Precision

    check_plot(plot, spec)
    if plot:
        require("matplotlib", "plot", "--plot")
    metrics = metrics or ("params", "forward")
    with working("evaluating the grid", fmt):
        result = api.sweep(spec, _vary(vary), parse_sets(sets), metrics=metrics, convention=convention,
                           components=stack, precision=Precision(dtype))
    if plot:
        from ..explore.plot import plot_sweep

        write_output(plot, lambda path: plot_sweep(result, path, metrics, stack=stack))
    echo(render(result, fmt))


@click.command(epilog="""\b
Examples:
  symcost solve architectures/llama.yaml --target params=7e9 --for d_model --set n_layers=32
  symcost solve architectures/llama.yaml --target params=7e9 --for d_model --multiple-of 128
  symcost solve architectures/llama.yaml --target inference_bytes=80e9 --for seq_len --dtype bf16
""")
@spec_argument
@click.option("--target", required=True, metavar="METRIC=VALUE", help="e.g. params=7e9 or forward=1e15.")
@click.option("--for", "unknown", required=True, metavar="NAME", help="The dim to solve for.")
@click.option("--multiple-of", type=click.IntRange(min=1), default=1, show_default=True,
              help="Only sizes that are multiples of this count as valid neighbours.")
@dtype_option
@set_option
@convention_option
@format_option(("text", "json"))
@edge
@finetune_option
def solve(spec, target, unknown, multiple_of, dtype, sets, convention, fmt) -> None:
    """The size of one dim at which a metric reaches a target: the root, the nearest valid
    sizes on each side with the metric at each, why nearer sizes are invalid, and the dims
    held fixed."""
    import sympy

    from .. import api
    from ..errors import SpecError
    from ..precision import Precision

    metric, sep, value = target.partition("=")
    if not sep:
        raise SpecError(f"--target {target!r}: expected METRIC=VALUE, e.g. params=7e9")
    goal = exact(value, "--target")
    solution = api.solve(spec, metric, sympy.Rational(goal.numerator, goal.denominator), unknown, parse_sets(sets),
                         multiple_of=multiple_of, convention=convention, precision=Precision(dtype), target_text=value)
    echo(render(solution, fmt))


@click.command(epilog="""\b
Examples:
  symcost crossover architectures/transformer.yaml --between attention:scores+values mlp --in seq_len
  symcost crossover architectures/mixtral.yaml --between attention moe --in seq_len --metric train
""")
@spec_argument
@click.option("--between", nargs=2, required=True, metavar="PART_A PART_B",
              help="Components by type or path, optionally with parts: attention:scores+values.")
@click.option("--in", "unknown", required=True, metavar="NAME", help="The dim along which they cross.")
@click.option("--metric", type=click.Choice(METRICS), default="forward", show_default=True)
@set_option
@convention_option
@format_option(("text", "json"))
@edge
def crossover(spec, between, unknown, metric, sets, convention, fmt) -> None:
    """Where two parts' costs are equal: a closed form, and the number at the spec's sizes."""
    from .. import api

    c = api.crossover(spec, between[0], between[1], unknown, parse_sets(sets), metric=metric, convention=convention)
    echo(render(c, fmt))


@click.command(epilog="""\b
Examples:
  symcost compare architectures/llama.yaml architectures/mixtral.yaml
  symcost compare architectures/llama.yaml architectures/mixtral.yaml --vary seq_len=1024..32768x2
""")
@click.argument("spec_a", type=click.Path(path_type=str))
@click.argument("spec_b", type=click.Path(path_type=str))
@set_option
@click.option("--vary", metavar="NAME=VALUES", help="Compare across the values of one dim both specs declare.")
@dtype_option
@convention_option
@format_option(("text", "json"))
@edge
def compare(spec_a, spec_b, sets, vary, dtype, convention, fmt) -> None:
    """Two specs side by side: params, active params, FLOPs per token, weight reuse, bytes, and B / A."""
    from .. import api
    from ..precision import Precision

    varied = next(iter(_vary((vary,)).items())) if vary else None
    c = api.compare(spec_a, spec_b, parse_sets(sets), varied=varied, convention=convention, precision=Precision(dtype))
    echo(render(c, fmt))


@click.command(epilog="""\b
Examples:
  symcost approx architectures/transformer.yaml
  symcost approx architectures/llama.yaml --set seq_len=2048 --format json
""")
@spec_argument
@set_option
@convention_option
@format_option(("text", "json"))
@edge
def approx(spec, sets, convention, fmt) -> None:
    """Published estimates (6·N·D, Kaplan, Chinchilla, Megatron) next to the exact count,
    with their relative error as a closed form and at the spec's sizes."""
    from .. import api

    echo(render(api.approx(spec, parse_sets(sets), convention=convention), fmt))


@click.command(epilog="""\b
Examples:
  symcost budget architectures/llama.yaml --tokens 2e12
  symcost budget architectures/llama.yaml --flops 1e23
  symcost budget architectures/llama.yaml --flops 1e23 --optimal-for d_model --multiple-of 128
""")
@spec_argument
@click.option("--tokens", help="Training tokens: gives total compute.")
@click.option("--flops", help="A compute budget: gives tokens (or, with --optimal-for, a size).")
@click.option("--optimal-for", metavar="NAME",
              help="Solve NAME so that a compute-optimal run (tokens = 20 x params) costs --flops.")
@click.option("--tokens-per-param", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--multiple-of", type=click.IntRange(min=1), default=1, show_default=True)
@set_option
@convention_option
@format_option(("text", "json"))
@edge
def budget(spec, tokens, flops, optimal_for, tokens_per_param, multiple_of, sets, convention, fmt) -> None:
    """Training compute from the exact count: tokens -> FLOPs, FLOPs -> tokens, and the
    compute-optimal size of Hoffmann et al. 2022 for a budget."""
    from .. import api

    echo(render(api.budget(spec, parse_sets(sets), tokens=tokens, flops=flops, optimal_for=optimal_for,
                       tokens_per_param=tokens_per_param, multiple_of=multiple_of, convention=convention), fmt))
