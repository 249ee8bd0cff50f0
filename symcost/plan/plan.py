"""Model x execution x system -> the plan: per-GPU memory on the most loaded rank,
communication by collective and dimension, time and cost.

Memory and communication are closed forms in the spec's dims and the execution's symbols
(tp, pp, dp, ep, cp, v, micro_batch, microbatches); each layer's share on a rank comes from
its own cost rules applied to the piece one tensor-parallel rank holds (rules.py), so a
rank's parameters, FLOPs and saved bytes are exact wherever the layer's rules are.
Time is never a measurement: it follows from an assumed MFU, is a roofline bound, or is predicted by an
efficiency entry fitted on published runs (plan/time.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import sympy

from ..components.base import Component
from ..derive import Derivation, Site, derive, mtp_subject
from ..errors import SpecError
from ..memory import ACTIVATIONS_TUNED, closer
from ..precision import recomputed_activations
from ..results import Result
from .comm import Record, dp_comm, host_comm, pp_comm
from .execution import CP, DP, EP, ONE, RESERVED, M, Execution, Run
from .pieces import HELD, Stage, layer_sites, pieces_of, quantized, stage_of, tokens_per_sequence, transient
from .rules import Rule
from .schedule import NOTES as SCHEDULE_NOTES, in_flight, main_repeat, names, others, parts, placed, runs, stage_layers
from .system import Hardware


@dataclass(frozen=True, repr=False)
class Plan(Result):
    name: str
    execution: Execution
    hardware: Hardware
    hardware_key: str
    stage: str  # the most loaded pipeline stage, whose rank is reported
    exprs: dict[str, sympy.Expr]  # per-GPU bytes and times, closed forms
    numbers: dict[str, object]
    comm: tuple[tuple[Record, object, object], ...]  # (record, payload, sent) at the plan's sizes
    notes: tuple[str, ...]
    fits: bool
    per_stage: dict[str, dict[str, object]]  # each pipeline stage's per-GPU figures
    convention: str
    values: dict  # the dims the plan was asked at
    roofline: list[dict]  # the most loaded stage's pieces: FLOPs, bytes moved, seconds, bound
    estimates: list  # published estimates beside the exact counts
    run: Run  # what the time and cost rest on
    searched: int | None = None  # with smallest: the layouts planned to find this one
    held: dict = field(default_factory=dict)  # a fine-tune's trainable and frozen parameters (Derivation.held)

    def to_dict(self) -> dict:
        from ..render.plan import plan_data

        return plan_data(self)

    def text(self, width: int | None = None, formulas: bool = False) -> str:
        from ..render.plan import plan_text

        return plan_text(self, width, formulas)

    def summary(self):
        from ..render.text import bytes_human

        n = self.numbers
        return f"{self.name} on {self.execution.gpus} x {self.hardware.name}", [
            ("per GPU (peak)", bytes_human(n["peak_bytes"])),
            ("fits", "yes" if self.fits else "no"),
            ("step (assumed MFU)", f"{float(n['step_seconds']):.3g} s"),
        ]

def _check(derivation: Derivation, ex: Execution, value, sites: list[tuple[Site, Rule]], main: int | None) -> None:
    spec = derivation.spec
    for name in RESERVED:
        if name in spec.dimset:
            raise spec.doc.error(("dims", name), f"dim {name!r} is an execution symbol of `plan`; rename it")
    for key, message in ex.problems():
        raise SpecError(f"{key}: {message}")
    if ex.ep > 1 and not any(s.component.routes_tokens for s, _ in sites):
        raise SpecError(f"ep {ex.ep}: the spec has no moe layer to split over expert-parallel ranks")
    seq = tokens_per_sequence(derivation, value)
    if seq % ex.cp:
        raise SpecError(f"seq_len {seq} does not split evenly over {ex.cp} ranks of context parallelism (cp)")
    if ex.sequence_parallel and (seq // ex.cp) % ex.tp:
        raise SpecError(f"a rank's {seq // ex.cp} tokens (seq_len / cp) do not split evenly over {ex.tp} ranks of "
                        "sequence parallelism (tp)")
    for site, rule in sites:
        for name, size in rule.divides(site.component):
            if value(size) % ex.tp and not (name == "vocab" and ex.vocab_multiple is not None):
                raise spec.doc.error(site.where + (name,), f"tp {ex.tp} does not divide {name} = {value(size)}"
                                     + ("; pad it as Megatron-LM does, with vocab_multiple 128"
                                        if name == "vocab" else ""))
        if site.component.routes_tokens and value(site.component.experts) % ex.ep:
            raise spec.doc.error(site.where + ("experts",), f"ep {ex.ep} does not divide {value(site.component.experts)} experts")
    if ex.zero == 3 and quantized(derivation):
        raise spec.doc.error(("finetune", "method"), QLORA_ZERO3)
    pipeline_refusal(derivation, ex, sites, main, value)
    if ex.pp > 1:
        layers = value(spec.layers[main].repeat)
        where = ("layers", main, "repeat")
        if not ex.uneven and (layers < parts(ex) or layers % parts(ex)):
            into = "2 x pp" if ex.schedule == "dualpipev" else "pp x v"
            under = " under 1F1B, ZB-H1 or DualPipe (a stage list)" if ex.schedule == "dualpipev" else ""
            raise spec.doc.error(where, f"{layers} repeated blocks do not split evenly into {into} = {parts(ex)} "
                                        "pipeline stages; give stage_layers (or first_stage_layers and "
                                        f"last_stage_layers) for an uneven split{under}")
        if ex.uneven and not ex.listed:
            shares = {n: value(stage_layers(n, ex, layers).xreplace(ex.values()))
                      for n in ("first", "last") + (("middle",) if ex.pp > 2 else ())}
            if any(not (v.is_Integer and v >= 1) for v in shares.values()) or (
                    ex.pp == 2 and shares["first"] + shares["last"] != layers):
                raise spec.doc.error(where, f"{layers} repeated blocks do not split into stages of "
                                            + ", ".join(f"{n} {v}" for n, v in shares.items())
                                            + f" over pp = {ex.pp} (each a whole number of layers, at least one)")


def mtp_placement(derivation: Derivation, values, ex: Execution) -> list[str]:
    """Where the plan trains a spec's MTP modules (none without them)."""
    if (named := mtp_subject(derivation, values)) is None:
        return []
    subject, several = named
    whole = sorted({s.component.kind for s in derivation.mtp_sites if s.in_mtp and ex.tp > 1
                    and isinstance(s.component, Component) and type(s.component).parallel is None})
    return [f"{subject}) {'train' if several else 'trains'} on the rank holding the model's head (DeepSeek-V3's "
            f"placement), {'each module ' if several else ''}running the head once more; under full recomputation "
            f"{'the modules keep their' if several else 'it keeps its'} activations (only the repeats are checkpointed)"
            + (f"; {'their' if several else 'its'} {', '.join(whole)} layers, with no tensor-parallel rule, run whole "
               "on each tp rank" if whole else "")]


