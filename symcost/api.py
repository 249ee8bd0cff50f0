"""The public functions, for notebooks and scripts; the CLI is a skin over them.

Each takes the spec as a path, YAML text, a Spec or a Derivation, and dims as keyword
arguments (`symcost.evaluate("llama.yaml", seq_len=4096)`) or as a mapping (needed only
for a dim named like one of the function's own options). Each returns
a result that prints as text, displays in Jupyter, and converts with `.to_dict()` (the
shape of `--format json`) and, where it has rows, `.to_pandas()`. Bad arguments raise
SpecError naming the argument.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

from .errors import SpecError
from .precision import precision_of


def load(path: str | Path):
    """Read and validate a spec file (a SpecError with file:line:column on bad input)."""
    from .spec import load as _load

    if not isinstance(path, (str, Path)):
        raise SpecError(f"path: expected a file path, got {type(path).__name__}")
    return _load(path)


def loads(text: str, name: str = "<spec>"):
    """Validate a spec given as YAML text."""
    from .spec import loads as _loads

    if not isinstance(text, str):
        raise SpecError(f"text: expected YAML text, got {type(text).__name__}")
    return _loads(text, name)


def finetune(source, /, **fields):
    """The spec trained as a `finetune:` block with these fields says (a Spec), in place of any block
    it has: finetune(spec, method="qlora", rank=16) or targets=["q_proj", "v_proj"], trainable=["lm_head"]."""
    from .spec import with_finetune

    return with_finetune(spec_of(source), fields)


def spec_of(source):
    """A Spec from a path, YAML text, a Spec or a Derivation."""
    from .derive import Derivation
    from .spec import Spec

    if isinstance(source, Spec):
        return source
    if isinstance(source, Derivation):
        return source.spec
    if isinstance(source, Path):
        return load(source)
    if isinstance(source, str):
        looks_like_yaml = "\n" in source or source.lstrip().startswith(("name:", "{"))
        return loads(source) if looks_like_yaml else load(source)
    raise SpecError(f"spec: expected a path, YAML text, a Spec or a Derivation, got {type(source).__name__}")


def dims_of(values: Mapping[str, int] | None, dims: Mapping[str, int]) -> dict[str, int | Fraction]:
    """Dim values from a mapping and keyword arguments: integers for sizes, and for a rate dim
    (a dropout probability) a number as written (0.1 is exactly 1/10); each is checked
    against its dim when evaluated."""
    if values is not None and not isinstance(values, Mapping):
        raise SpecError(f"values: expected a mapping of dim names to integers, got {type(values).__name__}")
    out = {**(values or {}), **dims}
    for name, value in out.items():
        if not isinstance(name, str):
            raise SpecError(f"dim name {name!r}: expected a string")
        if isinstance(value, float | Fraction):
            from .dims import rate
            from .expr import ExprError

            try:
                out[name] = rate(value)
            except ExprError:
                raise SpecError(f"{name}={float(value):g}: expected a positive integer (a size) or, for a rate "
                                "dim, a number in [0, 1)") from None
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise SpecError(f"{name}={value!r}: expected a positive integer (not {type(value).__name__})")
        if value < 0:  # 0 may be a rate dim's, or a decode step's empty cache: its dim decides
            raise SpecError(f"{name}={value}: expected a positive integer")
        out[name] = int(value)
    return out


def derive(source, convention: str | None = None, keep: Sequence[str] = (), decode: bool | None = None):
    """The symbolic cost: closed forms per component and in total (a Derivation). The
    convention defaults to a given Derivation's own, else pytorch. With `decode`, the cost
    of one decode step against `context` cached tokens (see symcost.derive.derive)."""
    from .conventions import CONVENTIONS
    from .derive import Derivation, derive as _derive

    given = isinstance(source, Derivation)
    if convention is not None and not isinstance(convention, str):
        raise SpecError(f"convention: expected a name ({', '.join(CONVENTIONS)}), got {type(convention).__name__}; "
                        "derive takes no dims (its forms hold every dim: evaluate takes values)", param="convention")
    if convention is None:
        convention = source.convention.name if given else "pytorch"
    if decode is None:
        decode = source.decode if given else False
    if convention not in CONVENTIONS:
        raise SpecError(f"convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    if isinstance(keep, str):
        raise SpecError("keep: expected a list of dim names, not one string")
    if (given and source.convention.name == convention and tuple(keep) in ((), source.keep)
            and source.decode == decode):
        return source
    return _derive(spec_of(source), convention, keep, decode)


def evaluate(source, values: Mapping[str, int] | None = None, /, *, convention: str | None = None, **dims):
    """Exact numbers at the spec's defaults, overridden by `values` and keyword dims (an Evaluation)."""
    from .evaluate import evaluate as _evaluate

    return _evaluate(derive(source, convention), dims_of(values, dims))


