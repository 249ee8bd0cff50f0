"""A MoE's routed experts kept in host memory, as people run DeepSeek- and Qwen-MoE models on one
or two small GPUs (llama.cpp's and ktransformers' expert offload):

- resident on each GPU: every weight but the routed experts (attention, dense and shared experts,
  routers, embeddings, head), the KV cache of the batch, the activation reserve, and as many routed
  experts as the rest of the memory holds (the expert cache);
- a decoded token reads k of each MoE layer's E experts; each one not cached crosses the host link.
  The hit rate is given, or, routing spread evenly over the experts (an assumption, said), the
  share of the routed experts' bytes the cache holds;
- the decode ceiling for one sequence: 1 / max(the GPU's step bound, the bytes crossing the link /
  its bandwidth), a bound on tokens per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..errors import DoesNotFit, SpecError


@dataclass(frozen=True)
class Routed:
    """The routed experts' bytes on one GPU (tp's share): all of them, and those one token reads."""

    total: int
    active: int


def routed(derivation, precision, values, tp: int) -> Routed:
    """Bytes of the routed experts (each MoE layer's `experts` part) in the weights' dtype or as the
    spec's quantization stores them, split by tp as the experts' hidden size is."""
    from ..components import REGISTRY
    from ..evaluate import dim_values

    subst = dim_values(derivation, values)
    w = precision.bytes("weights")
    total = active = sympy.Integer(0)
    for node in derivation.raw:
        kind = REGISTRY.get(node.kind)
        rule = kind.parallel if kind is not None and kind.routes_tokens else None  # its routed experts' part
        e = node.parts.get(rule.experts) if rule is not None else None
        if e is not None:
            total += (e.params - e.packed) * w + e.packed_bytes
            active += (e.active_params - e.active_packed) * w + e.active_packed_bytes
    if total == 0:
        raise SpecError("offload keeps a MoE's routed experts in host memory; this spec has no moe layer",
                        param="offload")
    at = lambda x: int(sympy.ceiling(x.xreplace(subst) / tp))
    return Routed(at(total), at(active))


def offload(r: Routed, room: int, step_seconds: float, hardware, hit_rate: float | None) -> dict:
    """The figures for `room` bytes of a GPU left for the expert cache (the module docstring)."""
    if hardware.host_link_GBps is None:
        raise SpecError(f"{hardware.name} has no host link in the catalog: give one (host_link_GBps) with "
                        "hardware_file", param="offload")
    if room < 0:
        raise DoesNotFit(f"with the routed experts in host memory, the rest still needs {-room / 2**30:.2f} GiB "
                         "more than the GPU's memory holds")
    cached = min(room, r.total)
    h = cached / r.total if hit_rate is None else hit_rate
    crossing = (1 - h) * r.active
    link = crossing / (hardware.host_link_GBps * 1e9)
    return {"routed_expert_bytes": r.total, "expert_cache_bytes": cached, "hit_rate": h,
            "hit_rate_assumed": hit_rate is None, "link_bytes_per_token": crossing, "link_seconds_per_token": link,
            "tokens_per_second_ceiling": 1 / max(step_seconds, link)}
