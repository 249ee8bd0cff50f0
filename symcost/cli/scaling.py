"""scaling: fit a scaling law to runs; the compute-optimal size with exact compute; specs at a budget."""

from __future__ import annotations

import click

from ..render import render
from ._options import (check_plot, echo, edge, format_option, parse_sets, set_option, spec_argument, working,
                       write_output)

law_option = click.option("--law", help="A published law: hoffmann2022 (the default), besiroglu2024, kaplan2020.")
fit_option = click.option("--fit", "fit_file", type=click.Path(dir_okay=False),
                          help="A fit written by `scaling fit --format json` (instead of --law).")


@click.group(epilog="""\b
Examples:
  symcost scaling fit runs.csv --plot fit.png
  symcost scaling optimal architectures/llama.yaml --flops 1e23 --for n_layers
  symcost scaling optimal architectures/llama.yaml --flops 1e23 --for d_model --multiple-of 128 --serve 1e13
  symcost scaling compare architectures/llama.yaml architectures/mixtral.yaml --flops 1e23
""")
def scaling() -> None:
    """Scaling laws with exact compute: fit L(N, D) to runs, find the compute-optimal size, compare specs."""


@scaling.command()
@click.argument("runs", type=click.Path(dir_okay=True))
@click.option("--grid", type=click.Choice(["default", "hoffmann"]), default="default", show_default=True,
              help="Initialisations for L-BFGS: 675 points, or the paper's 4,500.")
@click.option("--bootstrap", type=int, default=200, show_default=True,
              help="Resamples for the 95% confidence intervals (0: none).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write observed against predicted loss (PNG).")
@format_option(("text", "json"))
@edge
def fit(runs, grid, bootstrap, plot, fmt) -> None:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta to RUNS.csv (params,tokens,loss[,flops])."""
    from .. import api
    from ..scaling.fit import read_runs
    from ..scaling.laws import Law

    check_plot(plot, runs)
    data = read_runs(runs)  # read once here to say how many; the fit reads it again, cheaply
    with working(f"fitting {len(data.loss)} runs" + (f", {bootstrap} bootstrap refits" if bootstrap else ""), fmt):
        result = api.scaling_fit(runs, grid=grid, bootstrap=bootstrap)
    if plot:
        from ..scaling.plot import plot_fit

        write_output(plot, lambda path: plot_fit(data, result, Law("fit", runs, "hoffmann", result.values,
                                                                  "as in the runs"), path))
    echo(render(result, fmt))


@scaling.command()
@spec_argument
@click.option("--flops", required=True, help="The training budget in FLOPs, e.g. 1e23.")
@click.option("--for", "unknown", required=True, metavar="DIM", help="The dim to size.")
@click.option("--multiple-of", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--serve", help="Tokens to serve after training: the inference-aware optimum too.")
@click.option("--serve-context", type=click.IntRange(min=0, max=10**9),
              help="Cached tokens a served token's decode step attends to (default: seq_len).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Iso-FLOP curves at C/10, C and 10 C (PNG).")
@law_option
@fit_option
@set_option
@format_option(("text", "json"))
@edge
def optimal(spec, flops, unknown, multiple_of, serve, serve_context, plot, law, fit_file, sets, fmt) -> None:
    """The size of one dim with the lowest predicted loss for a budget, with the spec's exact
    training FLOPs per token, beside the law's 6ND optimum."""
    from .. import api

    check_plot(plot, spec, *([fit_file] if fit_file else []))
    d, values, chosen = api.derive(spec), parse_sets(sets), dict(law=law, fit=fit_file)
    result = api.scaling_optimal(d, values, flops=flops, unknown=unknown, multiple_of=multiple_of, serve=serve,
                                 serve_context=serve_context, **chosen)
    if plot:
        from ..scaling.plot import plot_isoflop

        curves = [api.scaling_optimal(d, values, flops=c, unknown=unknown, multiple_of=multiple_of, **chosen)
                  for c in (result.flops / 10, result.flops, result.flops * 10)]
        write_output(plot, lambda path: plot_isoflop(curves, path))
    echo(render(result, fmt))


@scaling.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--flops", required=True, help="The training budget in FLOPs.")
@law_option
@fit_option
@set_option
@format_option(("text", "json"))
@edge
def compare(specs, flops, law, fit_file, sets, fmt) -> None:
    """Which spec, at its own sizes, reaches the lower predicted loss for a budget."""
    from .. import api

    echo(render(api.scaling_compare(list(specs), parse_sets(sets), flops=flops, law=law, fit=fit_file), fmt))
