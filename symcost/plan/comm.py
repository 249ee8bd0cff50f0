"""The plan's communication: each collective a rank takes part in per step, as a Record with its
payload and calls in closed form — tensor and sequence parallelism around each region (Megatron's
f and g), context parallelism's ring, expert parallelism's all-to-all, data parallelism's gradient
synchronisation by ZeRO stage, and the pipeline's sends. collectives.py says what each sends."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import sympy

from ..derive import Site
from ..precision import recomputed_layers
from . import collectives
from .execution import CP, EP, MB, ONE, TP, Execution
from .schedule import runs, sends

if TYPE_CHECKING:
    from .pieces import Piece, Stage


@dataclass(frozen=True)
class Record:
    """One collective a rank takes part in, per optimizer step."""

    dim: str  # tp, sp, cp, pp, dp, ep; host (an offloaded run's copies over the host link)
    collective: str  # all_reduce, all_gather, reduce_scatter, all_to_all, send_recv, copy
    passes: str  # forward, backward, step
    path: str  # the layer (dotted spec path), or `weights`
    payload: sympy.Expr  # bytes of the tensor the collective is about (see collectives.py)
    calls: sympy.Expr  # per step on this rank
    group: sympy.Expr  # ranks in the collective
    note: str = ""  # why, where the collective is one implementation's choice

    @property
    def sent(self) -> sympy.Expr:
        """Bytes this rank sends per step."""
        return collectives.SENT[self.collective](self.payload, self.group) * self.calls

def _tokens_bytes(site: Site, act) -> sympy.Expr:
    """Bytes of the stream one micro-batch carries at this layer's input, per cp rank."""
    return MB * site.ctx.seq_len * site.component.dim * act / CP

def tp_comm(p: Piece, ex: Execution, act) -> list[Record]:
    """Megatron's f and g operators around a tensor-parallel region (Shoeybi et al. 2019, Fig. 3);
    under sequence parallelism each all-reduce is an all-gather plus a reduce-scatter (Korthikanti
    et al. 2022, Fig. 5), and backward all-gathers the sequence-split input again for the weight
    gradient (Megatron keeps only the shard)."""
    if ex.tp == 1 or p.rule.region == "replicated":
        return []
    region, grad_in = p.rule.region, p.site.ctx.flow.grad
    payload, calls, path = _tokens_bytes(p.site, act), p.count * runs(ex), p.path
    fwd_out = region in ("parallel", "vocab_in")  # the row-parallel exit / the table's partial sums
    bwd_in = region in ("parallel", "vocab_out") and grad_in  # the column-parallel entry's input gradient
    again = 2 if ex.recompute == "full" and p.place == "block" else 1  # full recomputation reruns forward
    out = _tp_records(region, grad_in, fwd_out, bwd_in, path, payload, calls, again, ex.sequence_parallel)
    if p.site.component.recompute_part in recomputed_layers(ex.recompute):
        # checkpointed whole (torch.utils.checkpoint): backward runs its forward again as far as the last tensor it
        # keeps, so the entry's gather again, the exit's reduction only where an output dropout mask follows it
        mask = p.site.component.output_mask(p.site.ctx)
        exits = sympy.Piecewise((1, sympy.sympify(mask) > 0), (0, True)) if mask != 0 else sympy.Integer(0)
        out += [replace(r, passes="backward", calls=r.calls * (1 if r.collective == "all_gather" else exits))
                for r in out if r.passes == "forward"]
    return out

def _tp_records(region, grad_in, fwd_out, bwd_in, path, payload, calls, again, sequence_parallel) -> list[Record]:
    out = []
    if not sequence_parallel:
        if fwd_out:
            out.append(Record("tp", "all_reduce", "forward", path, payload, calls * again, TP))
        if bwd_in:
            out.append(Record("tp", "all_reduce", "backward", path, payload, calls, TP))
        return out
    if region in ("parallel", "vocab_out"):  # gather the sequence-split input
        out.append(Record("sp", "all_gather", "forward", path, payload, calls * again, TP))
        out.append(Record("sp", "all_gather", "backward", path, payload, calls, TP, REGATHER))
        if grad_in:
            out.append(Record("sp", "reduce_scatter", "backward", path, payload, calls, TP))
    if fwd_out:
        out.append(Record("sp", "reduce_scatter", "forward", path, payload, calls * again, TP))
        out.append(Record("sp", "all_gather", "backward", path, payload, calls, TP))
    return out

REGATHER = ("Megatron-LM keeps only the sequence shard of a region's input and all-gathers it again for the "
            "weight gradient (PyTorch's DTensor keeps the gathered input instead)")
SCATTER_GATHER = ("Megatron-LM's scatter/gather between pipeline stages (Narayanan et al. 2021, Sec. 4.1): the "
                  "received slices all-gathered over the tensor-parallel ranks")

def other_comm(p: Piece, ex: Execution, act) -> list[Record]:
    c, calls, out = p.site.component, p.count * runs(ex), []
    if ex.cp > 1 and (values := c.ring()) is not None:  # ring attention: keys and values go round, gradients back
        kv = MB * p.site.ctx.seq_len / CP * values / TP * act
        out.append(Record("cp", "send_recv", "forward", p.path, kv, calls * (CP - 1), ONE))
        out.append(Record("cp", "send_recv", "backward", p.path, kv, 2 * calls * (CP - 1), ONE))
    if ex.ep > 1 and c.routes_tokens:  # dispatch to the experts' ranks and combine back, each way
        routed = MB * p.site.ctx.seq_len / CP * c.top_k * c.dim * act
        out.append(Record("ep", "all_to_all", "forward", p.path, routed, 2 * calls, EP))
        out.append(Record("ep", "all_to_all", "backward", p.path, routed, 2 * calls, EP))
    return out