def pipeline_refusal(derivation: Derivation, ex: Execution, sites, main: int | None, value) -> None:
    """What refuses a pipeline whatever its size (the search checks it once): a schedule folding stages from
    both ends over a gradient that starts inside a repeat, no repeat to split, a stage list that is not the
    repeat's layers."""
    folded = (f"virtual_stages {ex.virtual_stages}" if ex.virtual_stages > 1 else f"schedule {ex.schedule}"
              if ex.schedule in ("dualpipe", "dualpipev") else None)  # a rank holds stages from both ends
    if folded and any(site.later for site, _ in sites):
        raise SpecError(f"{folded}: a gradient starts inside the first pass of a repeat (raw inputs, or a "
                        "fine-tune's frozen layers), whose passes this schedule's stages would split unevenly; plan "
                        "the 1F1B schedule (virtual stages 1)")
    if ex.pp == 1:
        return
    if main is None:
        raise SpecError("pp > 1 splits a top-level `repeat` block over pipeline stages; this spec has none")
    layers = value(derivation.spec.layers[main].repeat)
    if ex.listed and sum(ex.stage_layers) != layers:
        listed = ",".join(map(str, ex.stage_layers))
        raise derivation.spec.doc.error(("layers", main, "repeat"), f"stage_layers {listed} hold "
                                        f"{sum(ex.stage_layers)} layers; the repeat has {layers}")


# FSDP-QLoRA shards 4-bit weights stored in a 16-bit container (bitsandbytes' quant_storage) and keeps
# their quantization state whole on each rank: neither is a rule here, nor checked against PyTorch
QLORA_ZERO3 = ("ZeRO-3 (FSDP) of QLoRA's quantized weights is not modelled; plan QLoRA with zero 0-2 (the "
               "quantized weights whole on each rank)")


