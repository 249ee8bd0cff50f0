"""plan --search: every valid parallel layout for a number of GPUs, evaluated at once.

Candidates come from divisibility (Calculon's way): tp divides every size its rules split (heads,
kv heads, hidden sizes, vocabulary), pp the main repeat's count, cp the sequence, ep the experts
and dp x cp; dp is what is left of the GPUs; micro-batches are powers of two dividing each data-
parallel rank's share of the global batch. Pipeline options held fixed (a schedule, virtual stages, a
stage list or the first and last stages' layers) keep the layouts plan takes with them: pp > 1, the
stage list's pp, the splits into whole layers, the micro-batches each schedule needs. For each
discrete choice (the stages a pipeline reports, sequence parallelism, recomputation, ZeRO stage) the
plan's closed forms are built once and evaluated with numpy over every candidate (floats: a
ranking); the rows printed are planned again exactly. Time is the roofline bound, the schedule's
bubble included (assumed-MFU time is the same for every layout: it ranks nothing).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np
import sympy

from ..codegen.vectorized import NUMPY_MODULES
from ..derive import Derivation
from ..errors import SpecError
from ..precision import RECOMPUTE, precision_of
from ..results import Result, frame
from .execution import CP, DP, EP, MB, PP, TP, V, M, Execution, Run, check_gpus, execution_of
from .pieces import adapted, cp_refusal, layer_sites, quantized, tokens_per_sequence
from .plan import Plan, formulas, pipeline_refusal, plan
from .schedule import idle, main_repeat, names
from .rules import refusal
from .system import hardware as _hardware
from .time import link_bandwidth, piece_work

ARGS = (TP, PP, DP, EP, CP, MB, M, V)
MAX_CANDIDATES = 1_000_000
MAX_TOP = 50  # layouts a search plans exactly after ranking them all


@dataclass(frozen=True, repr=False)  # repr is Result's summary
class Search(Result):
    """Every layout of `gpus` GPUs ranked by its roofline bound; the best `top` planned exactly."""

    name: str
    gpus: int
    hardware: str
    evaluated: int  # layouts evaluated
    rows: list[dict]  # every fitting layout, fastest first
    front: list[dict]  # the Pareto front of memory against time, among those
    best: list[Plan]  # the first rows, planned exactly
    smallest_bytes: float  # the least memory per GPU any layout needs
    top: int  # rows shown
    pipeline: Pipeline  # the pipeline options held fixed

    @property
    def fitting(self) -> bool:
        return bool(self.rows)

    def to_dict(self) -> dict:
        from ..render.plan import search_data

        return search_data(self)

    def text(self, width: int | None = None) -> str:
        from ..render.plan import search_text

        return search_text(self, width)

    def summary(self):
        from ..render.text import bytes_human

        rows = [("layouts", f"{self.evaluated:,}"), ("fit", f"{len(self.rows):,}")]
        if self.rows:
            r = self.rows[0]
            rows.append(("fastest", " ".join(f"{k}={r[k]}" for k in ("tp", "pp", "dp", "ep", "cp", "micro_batch"))))
        return f"{self.name} on {self.gpus} x {self.hardware}", rows + [
            ("least memory/GPU", bytes_human(self.smallest_bytes))]

    def to_pandas(self):
        return frame(self.rows)


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


@dataclass(frozen=True)
class Splits:
    """What each parallel size must divide in this model: tp the sizes its rules split (and tp
    stays 1 when a layer cannot be split: rules.refusal, or a fine-tune adds adapters), pp the
    main repeat's count, cp the sequence, ep the experts."""

    tp_sizes: tuple[int, ...]
    tp_rules: bool  # every layer can be split by tp
    cp_rules: bool  # every layer can be split by cp (pieces.cp_refusal)
    layers: int
    seq: int
    experts: tuple[int, ...]
    main: int | None = None  # the top-level repeat pp splits (schedule.main_repeat), `layers` its passes

    def tp(self, t: int) -> bool:
        return all(s % t == 0 for s in self.tp_sizes) and (t == 1 or self.tp_rules)

    def ep(self, e: int) -> bool:
        return all(x % e == 0 for x in self.experts)


def splits(derivation: Derivation, value, sites) -> Splits:
    main = main_repeat(derivation, value)
    return Splits(tuple(int(value(size)) for site, rule in sites for _, size in rule.divides(site.component)),
                  not any(refusal(site.component) for site, _ in sites) and not adapted(derivation),
                  not any(cp_refusal(site.component) for site, _ in sites),
                  int(value(derivation.spec.layers[main].repeat)) if main is not None else 1,
                  tokens_per_sequence(derivation, value),
                  tuple(int(value(site.component.experts)) for site, _ in sites if site.component.routes_tokens), main)


