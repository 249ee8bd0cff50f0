"""verify: the symbolic route and the measured route, compared exactly, component by component.

Compared under the pytorch convention (or macs: both sides halved). Elementwise work
(norms, activations, softmax, rotary) is counted 0 by FlopCounterMode and by the pytorch
convention alike; rows whose only work is elementwise say so, since `full` counts it
and nothing in PyTorch can confirm those constants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy

from .. import conventions
from ..components import REGISTRY
from ..derive import derive
from ..errors import SpecError
from ..evaluate import dim_values, evaluate
from ..results import Result
from ..hf import EOS_CLASSIFIERS
from ..spec import Spec
from .reference import measure, on_a_deep_stack

# layer modules PyTorch must hold (repeats unrolled, experts each one). Measured on meta: 10,000 Llama-like
# layers or MoE experts peak at 0.8 GB; DeepSeek-V3 at full size, 15,098, at 1.06 GB (26 s; 110 s with backward)
MAX_INSTANCES = 20_000
MAX_CPU_BYTES = 8 * 2**30  # fp32 weights verify may allocate on CPU
UNCOUNTABLE = "elementwise only: FlopCounterMode counts 0 (see --convention full)"


@dataclass
class Row:
    path: str
    kind: str
    symbolic: dict[str, int]
    measured: dict[str, int]
    note: str = ""

    @property
    def match(self) -> bool:
        return self.symbolic == self.measured


@dataclass(repr=False)  # repr is Result's summary
class Report(Result):
    """The formulas beside PyTorch's own counts (or saved bytes), component by component."""

    name: str
    convention: str  # or, for memory, the dtype, attention and recompute mode compared under
    device: str
    dims: dict[str, int]
    rows: list[Row]
    totals: Row
    unattributed: dict[str, int]

    def to_dict(self) -> dict:
        from ..render.model import report_data

        return report_data(self)

    def text(self, width: int | None = None) -> str:
        from ..render.model import render_report

        return render_report(self, "text", width)

    def summary(self):
        metrics = list(self.totals.symbolic)
        return f"{self.name} against PyTorch", [("match", "yes" if self.match else "NO"),
                                                  *((m, f"{self.totals.symbolic[m]:,}") for m in metrics)]

    @property
    def match(self) -> bool:
        return all(r.match for r in self.rows) and self.totals.match and not any(self.unattributed.values())


