"""symcost — closed-form parameter and FLOP formulas for neural architectures.

Every command is a few lines over the library (symcost.load, derive, evaluate, verify);
bad input is caught here and printed as one message, with exit status 2.
"""

from __future__ import annotations

import functools
import re
import sys
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import click

from . import render
from .conventions import CONVENTIONS
from .derive import METRICS
from .errors import SpecError
from .memory import BYTES, MEMORY_METRICS, OPTIMIZER_STATES, RECOMPUTE

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
  symcost verify llama3.yaml --hf config.json --set seq_len=128
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


dtype_option = click.option(
    "--dtype", type=click.Choice(list(BYTES)), default="bf16", show_default=True,
    help="Bytes per value: weights, and unless overridden cached values and gradients (the byte metrics).",
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
      symcost sweep architectures/llama.yaml --vary seq_len=1024..131072x2
      symcost solve architectures/llama.yaml --target params=7e9 --for d_model
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
@click.option("--hf", "hf_config", type=click.Path(dir_okay=False, path_type=str), metavar="CONFIG.json",
              help="Compare against the transformers model built from this config instead (needs symcost[hf]).")
@format_option(("text", "json"))
@edge
def verify(spec: str, sets: tuple[str, ...], backward: bool, device: str, convention: str, hf_config, fmt: str) -> None:
    """Build the spec in PyTorch and compare every count with the formulas, exactly.

    Parameters are summed from the built module (tied weights once); FLOPs come from
    torch.utils.flop_counter.FlopCounterMode. With --hf, the model is Hugging Face's
    own, built from its config on meta: parameters and forward FLOPs are compared.
    Exit status 0 on a full match, 1 otherwise.
    """
    from . import api

    if hf_config:
        from .hf import read_config
        from .verification import verify_hf

        if backward or device != "meta" or convention != "pytorch":
            raise SpecError("--hf compares parameters and forward FLOPs under pytorch, on meta")
        report = verify_hf(api.load(spec), read_config(hf_config), parse_sets(sets))
        click.echo(render.render_hf_report(report, fmt))
        sys.exit(0 if report.match else 1)
    report = api.verify(api.load(spec), parse_sets(sets), backward=backward, device=device, convention=convention)
    click.echo(render.render_report(report, fmt))
    sys.exit(0 if report.match else 1)


if __name__ == "__main__":
    main()


# -- exploring trade-offs ---------------------------------------------------------------

def _exact(text: str, what: str) -> Fraction:
    """'7e9', '1.5e21', '300_000_000_000' -> an exact rational."""
    try:
        value = Fraction(Decimal(text.strip().replace("_", "")))
    except (InvalidOperation, ValueError):
        raise SpecError(f"{what} {text!r}: expected a number such as 7e9") from None
    if value <= 0:
        raise SpecError(f"{what} {text!r}: must be positive")
    return value


def _vary(items: tuple[str, ...]) -> dict[str, list[int]]:
    from .explore.sweep import parse_values

    out = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name:
            raise SpecError(f"--vary {item!r}: expected NAME=VALUES, e.g. --vary seq_len=1024..131072x2")
        out[name] = parse_values(values)
    return out


metric_option = click.option(
    "--metric", "metrics", multiple=True, type=click.Choice(METRICS + MEMORY_METRICS),
    help="Metric to report (repeatable): parameters, FLOPs or bytes.",
)


@main.command(epilog="""\b
Examples:
  symcost sweep architectures/llama.yaml --vary seq_len=1024..131072x2 --metric forward
  symcost sweep architectures/llama.yaml --vary d_model=2048:8192:1024 --vary n_layers=16,32 --format csv
  symcost sweep architectures/transformer.yaml --vary seq_len=128..8192x2 --plot cost.png --stack
""")
@spec_argument
@click.option("--vary", multiple=True, required=True, metavar="NAME=VALUES",
              help="Values of a dim: a list 1,2,4, a range 512:8192:512 or a series 1024..131072x2 (repeatable: a grid).")
@metric_option
@set_option
@convention_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False), help="Also draw the metrics against the first --vary (PNG).")
@click.option("--stack", is_flag=True, help="With --plot: each component's share of the first metric.")
@dtype_option
@edge
def sweep(spec, vary, metrics, sets, convention, fmt, plot, stack, dtype) -> None:
    """Evaluate metrics over a grid of sizes, exactly and vectorised."""
    from . import api
    from .explore.sweep import sweep as run
    from .memory import Precision

    metrics = metrics or ("params", "forward")
    result = run(api.load(spec), _vary(vary), metrics, parse_sets(sets), convention, components=stack,
                 precision=Precision(dtype))
    if plot:
        from .explore.plot import plot_sweep

        plot_sweep(result, plot, metrics, stack=stack)
    click.echo(render.render_sweep(result, fmt))


