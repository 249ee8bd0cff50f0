"""plan: a training run on a cluster — memory per GPU, communication, time and cost."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from ..precision import (ACTIVATION_DTYPES, ATTENTION, BYTES, MATMUL_DTYPES, OFFLOADS, OPTIMIZER_STATES,
                         RECOMPUTE, SCHEDULES)
from ..render import render
from ._options import (dtype_option, echo, edge, finetune_option, format_option, formulas_option, parse_sets,
                       recompute_option, set_option, spec_argument, working)

positive = click.IntRange(min=1, max=10**9)  # beyond plan.execution.MAX_GPUS: the library says why, in one line


@click.command(epilog="""\b
Examples:
  symcost plan architectures/llama.yaml --gpus 8 --hardware h100-sxm --tp 8
  symcost plan architectures/llama.yaml --gpus 1024 --tp 8 --pp 4 --sequence-parallel --zero 1 \\
      --micro-batch 1 --global-batch 1024 --tokens 2e12 --price 2.5
  symcost plan architectures/mixtral.yaml --gpus 64 --tp 2 --ep 8 --recompute full --search
""")
@spec_argument
@click.option("--gpus", type=positive, help="GPUs in all (= tp x pp x dp x cp); dp follows when not given.")
@click.option("--hardware", default="h100-sxm", show_default=True, help="An entry of the hardware catalog.")
@click.option("--hardware-file", type=click.Path(dir_okay=False), help="A YAML file of extra hardware entries.")
@click.option("--tp", type=positive, default=1, show_default=True, help="Tensor-parallel size.")
@click.option("--pp", type=positive, help="Pipeline-parallel stages (default: 1, or the --stage-layers listed).")
@click.option("--dp", type=positive, help="Data-parallel size (default: gpus / (tp x pp x cp)).")
@click.option("--ep", type=positive, default=1, show_default=True, help="Expert-parallel size (within dp x cp).")
@click.option("--cp", type=positive, default=1, show_default=True, help="Context-parallel size.")
@click.option("--sequence-parallel/--no-sequence-parallel", default=False, show_default=True)
@click.option("--zero", type=click.IntRange(0, 3), default=0, show_default=True,
              help="ZeRO stage: 1 shards optimizer states (Megatron's distributed optimizer), 2 gradients, 3 weights (FSDP).")
@click.option("--micro-batch", type=positive, default=1, show_default=True, help="Sequences per micro-batch.")
@click.option("--global-batch", type=positive, help="Sequences per step (default: micro-batch x dp).")
@click.option("--virtual-stages", type=positive, default=1, show_default=True, help="Interleaved pipeline chunks per rank.")
@click.option("--schedule", type=click.Choice(list(SCHEDULES)), default="1f1b", show_default=True,
              help="The pipeline schedule: 1F1B (interleaved with --virtual-stages), zero-bubble ZB-H1, DualPipe or "
                   "DualPipeV (see docs/plan.md).")
@click.option("--first-stage-layers", type=positive, help="Repeated layers on the first pipeline stage (default: an even share).")
@click.option("--last-stage-layers", type=positive, help="Repeated layers on the last pipeline stage (default: an even share).")
@click.option("--stage-layers", metavar="N,N,...",
              help="Repeated layers on every pipeline stage, first to last (BLOOM: 5,6,6,6,6,6,6,6,6,6,6,5 for its 70 "
                   "layers over 12 stages).")
@click.option("--vocab-multiple", type=positive, help="Pad the vocabulary to a multiple of this x tp, as Megatron-LM's "
              "--make-vocab-size-divisible-by does (its default: 128); unset, tp must divide the vocabulary.")
@recompute_option()
@click.option("--offload", type=click.Choice(list(OFFLOADS)), default="none", show_default=True,
              help="Keep each rank's ZeRO shard in host memory, as DeepSpeed's ZeRO-Offload does: the optimizer "
                   "states, master weights and gradients (optimizer), the weights too (all, ZeRO-3).")
@click.option("--attention", type=click.Choice(list(ATTENTION)), default="flash", show_default=True)
@dtype_option
@click.option("--grad-dtype", type=click.Choice(list(BYTES)), help="Bytes per gradient (default: --dtype).")
@click.option("--activation-dtype", type=click.Choice(list(ACTIVATION_DTYPES)))
@click.option("--matmul-dtype", type=click.Choice(list(MATMUL_DTYPES)),
              help="The dtype the matmuls run in, whose dense peak time and MFU read (default: the weights'); bf16 "
                   "weights with fp8 matmuls are DeepSeek-V3's recipe.")
@click.option("--optimizer", type=click.Choice(list(OPTIMIZER_STATES)), default="adam", show_default=True)
@click.option("--optimizer-dtype", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Bytes per optimizer state value.")
@click.option("--master-weights/--no-master-weights", default=None, help="fp32 master weights (default: when --dtype is not fp32).")
@click.option("--tokens", help="Tokens to train on (a whole number, e.g. 2e12): steps, days, GPU-hours.")
@click.option("--price", help="Dollars per GPU-hour, for the cost.")
@click.option("--mfu", default="0.4", show_default=True, help="Assumed model FLOPs utilisation for the step time.")
@click.option("--goodput", default="1", show_default=True,
              help="The share of the run's time spent on steps that count (restarts and checkpoints take the rest): "
              "training time and GPU-hours are the steps' time over it.")
@click.option("--flop-convention", type=click.Choice(["pytorch", "causal", "6nd"]), default="pytorch", show_default=True,
              help="What MFU counts, as a paper does: the exact FLOPs (causal attention in full), causal attention's "
              "kept scores only, or 6 x active parameters x tokens.")
@click.option("--ep-imbalance", default="1", show_default=True,
              help="The busiest expert-parallel rank's routed tokens over the mean (1: balanced routing): its experts' "
                   "FLOPs and all-to-all time stretched by it (an estimate's input).")
@click.option("--overlap", default="0", show_default=True,
              help="Fraction of communication hidden behind compute (roofline bound).")
@click.option("--efficiency-file", type=click.Path(dir_okay=False),
              help="A YAML file of training efficiency entries by hardware (default: the shipped ones) for a "
                   "predicted step time (symcost fit-efficiency fits one to your timed runs).")
@click.option("--tokens-per-second", help="A measured throughput: report MFU and HFU.")
@click.option("--headroom", default="0", show_default=True,
              help="Share of each GPU's memory kept free for what the total leaves out (the logits' transient, "
                   "buffers, fragmentation): the plan fits in the rest, and --search ranks only such layouts.")
@click.option("--search", is_flag=True,
              help="Enumerate valid parallel layouts for --gpus (with the pipeline options given); print the fitting "
              "ones by time.")
@click.option("--top", type=positive, default=10, show_default=True, help="Rows --search prints.")
@click.option("--smallest", metavar="DIMS", help="Solve for the smallest product of these parallel sizes that fits, "
              "e.g. tp,pp (the other settings as given).")
@set_option
@formulas_option
@format_option(("text", "json"))
@edge
@finetune_option
def plan(spec, gpus, hardware, hardware_file, tp, pp, dp, ep, cp, sequence_parallel, zero, micro_batch, global_batch,
         virtual_stages, schedule, first_stage_layers, last_stage_layers, stage_layers, vocab_multiple, recompute,
         offload, attention, dtype, grad_dtype, activation_dtype, matmul_dtype, optimizer, optimizer_dtype,
         master_weights, tokens, price, mfu, goodput, flop_convention, ep_imbalance, overlap, efficiency_file,
         tokens_per_second,
         headroom, search, top, smallest, sets, formulas, fmt) -> None:
    """Plan a training run: memory per GPU (most loaded rank), communication, step time and cost.

    Memory and communication are exact closed forms in the dims and tp, pp, dp, ep, cp. Time is an
    estimate: from an assumed MFU, and a roofline bound; the output says which. Exit 1 when the
    plan does not fit the GPU's memory."""
    from .. import api
    from ..errors import SpecError
    from ..literals import integer, real
    from ..precision import Precision
    from ..render.text import bytes_human

    precision = Precision(dtype, None, grad_dtype, optimizer_dtype, master=master_weights, activations=activation_dtype,
                          matmul=matmul_dtype)
    values = parse_sets(sets)
    number = lambda text, name: None if text is None else real(text, name)
    assumed = dict(mfu=real(mfu, "mfu"), overlap=real(overlap, "overlap"),
                   tokens=None if tokens is None else integer(tokens, "tokens"), price=number(price, "price"),
                   tokens_per_second=number(tokens_per_second, "tokens_per_second"), headroom=real(headroom, "headroom"),
                   flop_convention=flop_convention, goodput=real(goodput, "goodput"),
                   ep_imbalance=real(ep_imbalance, "ep_imbalance"))
    common = dict(hardware=hardware, hardware_file=hardware_file, precision=precision, **assumed)
    if search:
        if gpus is None:
            raise SpecError("--search needs --gpus")
        if efficiency_file is not None:
            raise SpecError("--search ranks layouts by their roofline bound, not by a prediction: plan a layout it "
                            "finds with --efficiency-file")
        if offload != "none":
            raise SpecError("--search ranks layouts with every model state on the GPUs: plan a layout with --offload")
        if common.pop("ep_imbalance") != 1:
            raise SpecError("--search ranks layouts under balanced routing: plan a layout with --ep-imbalance")
        if recompute not in RECOMPUTE:
            raise SpecError("--search ranks each layout under none, selective and full recomputation: plan a layout "
                            "it finds with --recompute and a list of parts")
        with working(f"searching the layouts of {gpus:,} GPUs", fmt):
            found = api.plan_search(spec, values, gpus=gpus, global_batch=global_batch, optimizer=optimizer,
                                    attention=attention, top=top, schedule=schedule, virtual_stages=virtual_stages,
                                    stage_layers=None if stage_layers is None else _counts(stage_layers),
                                    first_stage_layers=first_stage_layers, last_stage_layers=last_stage_layers,
                                    **common)
        echo(render(found, fmt))
        if not found.fitting:
            sys.exit(1)
        return
    settings = dict(tp=tp, pp=pp, **({} if dp is None else {"dp": dp}), ep=ep, cp=cp,
                    sequence_parallel=sequence_parallel, zero=zero, micro_batch=micro_batch, global_batch=global_batch,
                    virtual_stages=virtual_stages, schedule=schedule, first_stage_layers=first_stage_layers,
                    last_stage_layers=last_stage_layers, vocab_multiple=vocab_multiple, recompute=recompute,
                    offload=offload,
                    stage_layers=None if stage_layers is None else _counts(stage_layers),
                    attention=attention, optimizer=optimizer)
    if smallest is not None:
        dims = tuple(d.strip() for d in smallest.split(","))
        with working(f"planning the layouts of {' x '.join(dims)}", fmt):
            p = api.plan(spec, values, gpus=gpus, smallest=dims, **{k: v for k, v in settings.items() if k not in dims},
                         efficiency_file=efficiency_file, **common)
        sizes = [getattr(p.execution, d) for d in dims]
        click.echo(f"smallest {' x '.join(dims)} that fits: {' x '.join(map(str, sizes))} = {math.prod(sizes)} "
                   f"({p.searched} layouts planned exactly)", err=True)
    else:
        p = api.plan(spec, values, gpus=gpus, **settings, efficiency_file=efficiency_file, **common)
    echo(render(p, fmt, **({"formulas": formulas} if fmt == "text" else {})))
    if not p.fits:
        click.echo(f"does not fit: {bytes_human(p.numbers['peak_bytes'])} > {bytes_human(p.hardware.memory_bytes)} "
                   f"on one {p.hardware.name}", err=True)
        sys.exit(1)