def memory(source, values: Mapping[str, int] | None = None, /, *, precision=None, optimizer: str = "adam",
           recompute: str = "none", attention: str = "sdpa", parallel: Mapping | None = None, **dims):
    """Bytes for weights, KV cache, training state and activations (a MemoryReport). With `parallel` (plan's
    settings: gpus, tp, pp, dp, cp, ep, zero, micro_batch, offload, …, hardware), also the bytes per GPU on the most
    loaded rank of that run, as `plan` gives them (its `per_gpu`)."""
    import dataclasses

    from .memory import memory as _memory

    derivation, sizes = derive(source), dims_of(values, dims)
    report = _memory(derivation, sizes, precision_of(precision), optimizer, recompute, attention)
    if parallel is None:
        return report
    p = plan(derivation, sizes, precision=precision, optimizer=optimizer, recompute=recompute, attention=attention,
             **dict(parallel))
    kinds = ("weights_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes", "total_bytes", "transient_bytes",
             "peak_bytes", "host_bytes")  # host: an offloaded run's
    from .plan.plan import mtp_placement

    placed = tuple(f"per GPU: {note}" for note in mtp_placement(derivation, sizes, p.execution))
    return dataclasses.replace(report, notes=report.notes + placed,
                               per_gpu={"gpus": p.execution.gpus, "stage": p.stage, "hardware": p.hardware_key,
                                        **{k: p.numbers[k] for k in kinds if k in p.numbers}})


def sweep(source, /, vary: Mapping[str, Sequence[int]], values: Mapping[str, int] | None = None, *,
          metrics: Sequence[str] = ("params", "forward"), convention: str = "pytorch", components: bool = False,
          precision=None, **dims):
    """Metrics over the grid `vary` ({dim: values}), exact (a Sweep)."""
    from .explore.sweep import MAX_POINTS, sweep as _sweep
    from .limits import MAX_LITERAL

    if not isinstance(vary, Mapping) or not vary:
        raise SpecError("vary: expected a mapping of dim names to lists of sizes, e.g. {'seq_len': [1024, 2048]}")
    grid, points = {}, 1
    for name, sizes in vary.items():
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise SpecError(f"vary[{name!r}]: expected a list of sizes, got {type(sizes).__name__}")
        if (points := points * len(sizes)) > MAX_POINTS:  # before any value is read
            raise SpecError(f"the grid has {points:,} points or more; the limit is {MAX_POINTS:,}", param="vary")
        grid[name] = list(dims_of({f"{name}[{i}]": v for i, v in enumerate(sizes)}, {}).values())
        if (bad := next((v for v in grid[name] if not isinstance(v, int) or not 1 <= v < MAX_LITERAL), None)) is not None:
            raise SpecError(f"vary[{name!r}]: {bad} is not a size; sweep varies sizes (positive integers below 10^18)")
    if isinstance(metrics, str):
        metrics = (metrics,)
    return _sweep(spec_of(source), grid, tuple(metrics), dims_of(values, dims), convention, components,
                  precision_of(precision))


def solve(source, /, metric: str, target, unknown: str, values: Mapping[str, int] | None = None, *,
          multiple_of: int = 1, convention: str = "pytorch", precision=None, target_text: str | None = None,
          **dims):
    """The size of `unknown` at which `metric` reaches `target` (a Solution)."""
    import sympy

    from .explore.solve import solve as _solve

    if isinstance(target, bool) or not isinstance(target, (numbers.Rational, sympy.Rational, str)):
        raise SpecError(f"target {target!r}: expected an integer, a Fraction or a decimal string such as '7e9'")
    if isinstance(target, str):
        from .literals import exact

        text, target = target, exact(target, "target")
        target_text = target_text or text
    goal = sympy.Rational(target.numerator, target.denominator) if not isinstance(target, sympy.Rational) else target
    if goal <= 0:
        raise SpecError(f"target {target}: must be positive")
    return _solve(spec_of(source), metric, goal, unknown, dims_of(values, dims), multiple_of, convention,
                  precision_of(precision), target_text)