@dataclass(frozen=True)
class Pipeline:
    """The pipeline options a search holds fixed, as plan takes them (execution.py)."""

    schedule: str = "1f1b"
    virtual_stages: int = 1
    stage_layers: tuple[int, ...] | None = None
    first_stage_layers: int | None = None
    last_stage_layers: int | None = None

    @property
    def given(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v != getattr(Pipeline, k)}

    @property
    def said(self) -> str:
        """The options given, as words: `schedule dualpipe, stage layers 1,4,4,1`."""
        return ", ".join(f"{k.replace('_', ' ')} {','.join(map(str, v)) if isinstance(v, tuple) else v}"
                         for k, v in self.given.items())

    @property
    def uneven(self) -> bool:
        return self.stage_layers is not None or self.first_stage_layers is not None or (
            self.last_stage_layers is not None)

    def pp(self, pp: int, layers: int) -> bool:
        """Whether a pipeline of `pp` ranks takes these options and splits `layers` as plan does."""
        if not self.given:
            return layers % pp == 0
        if pp == 1:
            return False
        if self.stage_layers is not None:
            return pp == len(self.stage_layers)
        if not self.uneven:
            into = pp * (2 if self.schedule == "dualpipev" else self.virtual_stages)
            return layers >= into and layers % into == 0
        first, last = self.first_stage_layers, self.last_stage_layers  # one side given: the rest split evenly
        first = Fraction(first) if first is not None else Fraction(layers - last, pp)
        last = Fraction(last) if last is not None else Fraction(layers - first, pp)
        shares = [first, last] + ([(layers - first - last) / (pp - 2)] if pp > 2 else [])
        return all(v.denominator == 1 and v >= 1 for v in shares) and (pp > 2 or first + last == layers)

    def microbatches(self, pp: int, m: int) -> bool:
        """Whether the schedule runs on `m` micro-batches a step (execution.py's _schedule_problems)."""
        if pp == 1 or self.schedule == "1f1b":
            return self.virtual_stages == 1 or m % pp == 0
        if self.schedule == "zb-h1":
            return m >= pp
        return m >= 2 * pp and (self.schedule != "dualpipe" or (pp % 2 == 0 and m % 2 == 0))