@click.command(name="flops-per-token", epilog="""\b
Examples:
  symcost flops-per-token architectures/llama.yaml > flops.py
  symcost flops-per-token architectures/megatron_gpt.yaml --recompute full --output hfu_flops.py
""")
@spec_argument
@recompute_option(help="Count recomputed forwards too (hardware FLOPs, for HFU) instead of model FLOPs (MFU): "
                       "none, selective, full, or a list of parts (attention, activation, norm, mlp, moe).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the module here (default: stdout).")
@edge
def flops_per_token(spec, recompute, output) -> None:
    """The exact training FLOPs per token as an importable Python function, for MFU logging.

    MFU = flops_per_token(...) x tokens per second / (GPUs x peak FLOP/s). The function takes the
    spec's dims as arguments (defaults: the spec's sizes) and needs nothing but Python."""
    from .. import api
    from ._options import check_output, write_output

    source = api.flops_per_token(spec, recompute=recompute).source
    if output is None:
        echo(source)
        return
    check_output(output, spec)
    write_output(output, lambda path: Path(path).write_text(source))


def _counts(text: str) -> tuple[int, ...]:
    """--stage-layers' counts."""
    from ..errors import SpecError

    parts = [t.strip() for t in text.split(",")]
    if not all(t.isdigit() for t in parts):
        raise SpecError(f"--stage-layers {text!r}: expected whole numbers separated by commas, e.g. 5,6,6,5",
                        param="stage_layers")
    return tuple(int(t) for t in parts)