def crossover(source, /, part_a: str, part_b: str, unknown: str, values: Mapping[str, int] | None = None, *,
              metric: str = "forward", convention: str = "pytorch", **dims):
    """Where two parts' costs are equal, as `unknown` varies (a Crossover)."""
    from .explore.solve import crossover as _crossover

    return _crossover(spec_of(source), part_a, part_b, unknown, metric, dims_of(values, dims), convention)


def compare(a, b, values: Mapping[str, int] | None = None, /, *, varied=None, convention: str = "pytorch",
            precision=None, **dims):
    """Two specs side by side (a Comparison); `varied`: (dim, [sizes]) to compare across."""
    from .explore.compare import compare as _compare

    return _compare(spec_of(a), spec_of(b), dims_of(values, dims), varied, convention, precision_of(precision))


def approx(source, values: Mapping[str, int] | None = None, /, *, convention: str = "pytorch", **dims):
    """Published estimates (6·N·D, Kaplan, Megatron, …) beside the exact counts (an Approximations)."""
    from .explore.approx import approximations

    return approximations(derive(source, convention), dims_of(values, dims))


def budget(source, values: Mapping[str, int] | None = None, /, *, tokens=None, flops=None, optimal_for: str | None = None,
           tokens_per_param: int = 20, multiple_of: int = 1, convention: str = "pytorch", **dims):
    """Training compute from tokens, tokens from compute (a Budget), or with `optimal_for` the size of
    that dim whose compute-optimal run (tokens_per_param x params tokens) costs `flops` (a Solution).
    tokens and flops take integers or decimal strings ('2e12')."""
    from .explore import budget as _budget
    from .literals import exact, integer

    if (tokens is None) == (flops is None):
        raise SpecError("give exactly one of `tokens=` or `flops=`")
    spec = spec_of(source)
    if optimal_for is not None:
        if flops is None:
            raise SpecError("`optimal_for=` needs `flops=`")
        return _budget.optimal(spec, exact(str(flops), "flops"), optimal_for, dims_of(values, dims), tokens_per_param,
                               multiple_of, convention, flops_text=str(flops))
    given = {"tokens": integer(str(tokens), "tokens")} if tokens is not None else {"flops": exact(str(flops), "flops")}
    return _budget.budget(spec, values=dims_of(values, dims), convention=convention, **given)