def dp_comm(stage: Stage, ex: Execution, w_bytes, g_bytes, dense_group, expert_group) -> list[Record]:
    """Gradient synchronisation over the data-parallel ranks (cp ranks hold the same weights, so
    they join it): one all-reduce per step without ZeRO or with stage 1 (Megatron's distributed
    optimizer: a reduce-scatter and an all-gather of the updated weights); a reduce-scatter per
    micro-batch at stage 2; at stage 3 the weights are all-gathered for forward and again for
    backward, every micro-batch (PyTorch FSDP, reshard after forward). Under a fine-tune only the
    trainable parameters have gradients and updates; ZeRO-3 gathers every weight (a frozen layer's
    too: its input gradient needs it)."""
    out, each = [], runs(ex)  # micro-batches a held layer runs
    for kind, params, trained, group, n in (
            ("dense", stage.weights, stage.trainable, dense_group, ex.dp * ex.cp),
            ("expert", stage.expert, stage.expert_trainable, expert_group, ex.dp * ex.cp // ex.ep)):
        if n == 1 or params == 0:
            continue
        grads, updated, weights, where = trained * g_bytes, trained * w_bytes, params * w_bytes, f"weights ({kind})"
        if ex.zero == 0:
            out.append(Record("dp", "all_reduce", "step", where, grads, ONE, group))
        elif ex.zero == 1:
            out += [Record("dp", "reduce_scatter", "step", where, grads, ONE, group),
                    Record("dp", "all_gather", "step", where, updated, ONE, group)]
        elif ex.zero == 2:
            out += [Record("dp", "reduce_scatter", "backward", where, grads, each, group),
                    Record("dp", "all_gather", "step", where, updated, ONE, group)]
        else:
            out += [Record("dp", "all_gather", "forward", where, weights, each, group),
                    Record("dp", "all_gather", "backward", where, weights, each, group),
                    Record("dp", "reduce_scatter", "backward", where, grads, each, group)]
    return [r for r in out if r.payload != 0]

def host_comm(stage: Stage, ex: Execution, w_bytes, g_bytes, dense_group, expert_group) -> list[Record]:
    """Copies over the host link of an offloaded run (execution.py): the rank's reduced gradient shard out, once a
    step (ZeRO-1) or each micro-batch (ZeRO-2 and 3 stream it out as it is reduced), its updated weight shard back
    once a step — or, with the weights offloaded too, its weight shard in for each micro-batch's forward and
    backward. The host's optimizer step itself is not timed."""
    if ex.offload == "none":
        return []
    shard = lambda dense, expert: dense / dense_group + expert / expert_group
    trained, held = shard(stage.trainable, stage.expert_trainable), shard(stage.weights, stage.expert)
    each = runs(ex)
    out = [Record("host", "copy", "backward", "gradients (to the host)", g_bytes * trained,
                  each if ex.zero >= 2 else ONE, ONE)]
    if ex.offload == "all":
        out += [Record("host", "copy", when, "weights (from the host)", w_bytes * held, each, ONE)
                for when in ("forward", "backward")]
    else:
        out.append(Record("host", "copy", "step", "weights (updated, from the host)", w_bytes * trained, ONE, ONE))
    return [r for r in out if r.payload != 0]

def pp_comm(stage: Stage, ex: Execution, act, grads) -> list[Record]:
    """Activations to the next stage in forward, their gradients back in backward, per micro-batch and chunk
    (how many the schedule says: schedule.sends). Each tp rank sends its 1/tp of the tensor: a sequence shard
    under sequence parallelism; without it, Megatron-LM's scatter/gather (Narayanan et al. 2021, Sec. 4.1: each
    rank sends a slice over the inter-node link, the receiving ranks all-gather the slices over the node's)
    — a rank receives in forward what it sends in backward and the reverse. Under DualPipe each stage is held by
    two ranks (r and pp - 1 - r), whose gradients are summed once a step: an all-reduce of the gradient bytes the
    rank holds (its ZeRO-2/3 shard) between the two."""
    if ex.pp == 1:
        return []
    site = next(p.site for p in stage.pieces if p.place == "block")
    whole = MB * site.ctx.seq_len * site.ctx.flow.width * act / CP
    counts = sends(stage.name, ex)
    out = [Record("pp", "send_recv", when, "stage boundary", whole / TP, count, ONE)
           for when, count in zip(("forward", "backward"), counts) if count != 0]
    if ex.tp > 1 and not ex.sequence_parallel:
        out += [Record("tp", "all_gather", when, "stage boundary", whole, count, TP, SCATTER_GATHER)
                for when, count in zip(("forward", "backward"), reversed(counts)) if count != 0]
    if ex.schedule == "dualpipe":
        out.append(Record("pp", "all_reduce", "step", "weights (DualPipe's two copies)", grads, ONE, sympy.Integer(2)))
    return out