@main.command(epilog="""\b
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
def solve(spec, target, unknown, multiple_of, dtype, sets, convention, fmt) -> None:
    """Find the size of one dim at which a metric reaches a target: the exact real root,
    and the nearest valid integer sizes on each side with the metric at each."""
    import sympy

    from . import api
    from .explore.solve import solve as run

    metric, sep, value = target.partition("=")
    if not sep:
        raise SpecError(f"--target {target!r}: expected METRIC=VALUE, e.g. params=7e9")
    goal = _exact(value, "--target")
    from .memory import Precision

    equation, roots = run(api.load(spec), metric, sympy.Rational(goal.numerator, goal.denominator), unknown,
                          parse_sets(sets), multiple_of, convention, Precision(dtype))
    title = f"{metric} = {value} for {unknown} (convention: {convention}):"
    click.echo(render.render_roots(title, f"{render.formula(equation)} = {value}", roots, metric, fmt))


@main.command(epilog="""\b
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
    from . import api
    from .explore.solve import crossover as run

    c = run(api.load(spec), between[0], between[1], unknown, metric, parse_sets(sets), convention)
    click.echo(render.render_crossover(c, between[0], between[1], unknown, metric, fmt))


@main.command(epilog="""\b
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
    from . import api
    from .explore.compare import compare as run
    from .memory import Precision

    varied = next(iter(_vary((vary,)).items())) if vary else None
    c = run(api.load(spec_a), api.load(spec_b), parse_sets(sets), varied, convention, Precision(dtype))
    click.echo(render.render_compare(c, fmt))


@main.command(epilog="""\b
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
    from . import api
    from .evaluate import dim_values
    from .explore.approx import estimates

    d = api.derive(api.load(spec), convention)
    values = dim_values(d, parse_sets(sets))
    click.echo(render.render_estimates(d, estimates(d), values, fmt))


@main.command(epilog="""\b
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
    from . import api
    from .explore import budget as plan

    if (tokens is None) == (flops is None):
        raise SpecError("give exactly one of --tokens or --flops")
    s = api.load(spec)
    if optimal_for:
        if flops is None:
            raise SpecError("--optimal-for needs --flops")
        budget_flops = _exact(flops, "--flops")
        equation, roots = plan.optimal(s, budget_flops, optimal_for, parse_sets(sets), tokens_per_param,
                                       multiple_of, convention)
        title = f"compute-optimal ({tokens_per_param} tokens per parameter) for {optimal_for}, convention {convention}:"
        click.echo(render.render_roots(title, f"{render.formula(equation)} = {flops}", roots, "train_flops", fmt))
        return
    given = {"tokens": _exact(tokens, "--tokens")} if tokens else {"flops": _exact(flops, "--flops")}
    click.echo(render.render_budget(plan.budget(s, values=parse_sets(sets), convention=convention, **given), fmt))


# -- memory and inference ---------------------------------------------------------------------


@main.command(epilog="""\b
Examples:
  symcost memory architectures/llama.yaml
  symcost memory architectures/mixtral.yaml --dtype fp8 --kv-dtype bf16 --recompute selective
""")
@spec_argument
@dtype_option
@click.option("--kv-dtype", type=click.Choice(list(BYTES)), help="Bytes per cached key/value (default: --dtype).")
@click.option("--grad-dtype", type=click.Choice(list(BYTES)), help="Bytes per gradient (default: --dtype).")
@click.option("--optimizer", type=click.Choice(list(OPTIMIZER_STATES)), default="adam", show_default=True)
@click.option("--master-weights/--no-master-weights", default=None,
              help="Keep fp32 master weights (default: when --dtype is not fp32).")
@click.option("--recompute", type=click.Choice(list(RECOMPUTE)), default="none", show_default=True,
              help="Activation recomputation, for activation memory.")
@set_option
@format_option(("text", "json"))
@edge
def memory(spec, dtype, kv_dtype, grad_dtype, optimizer, master_weights, recompute, sets, fmt) -> None:
    """Bytes for weights, KV cache, training state and activations, as closed forms and numbers."""
    from . import api
    from .evaluate import dim_values
    from .memory import ACTIVATION_ASSUMPTION, Precision, memory_metrics

    d = api.derive(api.load(spec))
    precision = Precision(dtype, kv_dtype, grad_dtype, master=master_weights)
    exprs = memory_metrics(d, precision, optimizer, recompute)
    values = dim_values(d, parse_sets(sets))
    numbers = {k: e.xreplace(values) for k, e in exprs.items()}
    notes = [
        f"weights {dtype}, KV cache {kv_dtype or dtype}, gradients {grad_dtype or dtype}, {optimizer} states fp32"
        + (", fp32 master weights" if precision.master_weights else ""),
        f"activations: {ACTIVATION_ASSUMPTION}; recomputation: {recompute}",
    ]
    click.echo(render.render_memory(d.spec.name, exprs, numbers, notes, fmt))


@main.command(epilog="""\b
Examples:
  symcost inference architectures/llama.yaml --new 256
  symcost inference architectures/mixtral.yaml --context 32768 --dtype fp8
""")
@spec_argument
@click.option("--context", type=click.IntRange(min=0), help="Tokens in the cache for the decode step (default: seq_len).")
@click.option("--new", "new_tokens", type=click.IntRange(min=1), default=128, show_default=True,
              help="Tokens to generate after the prompt.")
@dtype_option
@click.option("--kv-dtype", type=click.Choice(list(BYTES)), help="Bytes per cached value (default: --dtype).")
@set_option
@convention_option
@format_option(("text", "json"))
@edge
def inference(spec, context, new_tokens, dtype, kv_dtype, sets, convention, fmt) -> None:
    """Prefill and decode FLOPs, generation totals and arithmetic intensity per decode step."""
    from . import api
    from .inference import inference as run
    from .memory import Precision

    s = api.load(spec)
    inf = run(s, Precision(dtype, kv_dtype), convention)
    numbers = inf.values(parse_sets(sets), context, new_tokens)
    click.echo(render.render_inference(s.name, inf, numbers, int(numbers["context"]), new_tokens, convention, fmt))



@main.command(name="import-hf", epilog="""\b
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
    from . import api
    from .hf import import_config, read_config

    text = import_config(read_config(config), source=config, name=name)
    api.loads(text, name=output or "<import-hf>")  # the spec must load before anyone sees it
    if output:
        with open(output, "w") as f:
            f.write(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
