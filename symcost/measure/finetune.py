"""A spec's fine-tune applied to its torch build, the way people apply it: peft's LoRA and DoRA
layers injected into the named linears (`inject_adapter_in_model`), every frozen weight's
`requires_grad` off, and under QLoRA every frozen linear but the output layer's a bitsandbytes
Linear4bit (or Linear8bitLt, `quant: int8`). The measured counts then come from peft's and
bitsandbytes' modules and autograd, not from symcost's rules.

bitsandbytes runs a 4-bit forward as its own operators (`bitsandbytes::gemm_4bit`, and on the CPU
outside training `gemv_4bit`), and an 8-bit one outside training as `int8_mixed_scaled_mm`, which
FlopCounterMode has no formula for: the matmul formula (2 x rows x out x in, from the operator's
shapes at run time) is registered for them, as for any matmul; in training and in backward they
dequantize and run an ordinary matmul, which FlopCounterMode counts itself."""

from __future__ import annotations

import logging

from torch import nn

from ..components import REGISTRY
from ..errors import SpecError
from ..extras import require
from ..spec import Spec


def apply(model: nn.Module, components, spec: Spec, values) -> nn.Module:
    """`model` (spec's build at `values`, whose component Parts `components` lists as (name, part))
    with the spec's fine-tune applied."""
    finetune = spec.finetune
    if finetune is None or finetune.trains_all:
        return model
    parts = [(name, part, part.symcost_path.rsplit("/", 1)[-1]) for name, part in components]
    if finetune.storage is not None:
        _quantize(model, parts, finetune)
    if finetune.adapted:
        targets = [f"{name}.{path}" for name, part, kind in parts for path, module in part.named_modules()
                   if isinstance(module, nn.Linear) and finetune.tuning(kind).adapts(REGISTRY[kind].target(path))]
        peft = require("peft", "finetune", "measuring a fine-tune")
        rank = int(finetune.rank.xreplace(values))
        dropout = 0.0 if finetune.dropout is None else float(finetune.dropout.xreplace(values))
        config = peft.LoraConfig(r=rank, lora_alpha=finetune.alpha or rank, lora_dropout=dropout,
                                 target_modules=targets, use_dora=finetune.method == "dora", bias="none")
        model = peft.inject_adapter_in_model(config, model)  # it freezes every weight but the adapters'
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.forward = _as_on_a_gpu(module.p)
    for _, part, kind in parts:
        if not finetune.tuning(kind).frozen:
            for p in part.parameters():
                p.requires_grad_(True)
        elif not finetune.adapted:
            part.requires_grad_(False)
    return model


def _quantize(model: nn.Module, parts, finetune) -> None:
    """Every frozen linear but the output layer's, stored as bitsandbytes' 4-bit loading (or its
    LLM.int8 loading, with transformers' default outlier threshold of 6) stores it."""
    import torch

    from ..precision import TORCH_NAMES

    bnb = require("bitsandbytes", "finetune", "measuring a QLoRA fine-tune")
    if any(p.is_meta for p in model.parameters()):
        raise SpecError("a QLoRA base is quantized from real weights: measure it on the CPU (`device=cpu`)")
    _count_quantized_matmuls()
    compute = None if finetune.compute_dtype is None else getattr(torch, TORCH_NAMES[finetune.compute_dtype])
    # LLM.int8 quantizes a 16-bit input: it says so at every fp32 forward, which changes no count
    logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    for _, part, kind in parts:
        tuning = finetune.tuning(kind)
        if tuning.output or not tuning.frozen:  # as Tuning.packed decides for the rules
            continue
        for child_name, child in list(part.named_children()):
            if isinstance(child, nn.Linear):
                bias = child.bias is not None
                if finetune.storage == "int8":
                    packed = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=bias,
                                                 has_fp16_weights=False, threshold=6.0, device="cpu")
                    packed.weight = bnb.nn.Int8Params(child.weight.data, requires_grad=False, has_fp16_weights=False)
                else:
                    packed = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=bias, compute_dtype=compute,
                                               compress_statistics=finetune.double_quant, quant_type=finetune.storage,
                                               device="cpu")
                    packed.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, blocksize=finetune.block,
                                                      compress_statistics=finetune.double_quant,
                                                      quant_type=finetune.storage)
                if bias:
                    packed.bias = nn.Parameter(child.bias.data, requires_grad=False)
                setattr(part, child_name, packed.to(torch.device("cpu")))  # moving it quantizes it


def _count_quantized_matmuls() -> None:
    """The matmul formula for bitsandbytes' operators, which FlopCounterMode has none for: 4-bit
    (A, packed B, [out, in] of the weight, …) and LLM.int8 outside training (A, its int8 copy, the
    int8 weight [out, in], …: the int8 product only; the outlier columns' 16-bit product inside the
    operator is not counted, as symcost's rule does not count it)."""
    import math

    import torch
    from torch.utils import flop_counter

    bnb = torch.ops.bitsandbytes
    if bnb.gemm_4bit in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula([bnb.gemm_4bit, bnb.gemv_4bit])
    def four_bit(a_shape, b_shape, shape, *args, **kwargs) -> int:
        return 2 * math.prod(a_shape[:-1]) * shape[0] * shape[1]

    @flop_counter.register_flop_formula([bnb.int8_mixed_scaled_mm])
    def int8_mixed(a_shape, ca_shape, cb_shape, *args, **kwargs) -> int:
        return 2 * math.prod(ca_shape[:-1]) * cb_shape[0] * cb_shape[1]

    @flop_counter.register_flop_formula([bnb.int8_scaled_mm, bnb.int8_linear_matmul])
    def int8(a_shape, b_shape, *args, **kwargs) -> int:
        return 2 * math.prod(a_shape[:-1]) * b_shape[0] * b_shape[1]


def _as_on_a_gpu(p: float):
    """Dropout as a GPU runs nn.Dropout (a fused kernel keeping a one-byte mask, as symcost's
    dropout rule counts); on the CPU nn.Dropout keeps a mask in the activations' dtype instead."""
    from ..components import dropout

    return lambda x: dropout.apply(x, p, True)
