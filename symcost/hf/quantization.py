"""A config's `quantization_config` as a spec's `quantization:` block (symcost/quantization.py), or
one line saying why not. The methods transformers loads and their fields:

- `gptq`: `bits`, `group_size` (-1: one group a row); AutoGPTQ's packing (`checkpoint_format`
  gptq, not gptq_v2 or marlin's repacked one).
- `awq`: `bits` 4, `group_size`, `version` gemm (AutoAWQ's GEMM packing).
- `fp8` (transformers' FineGrainedFP8, DeepSeek-V3's): `weight_block_size` [128, 128], else per tensor.
- `bitsandbytes`: `load_in_4bit` with `bnb_4bit_quant_type` and `bnb_4bit_use_double_quant`, or
  `load_in_8bit` (LLM.int8).
- `mxfp4` (gpt-oss): the routed experts, the rest in 16 bits (its `modules_to_not_convert`).
- `compressed-tensors`: one config group of FP8 weights (per tensor, channel or 128 x 128 block),
  NVFP4 ones (float, 4 bits, groups of 16) or symmetric 4-bit integers by groups in the pack-quantized
  format (`int4`: Kimi-K2's experts); its other integer packings are refused.

The modules a method leaves in 16 bits must be the LM head and routers (which symcost's formats
never store), or, for mxfp4, everything but the experts, or, for compressed-tensors, what its `ignore`
patterns match among a decoder's modules (every linear but the routed experts': `which: experts`);
any other list is refused by name.
"""

from __future__ import annotations

import re

from .reader import Config

KEPT = ("lm_head", "gate", "router", "embed_tokens")  # what no format here stores anyway
# a decoder's linears by what they are, as transformers names them: what compressed-tensors' `ignore` patterns
# (module names, or `re:` regular expressions matched from the start) are tried on
MODULES = {"attention": ("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.o_proj"),
           "dense": ("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.down_proj"),
           "shared": ("model.layers.1.mlp.shared_experts.up_proj", "model.layers.1.mlp.shared_experts.down_proj"),
           "experts": ("model.layers.1.mlp.experts.0.up_proj", "model.layers.1.mlp.experts.0.down_proj")}


def quantization_of(c: Config) -> dict | None:
    """The quantization block for the config's `quantization_config`, or None where it has none."""
    q = c.get("quantization_config")
    if q is None:
        return None
    key = "quantization_config"
    if not isinstance(q, dict):
        raise c.error(key, f"expected an object, got {q!r}")
    method = q.get("quant_method")
    refuse = lambda why: c.error(key, f"quant_method {method!r}: {why}")
    kept = [m for m in (q.get("modules_to_not_convert") or []) + (q.get("ignore") or []) if isinstance(m, str)]
    if method == "mxfp4":
        return {"format": "mxfp4", "which": "experts"}
    if method == "compressed-tensors" and (which := _ignored(kept)) is not None:
        return _compressed(q, refuse) | which
    if other := [m for m in kept if not any(k in m for k in KEPT)]:
        raise refuse(f"keeps {', '.join(other[:3])} in 16 bits, which symcost's formats do not model")
    if method == "gptq":
        if q.get("checkpoint_format", "gptq") != "gptq":
            raise refuse(f"checkpoint_format {q['checkpoint_format']!r}: only AutoGPTQ's packing (gptq) is modelled")
        group = q.get("group_size", 128)
        return {"format": "gptq", "bits": q.get("bits", 4), "group": 2**20 if group == -1 else group}
    if method == "awq":
        if str(q.get("version", "gemm")).lower() != "gemm" or q.get("bits", 4) != 4:
            raise refuse("only AutoAWQ's 4-bit GEMM packing is modelled")
        return {"format": "awq", "group": q.get("group_size", 128)}
    if method == "fp8":
        block = q.get("weight_block_size")
        if block not in (None, [128, 128]):
            raise refuse(f"weight_block_size {block!r}: blocks of 128 x 128 (or per tensor) are modelled")
        return {"format": "fp8-block" if block else "fp8"}
    if method == "bitsandbytes":
        if q.get("load_in_8bit"):
            return {"format": "int8"}
        if q.get("load_in_4bit"):
            return {"format": q.get("bnb_4bit_quant_type", "fp4"),
                    "double_quant": bool(q.get("bnb_4bit_use_double_quant", False))}
        raise refuse("neither load_in_4bit nor load_in_8bit")
    if method == "compressed-tensors":
        return _compressed(q, refuse)
    raise refuse("not a method symcost models (gptq, awq, fp8, bitsandbytes, mxfp4, compressed-tensors)")


def _ignored(patterns: list[str]) -> dict | None:
    """`which: experts` where compressed-tensors' ignore patterns keep every linear but the routed experts' in
    16 bits (Kimi-K2's); None where they keep no more than the head and routers (or something else: refused)."""
    def kept(name: str) -> bool:
        return any(re.match(p[3:], name) if p.startswith("re:") else p == name for p in patterns)

    held = {kind: all(kept(name) for name in names) for kind, names in MODULES.items()}
    if held["attention"] and held["dense"] and held["shared"] and not any(kept(n) for n in MODULES["experts"]):
        return {"which": "experts"}
    return None


def _compressed(q: dict, refuse) -> dict:
    groups = q.get("config_groups") or {}
    if len(groups) != 1:
        raise refuse(f"{len(groups)} config groups: one is modelled")
    w = (next(iter(groups.values())) or {}).get("weights") or {}
    kind, bits, strategy = w.get("type"), w.get("num_bits"), w.get("strategy")
    if kind == "float" and bits == 8:
        if strategy == "block" and w.get("block_structure") in ([128, 128], "128x128"):
            return {"format": "fp8-block"}
        if strategy in ("tensor", "channel"):
            return {"format": "fp8" if strategy == "tensor" else "fp8-channel"}
    if kind == "float" and bits == 4 and strategy in ("group", "tensor_group") and w.get("group_size") == 16:
        return {"format": "nvfp4"}
    if (kind == "int" and bits == 4 and strategy == "group" and w.get("symmetric", True)
            and q.get("format") == "pack-quantized" and isinstance(w.get("group_size"), int) and w["group_size"] > 0):
        return {"format": "int4", "group": w["group_size"]}
    raise refuse(f"weights {kind} {bits}-bit by {strategy} ({q.get('format')}): FP8 (tensor, channel, 128 x 128 "
                 "block), NVFP4 and symmetric pack-quantized 4-bit integers by groups are modelled")
