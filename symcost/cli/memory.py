"""memory and inference: bytes to train and serve, and the cost of generating."""

from __future__ import annotations

import click

from ..precision import ACTIVATION_DTYPES, ATTENTION, BYTES, OPTIMIZER_STATES
from ..render import render
from ._options import (convention_option, dtype_option, echo, edge, finetune_option, format_option, formulas_option,
                       parse_block, parse_sets, recompute_option, set_option, spec_argument)

# plan's settings --parallel takes, each as YAML reads it (8, true, dualpipe) and checked as plan checks it
PARALLEL = ("gpus", "tp", "pp", "dp", "cp", "ep", "zero", "micro_batch", "global_batch", "virtual_stages",
            "sequence_parallel", "schedule", "offload", "hardware")
NAMES = ("schedule", "offload", "hardware")  # settings that are names (plan checks them), not sizes


@click.command(epilog="""\b
Examples:
  symcost memory architectures/llama.yaml
  symcost memory architectures/mixtral.yaml --dtype fp8 --kv-dtype bf16 --recompute selective
  symcost memory architectures/gemma2.yaml --attention eager --activation-dtype fp32
  symcost memory architectures/llama.yaml --parallel gpus=8,zero=3
""")
@spec_argument
@dtype_option
@click.option("--kv-dtype", type=click.Choice(list(BYTES)), help="Bytes per cached key/value (default: --dtype).")
@click.option("--grad-dtype", type=click.Choice(list(BYTES)), help="Bytes per gradient (default: --dtype).")
@click.option("--activation-dtype", type=click.Choice(list(ACTIVATION_DTYPES)),
              help="What training keeps activations in (default: --dtype; bf16 under fp8 or int weights).")
@click.option("--optimizer", type=click.Choice(list(OPTIMIZER_STATES)), default="adam", show_default=True)
@click.option("--master-weights/--no-master-weights", default=None,
              help="Keep fp32 master weights (default: when --dtype is not fp32).")
@recompute_option()
@click.option("--attention", type=click.Choice(list(ATTENTION)), default="sdpa", show_default=True,
              help="How attention runs: eager keeps the n x n probabilities; sdpa and flash do not.")
@click.option("--parallel", metavar="KEY=VALUE,…",
              help="Also the bytes per GPU of a training run on a cluster, on its most loaded rank, as `symcost plan` "
                   f"takes the run: {', '.join(PARALLEL)} (e.g. gpus=8,tp=2,zero=3).")
@set_option
@formulas_option
@format_option(("text", "json"))
@edge
@finetune_option
def memory(spec, dtype, kv_dtype, grad_dtype, activation_dtype, optimizer, master_weights, recompute, attention,
           parallel, sets, formulas, fmt) -> None:
    """Bytes for weights, KV cache, training state, activations and peaks (--formulas: their closed forms).

    Activations are exact: what one training forward keeps for backward, as PyTorch saves it
    (`symcost verify --memory` measures it). Peaks are estimates and say what they assume."""
    from .. import api
    from ..precision import Precision

    precision = Precision(dtype, kv_dtype, grad_dtype, master=master_weights, activations=activation_dtype)
    echo(render(api.memory(spec, parse_sets(sets), precision=precision, optimizer=optimizer, recompute=recompute,
                           attention=attention, parallel=None if parallel is None else _parallel(parallel)),
                fmt, formulas=formulas))


def _parallel(text: str) -> dict:
    """`gpus=8,tp=2,…` as plan's settings (the gpus first may go without its key): sizes whole numbers (7e9 too),
    sequence_parallel true or false, schedule, offload and hardware names (plan checks them)."""
    from ..errors import SpecError
    from ..literals import integer

    settings = parse_block(text, "gpus", "--parallel")
    for key, value in settings.items():
        if key not in PARALLEL:
            raise SpecError(f"--parallel '{key}={value}': expected KEY=VALUE with KEY one of {', '.join(PARALLEL)}")
        if key == "sequence_parallel" and not isinstance(value, bool):
            raise SpecError(f"--parallel sequence_parallel={value}: expected true or false")
        if key not in ("sequence_parallel", *NAMES) and type(value) is not int:
            settings[key] = integer(str(value), f"--parallel {key}")
    return settings


@click.command(epilog="""\b
Examples:
  symcost inference architectures/llama.yaml --new 256
  symcost inference architectures/mixtral.yaml --context 32768 --dtype fp8
""")
@spec_argument
@click.option("--context", type=click.IntRange(min=0, max=10**18 - 1),
              help="Tokens in the cache for the decode step (default: seq_len).")
@click.option("--new", "new_tokens", type=click.IntRange(min=1, max=10**18 - 1), default=128, show_default=True,
              help="Tokens to generate after the prompt.")
@dtype_option
@click.option("--kv-dtype", type=click.Choice(list(BYTES)), help="Bytes per cached value (default: --dtype).")
@set_option
@convention_option
@formulas_option
@format_option(("text", "json"))
@edge
@finetune_option
def inference(spec, context, new_tokens, dtype, kv_dtype, sets, convention, formulas, fmt) -> None:
    """Prefill and decode FLOPs, generation totals and arithmetic intensity per decode step
    (--formulas: their closed forms)."""
    from .. import api
    from ..precision import Precision

    echo(render(api.inference(spec, parse_sets(sets), context=context, new_tokens=new_tokens,
                                        precision=Precision(dtype, kv_dtype), convention=convention), fmt,
                          formulas=formulas))