def verify(
    spec: Spec,
    values: Mapping[str, int] | None = None,
    *,
    backward: bool = False,
    device: str = "meta",
    convention: str = "pytorch",
    seed: int = 0,
) -> Report:
    conv = conventions.get(convention)
    if conv.elementwise:
        raise ValueError("verify compares under pytorch or macs; `full` counts work FlopCounterMode cannot see")
    derivation = derive(spec, conventions.PYTORCH)
    evaluation = evaluate(derivation, values)
    _check_size(derivation, values, evaluation.total["params"], device)
    full = evaluate(derive(spec, "full"), values)
    measured = on_a_deep_stack(measure, derivation, dim_values(derivation, values), backward=backward, device=device,
                               seed=seed)
    scale = conventions.PYTORCH.flops_per_mac // conv.flops_per_mac

    def pick(params: int, forward: int, backward_: int | None) -> dict[str, int]:
        out = {"params": params, "forward": forward // scale}
        if backward:
            out["backward"] = (backward_ or 0) // scale
        return out

    rows = []
    for (node, v), (_, f) in zip(evaluation.components, full.components):
        row = Row(
            node.path,
            node.kind,
            pick(v["params"], v["forward"], v["backward"]),
            pick(
                measured.params.get(node.path, 0),
                measured.forward.get(node.path, 0),
                (measured.backward or {}).get(node.path, 0),
            ),
        )
        if v["forward"] == 0 and f["forward"] > 0:
            row.note = UNCOUNTABLE
        rows.append(row)
    t = evaluation.total
    totals = Row(
        "total",
        "",
        pick(t["params"], t["forward"], t["backward"]),
        pick(sum(measured.params.values()), measured.forward_total, measured.backward_total),
    )
    return Report(spec.name, conv.name, device, evaluation.dims, rows, totals, measured.unattributed)


def verify_memory(
    spec: Spec,
    values: Mapping[str, int] | None = None,
    *,
    dtype: str = "fp32",
    attention: str = "sdpa",
    recompute: str = "none",
    seed: int = 0,
) -> Report:
    """The activation-memory rules against the bytes PyTorch saves for backward in one training
    forward with the loss (measure/saved.py), component by component, on real CPU tensors."""
    from ..memory import saved_bytes
    from ..precision import ACTIVATION_DTYPES, BYTES, recompute_setting
    from ..symbols import ACT
    from .saved import measure_saved

    if dtype not in ACTIVATION_DTYPES:
        raise SpecError(f"activation dtype {dtype!r}: expected one of {', '.join(ACTIVATION_DTYPES)}")
    recompute = recompute_setting(recompute)
    derivation = derive(spec, conventions.PYTORCH)
    evaluation = evaluate(derivation, values)
    _check_size(derivation, values, evaluation.total["params"], "meta")  # the module count; bytes below
    subst = dim_values(derivation, values)
    _check_memory_run(derivation, subst, evaluation.total["params"], attention, dtype)
    formulas = {}
    for path, e in saved_bytes(derivation, attention, recompute).items():
        value = e.xreplace(subst).xreplace({ACT: sympy.Integer(BYTES[dtype])})  # an Integer even where e is ACT alone
        if not value.is_Integer:
            raise SpecError(f"{path}: activation memory needs a token count here; declare seq_len")
        formulas[path] = int(value)
    measured = on_a_deep_stack(measure_saved, derivation, subst, dtype=dtype, attention=attention, recompute=recompute,
                               seed=seed)
    kinds = {n.path: n.kind for n in derivation.raw}
    rows = [Row(path, kinds.get(path, "repeat"), {"saved_bytes": v}, {"saved_bytes": measured.per_path.get(path, 0)})
            for path, v in formulas.items()]
    outside = sum(v for p, v in measured.per_path.items() if p not in formulas)
    totals = Row("total", "", {"saved_bytes": sum(formulas.values())}, {"saved_bytes": measured.total})
    setting = f"activations {dtype}, attention {attention}, recompute {recompute}"
    return Report(spec.name, setting, "cpu", evaluation.dims, rows, totals, {"saved_bytes": outside})


MAX_MEMORY_RUN_BYTES = 2**30  # weights and saved tensors a verify --memory run may allocate on CPU


def _check_memory_run(derivation, subst, params: int, attention: str, dtype: str) -> None:
    """Refuse, before building, a run whose weights and saved tensors would not fit 1 GiB."""
    from ..memory import saved_bytes
    from ..precision import BYTES
    from ..symbols import ACT

    act = {ACT: sympy.Integer(BYTES[dtype])}
    saved = sum(saved_bytes(derivation, attention, "none").values()).xreplace(subst).xreplace(act)
    need = params * BYTES[dtype] + (int(saved) if saved.is_Integer else 0)
    if need > MAX_MEMORY_RUN_BYTES:
        raise SpecError(f"measuring saved bytes runs on the cpu: {need / 2**30:.1f} GiB of weights and saved tensors is "
                        f"more than {MAX_MEMORY_RUN_BYTES / 2**30:.0f} GiB; verify a smaller instance: give smaller sizes in "
                        "`values=` (the formulas do not depend on them)")


def _check_size(derivation, values, params: int, device: str) -> None:
    """Refuse, before building, what PyTorch could not hold: the formulas never unroll a
    repeat, but the measured route must instantiate every layer and expert."""
    subst = dim_values(derivation, values)
    instances = 0
    for site in derivation.sites:
        experts = getattr(site.component, "experts", None)
        per_site = 1 + (experts.xreplace(subst) if experts is not None else 0)
        instances += int(site.count.xreplace(subst)) * int(per_site)
    if instances > MAX_INSTANCES:
        raise SpecError(
            f"verify builds every layer: {instances:,} layer modules is more than {MAX_INSTANCES:,}; "
            "verify a smaller instance: give smaller sizes in `values=` (the formulas do not depend on them)"
        )
    if device != "meta" and 4 * params > MAX_CPU_BYTES:
        raise SpecError(f"{params:,} parameters need {4 * params / 2**30:.1f} GiB on {device}; use `device=meta`")


@dataclass(repr=False)  # repr is Result's summary
class HFReport(Result):
    """The spec's counts beside the transformers model built from the same config."""

    name: str
    model: str
    dims: dict[str, int]
    params: tuple[int, int]  # (symbolic, transformers)
    forward: tuple[int, int | None]  # transformers' None: not measured (`unmeasured` says why)
    explained: dict[str, tuple[int, str]]  # FLOPs transformers spends outside the spec's architecture
    # per layer type: ((params, FLOPs) in the spec, in transformers' modules of that type); where the
    # two module trees cut a layer differently (BERT's attention holds its LayerNorm) rows differ
    # while the totals agree, so the totals decide `match`
    by_kind: dict[str, tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=dict)
    active: tuple[int, int] = (0, 0)  # the parameters a token runs (all but unpicked experts)
    unmeasured: str | None = None

    def to_dict(self) -> dict:
        from ..render.model import hf_report_data

        return hf_report_data(self)

    def text(self, width: int | None = None) -> str:
        from ..render.model import render_hf_report

        return render_hf_report(self, "text", width)

    def summary(self):
        return f"{self.name} against transformers' {self.model}", [
            ("match", "yes" if self.match else "NO"), ("params", f"{self.params[0]:,}")]

    @property
    def kinds_agree(self) -> bool:
        return all(ours == theirs for ours, theirs in self.by_kind.values())

    @property
    def match(self) -> bool:
        """Parameters and active parameters equal, and forward FLOPs too where they were measured."""
        return self.params[0] == self.params[1] and self.active[0] == self.active[1] and (
            self.forward[1] is None or self.forward[0] + sum(f for f, _ in self.explained.values()) == self.forward[1])


# families (or a family's head) whose transformers models read tensor values as they run (which the
# meta device cannot), so they are built on the CPU with real weights; the counts do not depend on
# the values (DBRX's experts each run on the tokens routed to them: every (token, expert) pair once)
ON_CPU = {**dict.fromkeys(("dbrx", "hunyuan_v1_moe"), "its experts gather their tokens by value"),
          **dict.fromkeys(("jamba", "bamba", "granitemoehybrid"), "its attention mask is built from values"),
          "gemma3": "it finds the prompt's image tokens by value",
          **{(family, "classifier"): "its classification head finds each sequence's <eos> by value"
             for family in EOS_CLASSIFIERS}}
HF_CPU_PARAMS = 50_000_000  # 200 MB of fp32 weights


def verify_hf(spec: Spec, config: dict, values: Mapping[str, int] | None = None, source: str = "config.json",
              text: str | None = None) -> HFReport:
    """The spec's params, active params and forward FLOPs (pytorch convention) against the
    `transformers` model built from `config` on meta, at the spec's batch, seq_len (and src_len);
    `source` and `text` (the file's) locate an error in the config, which must be one import-hf
    reads. A family that transformers runs reading tensor values (ON_CPU) is run on the CPU, at
    most HF_CPU_PARAMS parameters; a larger one is built on meta and compared in parameters only,
    the report saying why its forward FLOPs were not measured."""
    from ..hf import Config, convert, head_of
    from .hf import measure, parameters

    convert(config, source, text=text)  # a config the importer refuses is refused here too, at its field

    evaluation = evaluate(derive(spec, conventions.PYTORCH), values)
    dims = evaluation.dims
    if "seq_len" not in dims and "image_size" not in dims:
        raise SpecError("a comparison with transformers needs a token model with `seq_len` or an image model with "
                        "`image_size`")
    configured = (config.get("vision_config") or config).get("image_size")  # CLIP's is its image tower's
    if "image_size" in dims and dims["image_size"] != configured:
        raise SpecError(f"transformers' model is built at the config's image_size {configured} (its position table "
                        f"is that size); evaluate at `image_size={configured}`")
    t = evaluation.total
    device, unmeasured = "meta", None
    family = config.get("model_type")
    why = ON_CPU.get(family) or ON_CPU.get((family, head_of(Config(config, source), family)))
    if why is not None:
        device = "cpu"
        if t["params"] > HF_CPU_PARAMS:
            unmeasured = (f"transformers' {family} reads tensor values as it runs ({why}), which the meta device "
                          f"cannot; on the CPU, with real weights, verify --hf runs at most {HF_CPU_PARAMS:,} "
                          f"parameters and this config has {t['params']:,}: verify a smaller one of the family for "
                          "its FLOPs")
    counts = on_a_deep_stack(parameters, config) if unmeasured else on_a_deep_stack(
        measure, config, dims.get("batch", 1), dims.get("seq_len"), dims.get("src_len"),
        image_size=dims.get("image_size"), device=device)
    ours: dict[str, tuple[int, int]] = {}
    for node, numbers in evaluation.components:
        latent = getattr(REGISTRY.get(node.kind), "attends", None) == "latent"
        kind = "attention" if latent else node.kind  # transformers' module of MLA is its attention
        params, flops = ours.get(kind, (0, 0))
        ours[kind] = (params + numbers["params"], flops + (numbers["forward"] if counts.forward is not None else 0))
    kinds = {k: (ours.get(k, (0, 0)), counts.by_kind.get(k, (0, 0))) for k in sorted(set(ours) | set(counts.by_kind))}
    return HFReport(spec.name, counts.model, dims, (t["params"], counts.params), (t["forward"], counts.forward),
                    counts.explained, {k: v for k, v in kinds.items() if v != ((0, 0), (0, 0))},
                    (t["active_params"], counts.active), unmeasured)
