"""Weights stored quantized for serving: a spec's `quantization:` block (or `serve --weights-format`).

Each format is a rule for the bytes one linear's d_out x d_in weight takes with its constants,
as the format's checkpoint tensors hold them (what a safetensors header lists and a serving
engine loads); a linear's bias, and every weight that is not a linear's, stays in the weights'
dtype. Which linears a format stores (`which`):

- `all-linear`: every linear of every layer but the routers (and Qwen2-MoE's one-output shared
  gate) and the output layer (the LM head): what GPTQ, AWQ, bitsandbytes, llm-compressor's FP8 and
  NVFP4 recipes quantize by default.
- `experts`: a MoE's routed experts only, as gpt-oss ships its MXFP4 weights.

The formats, n = d_in x d_out values:

- `fp8`: one byte a value and one fp32 scale per tensor (per-tensor FP8, vLLM's Fp8LinearMethod).
- `fp8-channel`: one byte a value and an fp32 scale per output row.
- `fp8-block`: one byte a value and an fp32 scale per 128 x 128 block (DeepSeek-V3's
  `weight_scale_inv`, ceil(d_out/128) x ceil(d_in/128)).
- `int8`: bitsandbytes' LLM.int8 (one byte a value and an fp32 scale per output row; finetune.py).
- `nf4` (and `fp4`): bitsandbytes' 4-bit storage (blocks of 64, doubly quantized constants by
  default; finetune.four_bit_bytes).
- `gptq`: AutoGPTQ's packing at `bits` (4 or 8) and `group` (default 128): `qweight` int32
  (d_in·bits/32, d_out), `qzeros` int32 (ceil(d_in/g), d_out·bits/32), `scales` fp16
  (ceil(d_in/g), d_out) and `g_idx` int32 (d_in).
- `awq`: AutoAWQ's GEMM packing (4 bits): `qweight` int32 (d_in, d_out/8), `qzeros` int32
  (ceil(d_in/g), d_out/8), `scales` fp16 (ceil(d_in/g), d_out).
- `int4`: compressed-tensors' pack-quantized W4A16, symmetric (Kimi-K2's experts; llm-compressor's
  W4A16 recipes): `weight_packed` int32 (d_out, ceil(d_in/8)), `weight_scale` 16-bit (d_out,
  ceil(d_in/g)) and `weight_shape` int32 (2).
- `mxfp4`: the OCP MX format: two values a byte and one E8M0 byte scale per 32 values along the
  input (gpt-oss's `_blocks` and `_scales`).
- `mxfp8`: the same with FP8 (E4M3) values, one a byte (Blackwell's MXFP8 matmuls).
- `nvfp4`: two values a byte, one FP8 (E4M3) scale per 16 values along the input, and two fp32
  global scales a tensor (compressed-tensors' `weight_global_scale` and `input_global_scale`).
"""

from __future__ import annotations

from typing import Literal

import sympy
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from .cost import Cost
from .finetune import four_bit_bytes, int8_bytes

FORMATS = ("fp8", "fp8-channel", "fp8-block", "int8", "nf4", "fp4", "gptq", "awq", "int4", "mxfp4", "mxfp8", "nvfp4")
WHICH = ("all-linear", "experts")
GROUPED = ("gptq", "awq", "int4")  # the formats whose `group` and `bits` are settings
BITS = {"fp8": 8, "fp8-channel": 8, "fp8-block": 8, "int8": 8, "nf4": 4, "fp4": 4, "awq": 4, "int4": 4, "mxfp4": 4,
        "mxfp8": 8, "nvfp4": 4}
FP8_BLOCK, MX_BLOCK, NV_BLOCK = 128, 32, 16


class Quantization(BaseModel):
    """How a model's linears are stored (the module docstring lists the formats)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    format: Literal[FORMATS]
    which: Literal[WHICH] = "all-linear"
    bits: Literal[4, 8] | None = None  # gptq: 4 (default) or 8
    group: int | None = Field(None, gt=0, le=2**20)  # gptq, awq and int4: input values per scale (default 128)
    double_quant: StrictBool = True  # nf4 and fp4: the block constants in 8 bits, as QLoRA loads them

    @model_validator(mode="after")
    def _settings(self):
        if self.format not in GROUPED:
            for name in ("bits", "group"):
                if getattr(self, name) is not None:
                    raise ValueError(f"`{name}` is a setting of gptq, awq and int4, not of {self.format}")
        if self.format in ("awq", "int4") and self.bits not in (None, 4):
            raise ValueError(f"{self.format} packs 4-bit weights only")
        return self

    @property
    def width(self) -> int:
        """Bits a stored value takes, before its constants."""
        return self.bits or BITS.get(self.format, 4)

    @property
    def label(self) -> str:
        grouped = f"-int{self.width}-g{self.group or 128}" if self.format in GROUPED else ""
        return f"{self.format}{grouped} ({self.which})"

    def weight_bytes(self, d_in, d_out) -> sympy.Expr:
        """Bytes of one d_out x d_in weight with its constants, in this format."""
        n, ceil = d_in * d_out, sympy.ceiling
        f = self.format
        if f == "fp8":
            return n + 4
        if f == "fp8-channel":
            return n + 4 * d_out
        if f == "fp8-block":
            return n + 4 * ceil(d_out / FP8_BLOCK) * ceil(d_in / FP8_BLOCK)
        if f == "int8":
            return int8_bytes(d_in, d_out)
        if f in ("nf4", "fp4"):
            return four_bit_bytes(n, 64, self.double_quant)
        if f == "mxfp4":
            return ceil(d_in / 2) * d_out + ceil(d_in / MX_BLOCK) * d_out
        if f == "mxfp8":
            return n + ceil(d_in / MX_BLOCK) * d_out
        if f == "nvfp4":
            return ceil(d_in / 2) * d_out + ceil(d_in / NV_BLOCK) * d_out + 8
        b, groups = self.width, ceil(d_in / (self.group or 128))
        if f == "int4":
            return 4 * d_out * ceil(d_in / 8) + 2 * d_out * groups + 8
        zeros = 4 * groups * ceil(d_out * b / 32)
        scales = 2 * groups * d_out
        if f == "gptq":
            return 4 * ceil(d_in * b / 32) * d_out + zeros + scales + 4 * d_in
        return 4 * d_in * ceil(d_out * b / 32) + zeros + scales  # awq

    def stored(self, d_in, d_out) -> Cost:
        """One linear's weight as this format stores it (its bias is not: it keeps the weights' dtype)."""
        n = d_in * d_out
        stored = self.weight_bytes(d_in, d_out)
        return Cost(packed=n, packed_bytes=stored, active_packed=n, active_packed_bytes=stored)

    def reaches(self, experts: bool) -> bool:
        """Whether a linear (in a MoE's routed experts or not) is stored in this format."""
        return experts or self.which == "all-linear"

