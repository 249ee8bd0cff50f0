"""serve: a model on a replica of GPUs — memory, KV capacity, concurrency, latency bounds."""

from __future__ import annotations

from pathlib import Path

import click

from ..precision import BYTES
from ..render import render
from ._options import dtype_option, echo, edge, format_option, parse_block, parse_sets, set_option, spec_argument

positive = click.IntRange(min=1, max=10**9)  # the library bounds them and says why, in one line
FORMAT_HELP = ("Store the linears in this format, in place of the spec's quantization block: the format, then "
               "key=value fields (gptq,bits=4,group=128; awq; int4,group=32; fp8; fp8-channel; fp8-block; int8; nf4; "
               "fp4; mxfp4,which=experts; mxfp8; nvfp4).")


@click.command(epilog="""\b
Examples:
  symcost serve architectures/llama.yaml --prompt-tokens 1024 --output-tokens 256
  symcost serve examples/llama-3-70b.yaml --tp 2 --weights-format fp8-channel --kv-dtype fp8
  symcost serve architectures/llama.yaml --weights-format gptq,bits=4 --concurrency 32 --format json
  symcost serve examples/llama-3-70b.yaml --tp 2 --draft examples/llama-3-70b.yaml --draft-set n_layers=1
""")
@spec_argument
@click.option("--hardware", default="h100-sxm", show_default=True, help="An entry of the hardware catalog.")
@click.option("--hardware-file", type=click.Path(dir_okay=False), help="A YAML file of extra hardware entries.")
@click.option("--efficiency-file", type=click.Path(dir_okay=False),
              help="A YAML file of efficiency entries by hardware (default: the shipped ones) for predicted times.")
@click.option("--gpus", type=positive, help="GPUs in all, a multiple of tp x pp (default: one replica).")
@click.option("--tp", type=positive, default=1, show_default=True, help="Tensor-parallel size of a replica.")
@click.option("--pp", type=positive, default=1, show_default=True, help="Pipeline stages of a replica.")
@click.option("--dp", type=positive, default=1, show_default=True,
              help="Data-parallel attention ranks of a replica, each its own tp group (with --ep).")
@click.option("--ep", is_flag=True, help="Split the routed experts whole over the replica's tp x dp GPUs "
              "(vLLM's --enable-expert-parallel).")
@dtype_option
@click.option("--weights-format", metavar="FORMAT,KEY=VALUE…", help=FORMAT_HELP)
@click.option("--kv-dtype", type=click.Choice(list(BYTES)), help="Bytes per cached value (default: --dtype).")
@click.option("--memory-utilization", default="0.9", show_default=True,
              help="Share of each GPU's memory the engine may use (vLLM's --gpu-memory-utilization).")
@click.option("--block-size", type=positive, default=16, show_default=True, help="Tokens a KV block holds.")
# not --output: on every other command that names a file to write
@click.option("--prompt-tokens", "prompt", type=positive, help="Tokens in a request's prompt (default: seq_len).")
@click.option("--output-tokens", "output", type=positive, help="Tokens a request generates (default: 256).")
@click.option("--lengths", type=click.Path(dir_okay=False), metavar="FILE.csv",
              help="A mix of requests instead of one length: a CSV of prompt,output token counts, one row a request "
              "(or with a count column, that many).")
@click.option("--prefix-tokens", "prefix", type=click.IntRange(min=0, max=10**9), default=0, show_default=True,
              help="Prompt tokens every request shares (a system prompt), cached once, as vLLM's prefix caching does.")
@click.option("--concurrency", type=positive, help="Sequences a replica decodes together (default: as many as fit).")
@click.option("--max-num-batched-tokens", type=positive, default=8192, show_default=True,
              help="Tokens of the largest prefill chunk, for the activation reserve.")
@click.option("--offload-experts", is_flag=True,
              help="Keep a MoE's routed experts in host memory, a cache of them on the GPU: the decode ceiling.")
@click.option("--expert-hit-rate", "hit_rate", help="Share of expert reads the GPU's cache answers (default: the "
              "share of the experts it holds, routing assumed even).")