ZERO = sympy.Integer(0)
HOST_GRAD_BYTES = 4  # an offloaded gradient's bytes on the host: fp32 (DeepSpeed's CPU Adam steps on them)


@dataclass(frozen=True)
class Formulas:
    """A plan's closed forms for one set of discrete choices (schedule, ZeRO, recomputation, sequence
    parallelism): symbolic in the dims and in tp, pp, dp, ep, cp, v, micro_batch, microbatches."""

    stages: tuple[Stage, ...]
    per_stage: dict[str, dict[str, sympy.Expr]]  # stage -> bytes per GPU by kind, and total
    records: dict[str, tuple[Record, ...]]  # stage -> its rank's collectives per step
    model_flops: sympy.Expr  # per step, the whole model, no recomputation
    hardware_flops: sympy.Expr  # per step, recomputation included
    closed: object  # expression -> its closed form (activation bytes and derived dims substituted)

def formulas(derivation: Derivation, ex: Execution, sites: list[tuple[Site, Rule]],
             main: int | None = None) -> Formulas:
    main = main_repeat(derivation) if main is None else main
    layers = derivation.spec.layers[main].repeat if main is not None else ONE
    act = ex.precision.bytes("activations")
    pieces = []
    for site, r in sites:
        top = len(derivation.spec.layers) if site.in_mtp else site.where[1]  # the MTP's: after all
        place = placed(top, main)
        pieces += pieces_of(derivation, site, r, place, top, layers, ex)
    if derivation.spec.mtp is not None:  # each module runs the shared head again: its FLOPs, logits, no weights
        depth, none = derivation.spec.mtp.depth, sympy.Integer(0)
        pieces += [replace(p, count=p.count * depth, passes=p.passes * depth, logits=p.logits * depth,
                           **dict.fromkeys(HELD, none)) for p in pieces if p.site.component.holds_logits]

    held_bytes = ex.precision.state_bytes(ex.optimizer)
    w_bytes, g_bytes = ex.precision.bytes("weights"), ex.precision.bytes("grads")
    stages = tuple(stage_of(n, pieces, derivation, ex, stage_layers(n, ex, layers), act) for n in names(ex))
    closed = closer(derivation, act)
    dense_group, expert_group = DP * CP, DP * CP / EP
    split = lambda zero_stage, dense, expert: (dense / dense_group + expert / expert_group if ex.zero >= zero_stage
                                              else dense + expert)
    per_stage, records = {}, {}
    for s in stages:
        # QLoRA's quantized weights take their own bytes; gradients and optimizer states are the trainable ones
        weights = (w_bytes * split(3, s.weights - s.packed, s.expert - s.expert_packed)
                   + split(3, s.packed_bytes, s.expert_packed_bytes))
        grads, states = g_bytes * split(2, s.trainable, s.expert_trainable), held_bytes * split(1, s.trainable,
                                                                                               s.expert_trainable)
        # offloaded (execution.py): what the host holds leaves the GPU; ZeRO-2's gradients stream out as reduced
        per = {"weights_bytes": ZERO if ex.offload == "all" else weights,
               "gradient_bytes": ZERO if ex.offload != "none" and ex.zero >= 2 else grads,
               "optimizer_bytes": ZERO if ex.offload != "none" else states,
               "activation_bytes": s.activations}
        per["total_bytes"] = sum(per.values())
        per["transient_bytes"] = transient(s, ex, w_bytes)  # an estimate, apart from the exact total
        per_stage[s.name] = {k: closed(e) for k, e in per.items()}
        per_stage[s.name]["peak_bytes"] = per_stage[s.name]["total_bytes"] + per_stage[s.name]["transient_bytes"]
        if ex.offload != "none":  # the rank's shard of gradients in fp32 there, as DeepSpeed's CPU optimizer keeps
            host = states + HOST_GRAD_BYTES * split(1, s.trainable, s.expert_trainable)
            per_stage[s.name]["host_bytes"] = closed(host + (weights if ex.offload == "all" else ZERO))
        records[s.name] = (s.comm + tuple(dp_comm(s, ex, w_bytes, g_bytes, dense_group, expert_group))
                           + tuple(pp_comm(s, ex, act, per["gradient_bytes"]))
                           + tuple(host_comm(s, ex, w_bytes, g_bytes, dense_group, expert_group)))
    model = closed(sum(p.model * p.passes for p in pieces) * M * DP)
    hardware = closed(sum((p.model + p.model_recomputed) * p.passes for p in pieces) * M * DP)
    return Formulas(stages, per_stage, records, model, hardware, closed)