def inference(source, values: Mapping[str, int] | None = None, /, *, context: int | None = None,
              new_tokens: int = 128, precision=None, convention: str = "pytorch", **dims):
    """Prefill and decode-step FLOPs, generation totals and arithmetic intensity, as closed forms and
    at the spec's sizes, a decode step against `context` cached tokens (default: seq_len), generating
    `new_tokens` (an Inference)."""
    from .inference import inference as _inference

    for name, value, least in (("context", context, 0), ("new_tokens", new_tokens, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise SpecError(f"{name}: expected an integer >= {least}, got {value!r}")
    forms = _inference(spec_of(source), precision_of(precision), convention)
    return forms.at(dims_of(values, dims), context, new_tokens)


def quantize(source, /, **fields):
    """The spec with its linears stored as a `quantization:` block with these fields says (a Spec), in
    place of any block it has: quantize(spec, format="gptq", bits=4, group=128) or format="mxfp4",
    which="experts" (quantization.py lists the formats)."""
    from .spec import with_quantization

    return with_quantization(spec_of(source), fields)


def serve(source, values: Mapping[str, int] | None = None, /, *, hardware: str = "h100-sxm",
          hardware_file: str | None = None, efficiency_file: str | None = None, precision=None, draft=None,
          draft_values: Mapping[str, int] | None = None, gamma: int = 4, acceptance=0.7, **settings):
    """The model served on a replica of tp x pp GPUs (a Serve): weights and KV cache per GPU, KV
    capacity and the concurrency that fits (exact, vLLM's arithmetic), prefill and decode roofline
    bounds (estimates). `settings` are Serving's (tp, pp, dp, ep, gpus, memory_utilization, block_size, prompt,
    output, lengths (a CSV file of prompt,output[,count], or those triples, in place of prompt and output),
    concurrency, max_num_batched_tokens) and dims. With `draft` (another spec), speculative decoding with
    `gamma` draft tokens a step, each accepted at `acceptance` (one rate or one per token);
    `draft_values`: the draft's dims, where not its spec's. Times are predicted too where the shipped
    efficiency file, or `efficiency_file`, has an entry for the hardware (plan/efficiency.py)."""
    import dataclasses

    from .plan.efficiency import efficiency
    from .plan.system import hardware as _hardware
    from .serve.serve import Draft, Serving, serve as _serve

    fields = {f.name for f in dataclasses.fields(Serving)} - {"precision"}
    chosen = {k: v for k, v in settings.items() if k in fields}
    if isinstance(chosen.get("lengths"), (str, os.PathLike)):  # a file of them
        from .serve.lengths import read

        chosen["lengths"] = read(chosen["lengths"])
    elif isinstance(chosen.get("lengths"), Sequence):
        chosen["lengths"] = tuple(tuple(x) if isinstance(x, Sequence) else x for x in chosen["lengths"])
    dims = {k: v for k, v in settings.items() if k not in fields}
    serving = Serving(**chosen, precision=precision_of(precision))
    guess = None if draft is None else Draft(derive(draft), gamma, acceptance, dims_of(draft_values, {}))
    return _serve(derive(source), serving, _hardware(hardware, hardware_file), hardware, dims_of(values, dims), guess,
                  efficiency(hardware, efficiency_file))


def fit_efficiency(runs, /):
    """An efficiency entry (a Calibration: `.entry`, `.yaml()`, each run's `.rows`) fitted on a YAML file of timed
    serving runs (serve/calibrate.py says its shape), or of timed training runs where the file says `phase: train`
    (plan/calibrate.py); `serve(..., efficiency_file=)` and `plan(..., efficiency_file=)` read what `.yaml()`
    writes."""
    from .precision import Precision
    from .serve.calibrate import calibrate
    from .serve.serve import peak_dtype
    from .source import read

    doc = read(runs)
    if isinstance(doc.data, Mapping) and doc.data.get("phase") == "train":
        return _fit_training(doc, runs)

    def served(path, run, given):  # one run as `serve` serves it: a static batch on the whole of each GPU
        spec = load(path)
        if run.quantization is not None:
            spec = quantize(spec, **run.quantization)
        precision = Precision(run.dtype, run.kv_dtype)
        numbers = serve(spec, dict(run.set), hardware=given.hardware, hardware_file=given.hardware_file,
                        precision=precision, tp=run.tp, dp=run.dp, ep=run.ep, concurrency=run.concurrency,
                        prompt=run.prompt, output=run.output, memory_utilization=1.0).numbers
        return numbers["throughput"], peak_dtype(spec.quantization, precision), spec.name

    return calibrate(runs, served)


def _fit_training(doc, path):
    from .precision import Precision
    from .plan.calibrate import calibrate
    from .plan.efficiency import NEUTRAL
    from .plan.execution import Run, execution_of
    from .plan.plan import plan as _plan
    from .plan.system import hardware as _hardware

    def planned(spec_path, run, given):  # one run as `plan` plans it, predicted at the datasheet's figures
        settings = dict(run.plan)
        overlap, gpus = settings.pop("overlap", 0.0), settings.pop("gpus", None)
        derivation = derive(spec_path)
        ex = execution_of(settings, gpus, precision_of(Precision(run.dtype)))
        p = _plan(derivation, ex, _hardware(given.hardware, given.hardware_file), given.hardware,
                  dims_of(dict(run.set), {}), Run(overlap=overlap), NEUTRAL)
        return p.numbers, ex, derivation.spec.name

    return calibrate(doc, path, planned)


def verify(source, values: Mapping[str, int] | None = None, /, **options):
    """Compare the formulas with PyTorch's own counts (needs symcost[torch])."""
    from .extras import require

    require("torch", "torch", "verify")
    from .measure.verify import verify as _verify

    return _verify(spec_of(source), dims_of(values, {}), **options)


def verify_memory(source, values: Mapping[str, int] | None = None, /, **options):
    """Compare the activation-memory rules with the bytes PyTorch saves for backward (needs symcost[torch])."""
    from .extras import require

    require("torch", "torch", "verify_memory")
    from .measure.verify import verify_memory as _verify_memory

    return _verify_memory(spec_of(source), dims_of(values, {}), **options)


def verify_hf(source, config: dict, values: Mapping[str, int] | None = None, config_name: str = "config.json",
              config_text: str | None = None):
    """Compare with the transformers model built from `config` (needs symcost[hf] and torch);
    `config_name` and `config_text` (the file's) locate an error in the config."""
    from .extras import require

    require("torch", "torch", "verify_hf")
    require("transformers", "hf", "verify_hf")
    from .measure.verify import verify_hf as _verify_hf

    return _verify_hf(spec_of(source), config, dims_of(values, {}), config_name, config_text)


def plan(source, values: Mapping[str, int] | None = None, /, *, hardware: str = "h100-sxm", gpus: int | None = None,
         hardware_file: str | None = None, mfu: float = 0.4, overlap: float = 0.0, tokens: int | None = None,
         price: float | None = None, tokens_per_second: float | None = None, precision=None,
         smallest: Sequence[str] | None = None, headroom: float = 0.0, flop_convention: str = "pytorch",
         goodput: float = 1.0, efficiency_file: str | None = None, ep_imbalance: float = 1.0, **settings):
    """A training run on a cluster (a Plan): per-GPU memory on the most loaded rank, communication,
    time and cost. `settings` are the execution's (tp, pp, dp, ep, cp, sequence_parallel, zero,
    micro_batch, global_batch, virtual_stages, schedule, stage_layers, recompute, offload, attention, optimizer) and
    dims; dp defaults to gpus / (tp x pp x cp). With `smallest` (say ("tp", "pp")), the layout with the
    smallest product of those sizes that fits, the fastest among equals (its `searched`: how many
    layouts were planned). `headroom`: the share of each GPU's memory kept free (fits in the rest).
    `flop_convention`: what MFU counts, as a paper does (pytorch, causal: kept scores only, or 6nd);
    `goodput`: the share of the run's time spent on steps that count (training time and GPU-hours over it);
    a predicted step time where the shipped training efficiency file, or `efficiency_file`, has an entry for the
    hardware (plan/efficiency.py); `ep_imbalance`: the busiest expert-parallel rank's routed tokens over the mean."""
    from .plan.efficiency import efficiency
    from .plan.execution import Execution, Run, execution_of
    from .plan.plan import plan as _plan
    from .plan.system import hardware as _hardware

    ex_fields = set(Execution.model_fields) - {"precision"}
    dims = {k: v for k, v in settings.items() if k not in ex_fields}
    chosen = {k: v for k, v in settings.items() if k in ex_fields}
    run = Run(mfu, overlap, tokens, price, tokens_per_second, headroom, flop_convention, goodput, ep_imbalance)
    if smallest is not None:
        import dataclasses

        from .plan.search import smallest as _smallest

        if isinstance(smallest, str):
            raise SpecError("smallest: expected a list of sizes' names, e.g. ('tp', 'pp')", param="smallest")
        found, planned = _smallest(derive(source), tuple(smallest), chosen, dims_of(values, dims), gpus,
                                   hardware=hardware, hardware_file=hardware_file, precision=precision_of(precision),
                                   run=run, efficiency=efficiency(hardware, efficiency_file, "train"))
        return dataclasses.replace(found, searched=planned)
    ex = execution_of(chosen, gpus, precision_of(precision))
    return _plan(derive(source), ex, _hardware(hardware, hardware_file), hardware, dims_of(values, dims), run,
                 efficiency(hardware, efficiency_file, "train"))


def plan_search(source, values: Mapping[str, int] | None = None, /, *, gpus: int, hardware: str = "h100-sxm",
                hardware_file: str | None = None, mfu: float = 0.4, overlap: float = 0.0, tokens: int | None = None,
                price: float | None = None, tokens_per_second: float | None = None, precision=None,
                global_batch: int | None = None, optimizer: str = "adam", attention: str = "flash", top: int = 3,
                headroom: float = 0.0, flop_convention: str = "pytorch", goodput: float = 1.0,
                schedule: str = "1f1b", virtual_stages: int = 1, stage_layers=None, first_stage_layers=None,
                last_stage_layers=None, **dims):
    """Every layout of `gpus` GPUs (tp, pp, dp, ep, cp, micro-batch, ZeRO, recompute) that fits, less
    `headroom` (the share of memory kept free), ranked by its roofline step-time bound and then by
    memory, the best `top` planned exactly (a Search). Pipeline options given (`schedule`, `virtual_stages`,
    `stage_layers`, `first_stage_layers`, `last_stage_layers`) hold for every layout: only pipelines that
    take them are ranked."""
    from .plan.execution import Run
    from .plan.search import Pipeline, search

    pipeline = Pipeline(schedule, virtual_stages, None if stage_layers is None else tuple(stage_layers),
                        first_stage_layers, last_stage_layers)
    return search(derive(source), gpus, dims_of(values, dims), hardware=hardware, hardware_file=hardware_file,
                  precision=precision_of(precision),
                  run=Run(mfu, overlap, tokens, price, tokens_per_second, headroom, flop_convention, goodput),
                  global_batch=global_batch, optimizer=optimizer, attention=attention, top=top, pipeline=pipeline)


def flops_per_token(source, /, *, recompute: str = "none"):
    """The exact training FLOPs per token as a dependency-free Python function (a FlopsPerToken:
    `.source` to save, `.function` to call), for MFU logging; with `recompute`, hardware FLOPs (HFU)."""
    from .plan.tokens import flops_per_token_module
    from .precision import recompute_setting

    recompute = recompute_setting(recompute)
    origin = str(source) if isinstance(source, (str, Path)) and "\n" not in str(source) else "<spec>"
    return flops_per_token_module(derive(source), origin, recompute)


def page(source, values: Mapping[str, int] | None = None, /, *, convention: str = "pytorch", dtype: str = "bf16",
         **dims):
    """One self-contained HTML page that computes the spec's numbers in the browser (a Page:
    `.html`, `.write(path)`), opening at the spec's sizes overridden by the dims given."""
    from .page.build import page as _page
    from .precision import Precision

    return _page(derive(source, convention), Precision(dtype), dims_of(values, dims))


def import_hf(config, /, *, name: str | None = None, head: str | None = None):
    """A spec from a Hugging Face config (an Imported: `.yaml`, `.spec()`, `.ignored`): `config` is a
    config.json's path, a model directory holding one, or the config as a dict (`PretrainedConfig.to_dict()`);
    `head`: lm, mlm, classifier or none (default: the one the config's `architectures` names)."""
    from .hf import convert, locate, read_config

    if isinstance(config, Mapping):
        return convert(dict(config), name=name, head=head)
    if not isinstance(config, (str, Path)):
        raise SpecError(f"config: expected a path or a dict, got {type(config).__name__}", param="config")
    path = str(locate(str(config), None))
    data, raw = read_config(path)
    return convert(data, source=path, name=name, text=raw, head=head)


def _law(law: str | None, fit):
    """A named law (default hoffmann2022), or one fitted: a Fit, or the path of `scaling fit --format
    json`'s output; not both."""
    from .scaling.fit import Fit
    from .scaling.laws import Law, law as named, law_from_fit

    if fit is not None and law is not None:
        raise SpecError(f"law {law!r} and a fit: give one of them", param="law")
    if fit is None:
        return named(law or "hoffmann2022")
    if isinstance(fit, Fit):
        return Law("fit", f"fitted: {fit.source}", "hoffmann", fit.values, "as in the fitted runs")
    return law_from_fit(str(fit))


def scaling_fit(runs, /, *, grid: str = "default", bootstrap: int = 200):
    """L(N, D) = E + A/N^alpha + B/D^beta fitted to runs (a Fit): `runs` is a CSV file of
    params,tokens,loss[,flops] or a mapping of those columns to lists."""
    from .scaling.fit import fit, read_runs, runs_of

    data = runs_of(dict(runs)) if isinstance(runs, Mapping) else read_runs(str(runs))
    return fit(data, grid=grid, bootstrap=bootstrap)


def scaling_optimal(source, values: Mapping[str, int] | None = None, /, *, flops, unknown: str,
                    law: str | None = None, fit=None, multiple_of: int = 1, serve=None,
                    serve_context: int | None = None, **dims):
    """The size of `unknown` with the lowest predicted loss for `flops` of training, with the spec's
    exact FLOPs per token, beside the law's 6ND optimum (an Optimum); with `serve` tokens, the
    inference-aware optimum too. flops and serve take numbers or decimal strings ('1e23'). The law:
    `law` (a published one's name, default hoffmann2022) or `fit`."""
    from .literals import exact
    from .scaling.optimal import optimal

    budget = float(exact(str(flops), "flops"))
    served = float(exact(str(serve), "serve")) if serve is not None else None
    return optimal(derive(source), budget, unknown, _law(law, fit), dims_of(values, dims), multiple_of, served,
                   serve_context)


def scaling_compare(sources: Sequence, values: Mapping[str, int] | None = None, /, *, flops,
                    law: str | None = None, fit=None, **dims):
    """Which spec, at its own sizes, reaches the lower predicted loss for `flops` (a LawComparison)."""
    from .literals import exact
    from .scaling.optimal import compare

    if isinstance(sources, (str, Path)) or not isinstance(sources, Sequence) or not sources:
        raise SpecError("sources: expected a list of specs", param="sources")
    budget = float(exact(str(flops), "flops"))
    return compare([derive(s) for s in sources], budget, _law(law, fit), dims_of(values, dims))
