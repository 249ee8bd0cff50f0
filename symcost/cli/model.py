"""derive, eval and verify: the model's closed forms, its numbers, and the check against PyTorch."""

from __future__ import annotations

import sys

import click

from ..precision import ACTIVATION_DTYPES, ATTENTION
from ..render import render
from ._options import (convention_option, echo, edge, finetune_option, format_option, parse_sets, recompute_option,
                       set_option, spec_argument, working)


@click.command(epilog="""\b
Examples:
  symcost derive architectures/transformer.yaml
  symcost derive architectures/llama.yaml --formulas
  symcost derive architectures/llama.yaml --keep d_head --format latex
""")
@spec_argument
@click.option("--keep", multiple=True, metavar="NAME", help="Keep a derived dim as a symbol (repeatable).")
@click.option("--leading", multiple=True, metavar="NAME",
              help="Show the totals' dominant terms as NAME grows (repeatable; default: image_size or seq_len).")
@click.option("--formulas", is_flag=True, help="Per component, closed forms instead of numbers at the defaults.")
@convention_option
@format_option()
@edge
@finetune_option
def derive(spec: str, keep: tuple[str, ...], leading: tuple[str, ...], formulas: bool, convention: str,
           fmt: str) -> None:
    """Closed forms of params, active params and forward/backward/train FLOPs.

    Derived dims (d_ff: 4 * d_model) are substituted unless kept. The totals are closed
    forms, with their leading terms as the input grows; per component, the numbers at the
    spec's defaults (or, with --formulas, each component's closed forms).
    """
    from .. import api
    from ..errors import SpecError

    s = api.spec_of(spec)
    d = api.derive(s, convention, keep)
    for name in leading:
        if name not in s.dimset:
            raise SpecError(f"--leading {name}: no such dim")
    at = api.evaluate(d) if all(x.default is not None or x.definition is not None for x in s.dimset.items) else None
    echo(render(d, fmt, leading_in=leading or d.default_leading, formulas=formulas, at=at))


@click.command(name="eval", epilog="""\b
Examples:
  symcost eval architectures/transformer.yaml
  symcost eval architectures/llama.yaml --set seq_len=2048 --set batch=8 --format json
""")
@spec_argument
@set_option
@convention_option
@format_option()
@click.option("--no-cache", is_flag=True, help="Derive afresh, neither reading nor writing the cache.")
@edge
@finetune_option
def eval_(spec: str, sets: tuple[str, ...], convention: str, fmt: str, no_cache: bool) -> None:
    """Exact numbers at the spec's sizes (defaults, overridden by --set), FLOPs per token too.

    A repeated eval of an unchanged spec reads its derived forms from the cache
    (symcost.cache) instead of deriving again.
    """
    from .. import api, cache

    values = parse_sets(sets)
    e = api.evaluate(api.derive(api.spec_of(spec), convention), values)
    if not no_cache:
        cache.store(e, values)
    echo(render(e, fmt))


@click.command(epilog="""\b
Examples:
  symcost verify architectures/transformer.yaml
  symcost verify architectures/llama.yaml --set n_layers=2 --backward --format json
  symcost verify llama3.yaml --hf config.json --set seq_len=128
  symcost verify architectures/mixtral.yaml --memory --set n_layers=2 --set d_model=64 --set d_ff=128 --dtype bf16
""")
@spec_argument
@set_option
@click.option("--backward", is_flag=True, help="Also measure forward + backward (training) FLOPs.")
@click.option("--device", type=click.Choice(["meta", "cpu"]),
              help="meta (the default) allocates nothing (any size); cpu runs real tensors.")
@click.option("--memory", is_flag=True,
              help="Compare activation memory instead: the bytes one training forward keeps for backward (cpu).")
@click.option("--dtype", type=click.Choice(list(ACTIVATION_DTYPES)), help="With --memory: activations' dtype [fp32].")
@click.option("--attention", type=click.Choice(list(ATTENTION)), help="With --memory: how attention runs [sdpa].")
@recompute_option(None, "With --memory: recomputation [none]: none, selective, full, or a list of parts "
                        "(attention, activation, norm, mlp, moe).")
@click.option("--convention", type=click.Choice(["pytorch", "macs"]), default="pytorch", show_default=True,
              help="Compare under pytorch, or macs (both sides halved). `full` counts work the counter cannot see.")
@click.option("--hf", "hf_config", type=click.Path(dir_okay=False, path_type=str), metavar="CONFIG.json",
              help="Compare against the transformers model built from this config instead (needs symcost[hf]).")
@format_option(("text", "json"))
@edge
@finetune_option
def verify(spec: str, sets: tuple[str, ...], backward: bool, device: str | None, memory: bool, dtype, attention,
           recompute, convention: str, hf_config, fmt: str) -> None:
    """Build the spec in PyTorch and compare every count with the formulas, exactly.

    Parameters are summed from the built module (tied weights once); FLOPs come from
    torch.utils.flop_counter.FlopCounterMode. With --memory, the bytes one training forward
    (with the loss) keeps for backward, as torch.autograd.graph.saved_tensors_hooks sees
    them, each storage once, parameters excluded, on real CPU tensors: keep sizes small.
    With --hf, the model is Hugging Face's own, built from its config on meta: parameters
    and forward FLOPs are compared. Exit status 0 on a full match, 1 otherwise.
    """
    from .. import api
    from ..errors import SpecError

    if memory:
        if hf_config or backward or device == "meta" or convention != "pytorch":
            raise SpecError("--memory measures on cpu; it takes --dtype, --attention and --recompute, not "
                            "--hf, --backward, --device meta or --convention")
        with working("measuring saved bytes in PyTorch", fmt):
            report = api.verify_memory(api.spec_of(spec), parse_sets(sets), dtype=dtype or "fp32",
                                       attention=attention or "sdpa", recompute=recompute or "none")
        echo(render(report, fmt))
        sys.exit(0 if report.match else 1)
    if dtype or attention or recompute:
        raise SpecError("--dtype, --attention and --recompute go with --memory")
    device = device or "meta"

    if hf_config:
        from ..hf import read_config

        if backward or device != "meta" or convention != "pytorch":
            raise SpecError("--hf compares parameters and forward FLOPs under pytorch, on meta")
        config, text = read_config(hf_config)
        with working("building and counting the transformers model", fmt):
            report = api.verify_hf(api.spec_of(spec), config, parse_sets(sets), str(hf_config), text)
        echo(render(report, fmt))
        sys.exit(0 if report.match else 1)
    with working("building and counting the model in PyTorch", fmt):
        report = api.verify(api.spec_of(spec), parse_sets(sets), backward=backward, device=device, convention=convention)
    echo(render(report, fmt))
    sys.exit(0 if report.match else 1)