def mfu_flops(derivation: Derivation, convention: str, model, subst, tokens_per_step: int):
    """A step's FLOPs as the MFU convention counts them: the model FLOPs (the derivation's convention); the
    same with causal attention's kept scores only (scaled by the kernel convention's train FLOPs over the
    derivation's, both linear in the batch); or 6 x active parameters x tokens."""
    if convention == "pytorch":
        return model
    total = lambda d: sympy.sympify(d.total.train if convention == "causal" else d.total.active_params).xreplace(subst)
    if convention == "6nd":
        return 6 * total(derivation) * tokens_per_step
    return model * total(derive(derivation.spec, "kernel")) / total(derivation)


def plan(derivation: Derivation, ex: Execution, hardware: Hardware, hardware_key: str = "",
         values: Mapping[str, int] | None = None, run: Run = Run(), efficiency=None) -> Plan:
    """The plan of a run (the module docstring); `efficiency`: the hardware's training entry of an efficiency
    file (plan/efficiency.py), which adds a predicted step time, or None."""
    from ..evaluate import dim_values
    from .time import efficiency_notes, timing

    spec = derivation.spec
    if spec.quantization is not None:
        raise spec.doc.error(("quantization",), "plan trains a model, which a quantized checkpoint is not: drop the "
                             "quantization block (or see `symcost serve`)")
    if spec.finetune is not None and recomputed_activations(ex.recompute):
        raise SpecError(ACTIVATIONS_TUNED, param="recompute")
    subst = dim_values(derivation, values)
    value = lambda e: sympy.sympify(e).xreplace(subst)
    sites = layer_sites(derivation, ex.tp, ex.cp)
    main = main_repeat(derivation, value)
    _check(derivation, ex, value, sites, main)
    f = formulas(derivation, ex, sites, main)
    execution_values = ex.values()
    at = lambda e: sympy.sympify(e).xreplace(subst).xreplace(execution_values)
    loaded = max(f.per_stage, key=lambda n: at(f.per_stage[n]["peak_bytes"]))
    stage = next(s for s in f.stages if s.name == loaded)
    exprs = dict(f.per_stage[loaded])
    exprs["model_flops_per_step"] = f.model_flops
    exprs["hardware_flops_per_step"] = f.hardware_flops
    exprs["rank_flops_per_step"] = f.closed(sum((p.train + p.recomputed) * p.count for p in stage.pieces) * runs(ex))
    numbers = {k: at(e) for k, e in exprs.items()}
    tokens_per_step = int(ex.sequences * tokens_per_sequence(derivation, value))
    numbers["mfu_flops_per_step"] = mfu_flops(derivation, run.flop_convention, numbers["model_flops_per_step"],
                                              subst, tokens_per_step)
    comm = tuple((r, at(f.closed(r.payload)), at(f.closed(r.sent))) for r in f.records[loaded])
    if run.ep_imbalance != 1 and ex.ep == 1:
        raise SpecError("ep_imbalance: routing imbalance stretches the busiest expert-parallel rank; give ep > 1",
                        param="ep_imbalance")
    timed, notes, rows = timing(ex, hardware, f.stages, numbers, comm, at, f.closed, run,
                                tokens_per_step=tokens_per_step,
                                hardware_flops=numbers["hardware_flops_per_step"], efficiency=efficiency)
    notes += efficiency_notes(efficiency, hardware_key or hardware.name, ex)
    if run.ep_imbalance != 1:
        notes.append(f"routing imbalance {run.ep_imbalance:g} (given): the busiest expert-parallel rank's routed "
                     "experts run that many times the mean tokens, and its all-to-all takes that many times as long, "
                     "in the time estimates; its memory (the token buffers') is the balanced one")
    numbers |= timed
    from .estimates import estimates

    published = estimates(derivation, ex, stage, numbers, at, in_flight(loaded, ex)[0])
    fits = numbers["peak_bytes"] <= run.usable(hardware)
    from ..memory import dropout_notes, recompute_notes

    held = derivation.held(subst)
    notes = (_notes(ex, loaded, derivation, held) + _split_note(derivation, ex, main, value)
             + recompute_notes(derivation, ex.recompute)
             + dropout_notes(derivation, ex.attention, ex.recompute) + notes + mtp_placement(derivation, values, ex))
    return Plan(spec.name, ex, hardware, hardware_key, loaded, exprs, numbers, comm, tuple(notes), bool(fits),
                {n: {k: at(e) for k, e in d.items()} for n, d in f.per_stage.items()}, derivation.convention.name,
                dict(values or {}), rows, published, run, held=held)

