"""A spec's fine-tune applied to its torch build, the way people apply it: peft's LoRA and DoRA
layers injected into the named linears (`inject_adapter_in_model`), every frozen weight's
`requires_grad` off, and under QLoRA every frozen linear but the output layer's a bitsandbytes
Linear4bit. The measured counts then come from peft's and bitsandbytes' modules and autograd, not
from symcost's rules.

bitsandbytes runs a 4-bit forward as its own operators (`bitsandbytes::gemm_4bit`, and on the CPU
outside training `gemv_4bit`), which FlopCounterMode has no formula for: the matmul formula
(2 x rows x out x in, from the operator's shapes at run time) is registered for them, as for any
matmul; its backward dequantizes and runs an ordinary matmul, which FlopCounterMode counts itself."""

from __future__ import annotations

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
    """Every frozen linear but the output layer's, stored in 4 bits as bitsandbytes' 4-bit loading stores it."""
    import torch

    bnb = require("bitsandbytes", "finetune", "measuring a QLoRA fine-tune")
    if any(p.is_meta for p in model.parameters()):
        raise SpecError("a QLoRA base is quantized from real weights: measure it on the CPU (`device=cpu`)")
    _count_four_bit_matmuls()
    for _, part, kind in parts:
        tuning = finetune.tuning(kind)
        if tuning.output or not tuning.frozen:  # as Tuning.packed decides for the rules
            continue
        for child_name, child in list(part.named_children()):
            if isinstance(child, nn.Linear):
                packed = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                           compute_dtype=None, compress_statistics=finetune.double_quant,
                                           quant_type=finetune.storage, device="cpu")
                packed.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, blocksize=finetune.block,
                                                  compress_statistics=finetune.double_quant,
                                                  quant_type=finetune.storage)
                if child.bias is not None:
                    packed.bias = nn.Parameter(child.bias.data, requires_grad=False)
                setattr(part, child_name, packed.to(torch.device("cpu")))  # moving it quantizes it


def _count_four_bit_matmuls() -> None:
    import math

    import torch
    from torch.utils import flop_counter

    ops = [torch.ops.bitsandbytes.gemm_4bit, torch.ops.bitsandbytes.gemv_4bit]  # A, B, [out, in] of the weight, …
    if ops[0] in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(ops)
    def matmul(a_shape, b_shape, shape, *args, **kwargs) -> int:
        return 2 * math.prod(a_shape[:-1]) * shape[0] * shape[1]


def _as_on_a_gpu(p: float):
    """Dropout as a GPU runs nn.Dropout (a fused kernel keeping a one-byte mask, as symcost's
    dropout rule counts); on the CPU nn.Dropout keeps a mask in the activations' dtype instead."""
    from ..components import dropout

    return lambda x: dropout.apply(x, p, True)
