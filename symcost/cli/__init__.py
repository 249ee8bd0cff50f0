"""symcost's command line: a table of commands, each imported only when it runs.

`symcost --help` reads summaries from COMMANDS and imports no command module, so it needs
neither sympy nor pydantic nor numpy. A repeated `symcost eval` of an unchanged spec is
answered from the cache of derived forms (symcost.cache) before click or sympy load.
"""

from __future__ import annotations

import functools
import sys

# name -> (module in symcost.cli, function, summary for --help); the order is --help's order.
COMMANDS = {
    "derive": ("model", "derive", "Closed forms of params, active params and FLOPs, per component."),
    "eval": ("model", "eval_", "Exact numbers at the spec's sizes, FLOPs per token too."),
    "verify": ("model", "verify", "Build the spec in PyTorch and compare every count, exactly."),
    "sweep": ("explore", "sweep", "Metrics over a grid of sizes, exact and vectorised."),
    "solve": ("explore", "solve", "The size of one dim at which a metric reaches a target."),
    "crossover": ("explore", "crossover", "Where two parts' costs are equal."),
    "compare": ("explore", "compare", "Two specs side by side."),
    "approx": ("explore", "approx", "Published estimates next to the exact count."),
    "budget": ("explore", "budget", "Training compute, tokens and compute-optimal size."),
    "memory": ("memory", "memory", "Bytes for weights, KV cache, training state and activations."),
    "inference": ("memory", "inference", "Prefill and decode FLOPs, generation, arithmetic intensity."),
    "serve": ("serve", "serve", "Serving: weights and KV per GPU, capacity, concurrency, latency bounds."),
    "fit-efficiency": ("serve", "fit_efficiency", "Serve's efficiency entry (predicted times), fitted on your runs."),
    "plan": ("plan", "plan", "A training run on a cluster: memory per GPU, communication, time, cost."),
    "flops-per-token": ("plan", "flops_per_token", "Exact training FLOPs per token as a Python function, for MFU."),
    "scaling": ("scaling", "scaling", "Scaling laws with exact compute: fit, compute-optimal size, compare."),
    "page": ("page", "page", "One HTML file that computes the spec's numbers in the browser, exactly, offline."),
    "import-hf": ("hf", "import_hf", "A spec from a Hugging Face config.json."),
}

HELP = """symcost: what an architecture costs, before you train it.

Parameters and FLOPs as closed-form formulas in width, depth, sequence length and
number of experts, the numbers they give, and an exact check against PyTorch.

\b
Examples:
  symcost derive architectures/transformer.yaml
  symcost eval architectures/llama.yaml --set seq_len=2048
  symcost verify architectures/transformer.yaml --backward
  symcost sweep architectures/llama.yaml --vary seq_len=1024..131072x2
  symcost solve architectures/llama.yaml --target params=7e9 --for d_model
  symcost plan architectures/llama.yaml --gpus 64 --tp 8 --pp 2 --zero 1 --tokens 1e12
  symcost scaling optimal architectures/llama.yaml --flops 1e23 --for n_layers
"""


@functools.cache
def _group():
    import importlib

    import click

    class Commands(click.Group):
        def list_commands(self, ctx):
            return list(COMMANDS)

        def get_command(self, ctx, name):
            if name not in COMMANDS:
                return None
            module, attr, _ = COMMANDS[name]
            return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

        def format_commands(self, ctx, formatter):
            with formatter.section("Commands"):
                formatter.write_dl([(name, summary) for name, (_, _, summary) in COMMANDS.items()])

        def main(self, *args, **kwargs):
            """As click's, but a usage error (an option's value out of range, a missing argument)
            is one line on stderr with exit status 2, as every other error of the commands is."""
            kwargs.pop("standalone_mode", None)
            try:
                code = super().main(*args, standalone_mode=False, **kwargs)
            except click.UsageError as e:
                if type(e).__name__ == "NoArgsIsHelpError":  # `symcost` alone: its help, as click prints it
                    e.show()
                    sys.exit(e.exit_code)
                where = f" (symcost {e.ctx.command_path.split(' ', 1)[1]} --help)" if e.ctx and " " in \
                    e.ctx.command_path else " (symcost --help)"
                click.echo(f"error: {e.format_message()}{where}", err=True)
                sys.exit(e.exit_code)
            except click.ClickException as e:
                click.echo(f"error: {e.format_message()}", err=True)
                sys.exit(e.exit_code)
            except click.exceptions.Abort:
                click.echo("aborted", err=True)
                sys.exit(1)
            sys.exit(code if isinstance(code, int) else 0)

        def resolve_command(self, ctx, args):
            if args and args[0] not in COMMANDS and not args[0].startswith("-"):
                import difflib

                close = difflib.get_close_matches(args[0], COMMANDS, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                ctx.fail(f"No such command {args[0]!r}.{hint} Commands: {', '.join(COMMANDS)}")
            return super().resolve_command(ctx, args)

    from .. import __version__

    @click.group(cls=Commands, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="symcost")
    def main() -> None:
        pass

    return main


def run(args=None) -> None:
    """The `symcost` command (and `python -m symcost`): the cache first, else click."""
    import os

    argv = sys.argv[1:] if args is None else list(args)
    # symcost's arrays are small (a grid of sizes, a fit's runs): OpenBLAS's extra threads only spin beside
    # the one that works, doubling the CPU time of a fit; a user's own setting wins
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from ._fast import cached_eval

    try:
        if not cached_eval(argv):
            _group()(args=argv, prog_name="symcost")
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def __getattr__(name: str):
    if name == "main":  # the click group, built on first use (tests drive it with CliRunner)
        return _group()
    raise AttributeError(name)
