"""A spec's fine-tune applied to its torch build, the way people apply it: peft's LoRA and DoRA
layers injected into the named linears (`inject_adapter_in_model`), every frozen weight's
`requires_grad` off. The measured counts then come from peft's modules and autograd, not from
symcost's rules."""

from __future__ import annotations

from torch import nn

from ..components import REGISTRY
from ..extras import require
from ..spec import Spec


def apply(model: nn.Module, components, spec: Spec, values) -> nn.Module:
    """`model` (spec's build at `values`, whose component Parts `components` lists as (name, part))
    with the spec's fine-tune applied."""
    finetune = spec.finetune
    if finetune is None or finetune.trains_all:
        return model
    parts = [(name, part, part.symcost_path.rsplit("/", 1)[-1]) for name, part in components]
    if finetune.adapted:
        targets = [f"{name}.{child_name}" for name, part, kind in parts for child_name, child in part.named_children()
                   if isinstance(child, nn.Linear)
                   and finetune.tuning(kind).adapts(kind if REGISTRY[kind].named_by_kind else child_name)]
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


def _as_on_a_gpu(p: float):
    """Dropout as a GPU runs nn.Dropout (a fused kernel keeping a one-byte mask, as symcost's
    dropout rule counts); on the CPU nn.Dropout keeps a mask in the activations' dtype instead."""
    from ..components import dropout

    return lambda x: dropout.apply(x, p, True)