def candidates(model: Splits, gpus: int, global_batch: int, pipe: Pipeline = Pipeline()) -> dict[str, np.ndarray]:
    rows = []
    for tp in filter(model.tp, _divisors(gpus)):
        for pp in _divisors(gpus // tp):
            if not pipe.pp(pp, model.layers):
                continue
            for cp in _divisors(gpus // (tp * pp)):
                if model.seq % cp or cp > 1 and not model.cp_rules:
                    continue
                dp = gpus // (tp * pp * cp)
                if global_batch % dp:
                    continue
                eps = list(filter(model.ep, _divisors(dp * cp))) if model.experts else [1]
                per_rank = global_batch // dp
                for ep in eps:
                    for mb in (2**i for i in range(per_rank.bit_length())):
                        if per_rank % mb == 0 and pipe.microbatches(pp, per_rank // mb):
                            rows.append((tp, pp, dp, ep, cp, mb, per_rank // mb, pipe.virtual_stages))
                if len(rows) > MAX_CANDIDATES:
                    raise SpecError(f"more than {MAX_CANDIDATES:,} layouts of {gpus} GPUs; search fewer GPUs")
    if not rows:
        raise SpecError(f"no parallel layout of {gpus} GPUs divides this model (tp must divide heads and hidden "
                        f"sizes, pp the layers, and dp the global batch of {global_batch})"
                        + (f" and takes {pipe.said}" if pipe.given else ""))
    return {str(s): np.array(col, dtype=np.int64) for s, col in zip(ARGS, zip(*rows))}


def _evaluate(exprs: list, subst, columns, n: int) -> list[np.ndarray]:
    """Each expression (in the dims and the execution's symbols) at every candidate, in floats (a ranking; int64
    would overflow past 2^63 FLOPs a step): one numpy function for all of them, each distinct one printed once."""
    exprs = [sympy.sympify(e) for e in exprs]
    distinct = list(dict.fromkeys(exprs))
    dims = sorted(set().union(*(e.free_symbols for e in distinct)) - set(ARGS), key=str)
    # the dims passed as numbers, not substituted: rebuilding each Min and Max with numbers in it is sympy's slowest
    values = sympy.lambdify(ARGS + tuple(dims), distinct, modules=NUMPY_MODULES)(
        *(columns[str(s)].astype(float) for s in ARGS), *(float(subst[d]) for d in dims))
    out = {e: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for e, v in zip(distinct, values)}
    return [out[e] for e in exprs]


def search(derivation: Derivation, gpus: int, values: Mapping[str, int] | None, *, hardware: str = "h100-sxm",
           hardware_file: str | None = None, precision=None, run: Run = Run(), global_batch: int | None = None,
           optimizer: str = "adam", attention: str = "flash", top: int = 3, pipeline: Pipeline = Pipeline()) -> Search:
    from ..evaluate import dim_values

    check_gpus(gpus)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise SpecError(f"top {top!r}: expected an integer from 1 to {MAX_TOP} (each is planned exactly)", param="top")
    hw = _hardware(hardware, hardware_file)
    precision = precision_of(precision)
    subst = dim_values(derivation, values)
    value = lambda e: sympy.sympify(e).xreplace(subst)
    batch = global_batch or gpus
    execution_of({"global_batch": batch}, None, precision)  # a batch no plan takes is refused before the search
    sites = layer_sites(derivation, 1)  # tp > 1 only where every type has a rule (Splits.tp)
    model = splits(derivation, value, sites)
    if pipeline.given:  # what refuses the options at every size, once: a pipeline of the list's ranks, or of 4
        pp = len(pipeline.stage_layers) if pipeline.stage_layers is not None else 4
        shape = execution_of({"pp": pp, "dp": 1, "global_batch": 4 * pp, **pipeline.given}, None, precision)
        for key, message in shape.problems():
            raise SpecError(f"{key}: {message}")
        pipeline_refusal(derivation, shape, sites, model.main, value)
    cols = candidates(model, gpus, batch, pipeline)
    peak = hw.peak_flops(precision.peak_dtype())
    # the pipelines whose plans report the same stages share closed forms (each in the symbol pp)
    stages: dict[tuple, list[int]] = {}
    for pp in sorted(set(cols["pp"].tolist())):
        shape = Execution(pp=pp, **(pipeline.given if pp > 1 else {}), precision=precision)
        stages.setdefault(names(shape), []).append(pp)
    parts = []
    for group, sp, recompute, zero in itertools.product(stages.values(), (False, True), RECOMPUTE, range(4)):
        chosen = np.isin(cols["pp"], group)
        if zero == 3 and quantized(derivation):  # plan.QLORA_ZERO3
            continue
        if sp:  # as plan checks: a rank's seq_len / cp tokens split over the tp ranks
            chosen &= (cols["tp"] > 1) & ((model.seq // cols["cp"]) % cols["tp"] == 0)
        if not chosen.any():
            continue
        piped = group[0] > 1
        rep = Execution(tp=2, pp=group[0], dp=2, cp=2, ep=2 if model.experts else 1, sequence_parallel=sp,
                        zero=zero, recompute=recompute, attention=attention, optimizer=optimizer, precision=precision,
                        **(pipeline.given if piped else {}))
        f = formulas(derivation, rep, sites, model.main)
        sub = {k: v[chosen] for k, v in cols.items()}
        m = int(chosen.sum())
        work = [[piece_work(p, precision) for p in st.pieces] for st in f.stages]
        sent = [[(r.dim, r.sent) for r in f.records[st.name]] for st in f.stages]
        evaluated = iter(_evaluate([f.per_stage[st.name]["peak_bytes"] for st in f.stages]
                                + [f.closed(e) for pieces in work for pair in pieces for e in pair]
                                + [f.closed(e) for links in sent for _, e in links], subst, sub, m))
        peaks = np.array([next(evaluated) for _ in f.stages])
        memory, loaded = peaks.max(axis=0), peaks.argmax(axis=0)  # the most loaded rank, whose links plan times
        runs = sub["microbatches"] / (2 if piped and pipeline.schedule == "dualpipe" else 1)  # schedule.runs
        compute = np.zeros(m)
        for pieces in work:
            seconds = np.zeros(m)
            for _ in pieces:
                flops, moved = next(evaluated), next(evaluated)
                seconds += np.maximum(flops / peak, moved / (hw.memory_GBps * 1e9))
            compute = np.maximum(compute, seconds * runs)
        comm = np.zeros((len(f.stages), m))
        for i, links in enumerate(sent):
            for dim, _ in links:
                comm[i] += next(evaluated) / link_bandwidth(dim, hw, sub["tp"], sub["cp"], sub["dp"], sub["ep"])
        comm = comm[loaded, np.arange(m)]
        bubble = idle(pipeline.schedule, sub["pp"], pipeline.virtual_stages) / sub["microbatches"] if piped else 0
        bound = compute * (1 + bubble) + (1 - run.overlap) * comm
        parts.append({**{k: sub[k] for k in ("tp", "pp", "dp", "ep", "cp", "micro_batch")},
                      "sequence_parallel": np.full(m, sp), "zero": np.full(m, zero),
                      "recompute": np.full(m, RECOMPUTE.index(recompute)), "memory_bytes": memory,
                      "step_seconds_bound": bound})
    table = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    memory, bound = table["memory_bytes"], table["step_seconds_bound"]
    fit = np.flatnonzero(memory <= run.usable(hw))
    # fastest first; equally fast layouts (a ZeRO stage that moves no more, say) the one that needs less memory
    order = fit[np.lexsort((memory[fit], bound[fit]))]
    columns = {k: v[order].tolist() for k, v in table.items()}
    columns["recompute"] = [RECOMPUTE[i] for i in columns["recompute"]]
    fitting = [dict(zip(columns, row)) for row in zip(*columns.values())]
    # a row is on the front when it needs less memory than every faster one
    ranked = memory[order]
    faster = np.concatenate(([np.inf], np.minimum.accumulate(ranked)[:-1]))
    front = [fitting[i] for i in np.flatnonzero(ranked < faster)]
    keys = ("tp", "pp", "dp", "ep", "cp", "micro_batch", "sequence_parallel", "zero", "recompute")
    best = [plan(derivation, Execution(**{k: r[k] for k in keys}, global_batch=batch, attention=attention,
                                       optimizer=optimizer, precision=precision,
                                       **(pipeline.given if r["pp"] > 1 else {})), hw, hardware, values, run)
            for r in fitting[:top]]
    return Search(derivation.spec.name, gpus, hardware, len(memory), fitting, front, best, float(memory.min()), top,
                  pipeline)


SMALLEST = ("tp", "pp", "cp", "ep")


def smallest(derivation: Derivation, dims: tuple[str, ...], settings: dict, values: Mapping[str, int] | None,
             gpus: int | None, *, hardware: str = "h100-sxm", hardware_file: str | None = None, precision=None,
             run: Run = Run(), efficiency=None) -> tuple[Plan, int]:
    """The layout with the smallest product of `dims` (say tp x pp) whose plan fits, the other
    settings (the execution's) as given (dp from `gpus` when given); among equal products, the
    fastest by the roofline bound. Each candidate is planned exactly (with `efficiency`, plan's). Returns it and
    how many were planned."""
    from ..evaluate import dim_values

    if gpus is not None:
        check_gpus(gpus)
    unknown = [d for d in dims if d not in SMALLEST]
    if not dims or unknown or len(set(dims)) != len(dims):
        raise SpecError(f"smallest {','.join(dims)}: expected distinct names from {', '.join(SMALLEST)}", param="smallest")
    subst = dim_values(derivation, values)
    hw, precision = _hardware(hardware, hardware_file), precision_of(precision)
    model = splits(derivation, lambda e: sympy.sympify(e).xreplace(subst), layer_sites(derivation, 1))
    limit = gpus or 4096
    ranges = {"tp": list(filter(model.tp, _divisors(limit))), "pp": [p for p in _divisors(model.layers) if p <= limit],
              "cp": [c for c in _divisors(model.seq) if c <= limit], "ep": list(filter(model.ep, _divisors(limit)))}
    if math.prod(len(ranges[d]) for d in dims) > MAX_CANDIDATES:
        raise SpecError(f"more than {MAX_CANDIDATES:,} combinations of {', '.join(dims)}; give `gpus=`, or fewer sizes")
    combos = sorted(itertools.product(*(ranges[d] for d in dims)), key=lambda c: (math.prod(c), c))
    planned, fitting, product = 0, [], None
    for combo in combos:
        size = math.prod(combo)
        if fitting and size != product:
            break
        try:
            ex = execution_of({**settings, **dict(zip(dims, combo))}, gpus, precision)
            p = plan(derivation, ex, hw, hardware, values, run, efficiency)
        except SpecError:  # this combination does not divide the model or the GPUs
            continue
        planned += 1
        if p.fits:
            fitting.append(p)
            product = size
    if not fitting:
        raise SpecError(f"no {' x '.join(dims)} fits: tried {planned} layouts"
                        + (f" of {gpus} GPUs" if gpus else "") + "; add GPUs, shard more (`zero=3`), or recompute")
    return min(fitting, key=lambda p: p.numbers["step_seconds_bound"]), planned