@click.option("--draft", type=click.Path(dir_okay=False), help="A draft model's spec: plan speculative decoding.")
@click.option("--draft-set", "draft_sets", multiple=True, metavar="NAME=VALUE",
              help="Give a dim of the draft a value (repeatable): --draft-set n_layers=1.")
@click.option("--gamma", type=positive, default=4, show_default=True, help="Draft tokens a verify step.")
@click.option("--acceptance", default="0.7", show_default=True,
              help="Acceptance rate of a drafted token, or one per position joined by commas (0.9,0.8,0.7,0.6).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Also draw the throughput-latency curve (PNG).")
@set_option
@format_option(("text", "json"))
@edge
def serve(spec, hardware, hardware_file, efficiency_file, gpus, tp, pp, dp, ep, dtype, weights_format, kv_dtype,
          memory_utilization, block_size, prompt, output, lengths, prefix, concurrency, max_num_batched_tokens,
          offload_experts, hit_rate, draft, draft_sets, gamma, acceptance, plot, sets, fmt) -> None:
    """Serve a model: weights and KV cache per GPU, KV capacity and the concurrency that fits (exact,
    as vLLM allocates), prefill and decode-step roofline bounds, TTFT and TPOT (estimates, labelled),
    and predicted times where an efficiency file has an entry for the hardware (h100-sxm and a100-80gb ship).

    The curve: TPOT and tokens/s per GPU at batches up to the concurrency (--plot draws it); the
    memory utilization each batch needs. Exit 1 when the model, or the concurrency asked for, does
    not fit."""
    from .. import api
    from ..literals import real
    from ..precision import Precision
    from ._options import check_plot, write_output

    check_plot(plot, spec)
    if weights_format is not None:
        spec = api.quantize(api.load(spec), **parse_block(weights_format, "format", "weights_format"))
    if lengths is not None and (prompt is not None or output is not None):
        raise click.UsageError("--lengths gives each request's prompt and output: drop --prompt-tokens and "
                               "--output-tokens")
    rates = [real(a, "acceptance") for a in acceptance.split(",")]
    result = api.serve(spec, parse_sets(sets), hardware=hardware, hardware_file=hardware_file,
                       efficiency_file=efficiency_file, precision=Precision(dtype, kv_dtype), draft=draft,
                       draft_values=parse_sets(draft_sets), gamma=gamma,
                       acceptance=rates[0] if len(rates) == 1 else rates, tp=tp, pp=pp, dp=dp, ep=ep, gpus=gpus,
                       memory_utilization=real(memory_utilization, "memory_utilization"), block_size=block_size,
                       prompt=prompt, **({"output": output} if output is not None else {}),
                       **({"lengths": lengths} if lengths is not None else {}), prefix=prefix, concurrency=concurrency,
                       offload_experts=offload_experts,
                       hit_rate=None if hit_rate is None else real(hit_rate, "hit_rate"),
                       max_num_batched_tokens=max_num_batched_tokens)
    if plot:
        from ..serve.plot import plot_curve

        write_output(plot, lambda path: plot_curve(result, path))
    echo(render(result, fmt))


@click.command(epilog="""\b
Example:
  symcost fit-efficiency my-runs.yaml -o efficiency.yaml
  symcost serve architectures/llama.yaml --efficiency-file efficiency.yaml
""")
@click.argument("runs", type=click.Path(dir_okay=True, path_type=str))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also write the entry to this YAML file.")
@format_option(("text", "json"))
@edge
def fit_efficiency(runs, output, fmt) -> None:
    """Fit an efficiency entry (serve's predicted times) to your timed runs.

    RUNS.yaml names the hardware and lists runs: a spec, its serving settings (tp, dp, ep, dtype,
    kv_dtype, quantization, concurrency, prompt, output) and the output tokens/s per GPU an engine
    measured; `held_out: true` checks a run instead of fitting it (docs/serve.md says more)."""
    from .. import api
    from ._options import write_output

    result = api.fit_efficiency(runs)
    if output:
        write_output(output, lambda path: Path(path).write_text(result.yaml()))
    echo(render(result, fmt))