def _split_note(derivation: Derivation, ex: Execution, main: int | None, value) -> list[str]:
    """Which repeat the pipeline splits, where the spec has several."""
    if ex.pp == 1 or not (beside := others(derivation, main)):
        return []
    where = lambda i: f"layers/{i}/repeat ({value(derivation.spec.layers[i].repeat)} passes)"
    before, after = [where(i) for i in beside if i < main], [where(i) for i in beside if i > main]
    return [f"pipeline: the stages split {where(main)}, the longest top-level repeat"
            + (f"; {', '.join(before)} on the first stage, with the embedding" if before else "")
            + (f"; {', '.join(after)} on the last, with the head" if after else "")]


def _notes(ex: Execution, loaded: str, derivation: Derivation, held: dict) -> list[str]:
    notes = [
        f"per GPU: the {'most loaded pipeline rank (' + loaded + ')' if ex.pp > 1 else 'rank'}; weights "
        f"{ex.precision.dtype('weights')}, gradients {ex.precision.dtype('grads')}, {ex.optimizer} states "
        f"{ex.precision.dtype('optimizer')}" + (", fp32 master weights" if ex.precision.master_weights else "")
        + f", ZeRO stage {ex.zero}",
        f"activations ({ex.precision.dtype('activations')}): each layer's exact saved-for-backward rule applied to "
        f"the piece one tp rank runs; attention {ex.attention}; recomputation {ex.recompute}",
        "total: weights, gradients, optimizer states and activations (exact); peak (an estimate, as memory's; what "
        "fits reads): the total and what a micro-batch's backward starts with: the logits of the rank's head shard "
        "and two fp32 gradients of them, one repeat pass re-materialised under full recomputation, the largest "
        "layer gathered under ZeRO-3; not included: communication buffers, allocator fragmentation",
    ]
    if ex.offload != "none":
        notes.append(f"offload {ex.offload} (DeepSpeed's ZeRO-Offload{'/Infinity' if ex.offload == 'all' else ''}): "
                     "the host holds the rank's shard of optimizer states and master weights, its gradients in fp32"
                     + (" and its weights" if ex.offload == "all" else "") + "; the copies cross the host link "
                     "(communication: host), the host's optimizer step is not timed; the host's own memory "
                     "(host_bytes a GPU) is not checked")
    if derivation.tuned:
        notes.insert(1, derivation.spec.finetune.summary(held["params_trainable"]) + "; ZeRO-3 gathers the frozen "
                     "weights too, for the input gradients; each pipeline stage's input needs a gradient where an "
                     "earlier layer trains")
    if ex.cp > 1:
        notes.append("context parallelism: each rank keeps and computes its seq_len/cp share of every layer "
                     "(activations and FLOPs divided by cp; ring attention's keys and values in flight are "
                     "transient); modelled, not verified against PyTorch")
    if ex.ep > 1:
        notes.append("expert parallelism: all-to-all volumes and each rank's routed tokens assume balanced routing "
                     "(each expert gets its share; ep_imbalance stretches the busiest rank's time)")
    if ex.pp > 1 and ex.schedule in SCHEDULE_NOTES:
        notes.append(SCHEDULE_NOTES[ex.schedule])
    if ex.pp > 1 and ex.virtual_stages > 1:
        notes.append("interleaved pipeline: the first rank's layers outside the repeat are counted for each chunk in "
                     "flight (a bound)")
    if ex.dp > 1 and any(getattr(s.component, "scores_batch", False) for s in derivation.sites):
        notes.append("contrastive head: each rank scores its own micro-batch (micro_batch x micro_batch logits); "
                     "CLIP's training gathers every rank's embeddings first (logits of micro_batch x global batch, "
                     "an all-gather of both sides' vectors), which is not modelled")
    return notes
