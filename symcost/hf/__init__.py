"""import-hf: a Hugging Face `config.json` -> a symcost spec, with the config's values as
dims under symcost's names, so that a user starts from a real model and edits from there.

Reads only the JSON (no `transformers`, no downloads). Each family says which config
fields it understands; a field that could change the architecture and is not understood
— an unknown key, or a known key with a value the importer cannot express — is an error
naming the field, never a silently wrong spec. Fields that change no count (dropouts,
epsilons, rope scaling, token ids, router loss weights…) are data in hfneutral; they are
accepted and listed as ignored, as are fields a family's transformers model never reads, whatever
their value (Config.unused: legacy and foreign names real files carry). A size a file leaves out is
read at the family's config-class value where the family gives one (Config.defaults: Gemma 3's
text_config), else refused by name.

A module per kind of model. Families that share a structure are rows of one template: the
nineteen Llama-like ones (llama: a `Decoder` each, its sliding-window rule a `Sliding`), the
parallel-block decoders GPT-NeoX, Phi-2 and GPT-J (gpt: a `Parallel` each), the Mamba-2 families'
fields (ssm: SSD_FIELDS). A family with a structure of its own (OPT's projections, BLOOM's
embedding norm, Falcon's two layouts, T5, BART, Whisper, CLIP, DeepSeek's latent attention, DBRX's
nested configs, Jamba's period) keeps one writer, beside those of its kind (gpt, moe, encoders,
towers, seq2seq, ssm), its sizes read as field tables (writer._dims). So a new family of a known
kind is a table row. FAMILIES maps each model_type to its writer, refusing one claimed twice;
reader and writer hold what every writer uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..errors import SpecError
from ..hfneutral import dropout
from ..results import Result
from .encoders import _albert, _bert, _distilbert, _vit
from .files import key_places, locate, read_config
from .gpt import PARALLEL, _bloom, _falcon, _gpt2, _opt, _parallel
from .heads import ENCODERS, EOS_CLASSIFIERS, SEQ2SEQ, head_of
from .linear import _kimi_linear, _lfm2, _minimax, _qwen3_next, _recurrent_gemma
from .llama import DECODERS, _decoder
from .moe import _dbrx, _deepseek, _deepseek_v4, _longcat_flash
from .quantization import quantization_of
from .reader import Config
from .seq2seq import _bart, _t5, _whisper
from .ssm import _bamba, _falcon_h1, _granitemoehybrid, _jamba, _mamba, _mamba2, _nemotron_h, _rwkv, _xlstm, _zamba2
from .towers import _clip, _gemma3
from .writer import Writer


__all__ = ["ENCODERS", "EOS_CLASSIFIERS", "FAMILIES", "SEQ2SEQ", "Config", "Imported", "convert", "head_of",
           "import_config", "locate", "read_config"]

def _registry(*tables: dict[str, Callable]) -> dict[str, Callable]:
    """The writers by model_type; a model_type that two tables claim is refused here, at import,
    instead of the later one silently replacing the first."""
    families: dict[str, Callable] = {}
    for table in tables:
        if twice := families.keys() & table.keys():
            raise RuntimeError(f"model_type with two writers: {sorted(twice)}")
        families |= table
    return families


FAMILIES: dict[str, Callable[[Config, Writer], None]] = _registry(
    {"gpt2": _gpt2, "gpt_bigcode": partial(_gpt2, family="gpt_bigcode"), "falcon": _falcon, "bloom": _bloom,
     "opt": _opt},
    {f: partial(_parallel, family=f) for f in PARALLEL},
    {f: partial(_decoder, family=f) for f in DECODERS},
    {f: partial(_deepseek, family=f) for f in ("deepseek_v2", "deepseek_v3", "deepseek_v32", "glm_moe_dsa")}
    | {"dbrx": _dbrx, "longcat_flash": _longcat_flash, "deepseek_v4": _deepseek_v4},
    {"bert": _bert, **{f: partial(_bert, family=f) for f in ("roberta", "xlm-roberta")}, "distilbert": _distilbert,
     "albert": _albert, "vit": _vit},
    {"clip": _clip, "gemma3": _gemma3},
    {"t5": _t5, "bart": _bart, "whisper": _whisper},
    {"mamba": _mamba, "mamba2": _mamba2, "bamba": _bamba, "granitemoehybrid": _granitemoehybrid, "jamba": _jamba,
     "nemotron_h": _nemotron_h, "falcon_h1": _falcon_h1, "rwkv": _rwkv,
     "xlstm": _xlstm, "zamba2": _zamba2},
    {f: partial(_qwen3_next, family=f) for f in ("qwen3_next", "qwen3_5_text", "qwen3_5_moe_text")} | {"lfm2": _lfm2}
    | {"kimi_linear": _kimi_linear, "minimax": _minimax, "recurrent_gemma": _recurrent_gemma},
)


# families whose writers read partial_rotary_factor
PARTIAL_ROTARY = ("gpt_neox", "phi", "bamba", "qwen3_next", "qwen3_5_text", "qwen3_5_moe_text", "recurrent_gemma",
                  *(f for f, d in DECODERS.items() if d.partial_rotary is not None))


@dataclass(frozen=True, repr=False)  # repr is Result's summary
class Imported(Result):
    """A spec written from a config: its YAML (`yaml`; `spec()` validates it) and the fields ignored."""

    yaml: str  # the spec
    ignored: list[str]  # the config's fields that change no count, not read
    notes: list[str] = ()  # how the config was read where it is not plain (a model_type read as another)

    def to_dict(self) -> dict:
        return {"name": self.spec().name, "yaml": self.yaml, "ignored": self.ignored, "notes": list(self.notes)}

    def text(self, width: int | None = None) -> str:
        return self.yaml

    def summary(self):
        return f"{self.spec().name}: a spec from a Hugging Face config", [("lines", f"{self.yaml.count(chr(10)):,}"),
                                                             ("fields ignored", f"{len(self.ignored):,}")]

    def spec(self):
        """The spec, validated."""
        from ..spec import loads

        return loads(self.yaml, "<imported>")


def _model_name(data: dict, source: str) -> str:
    """The model's name: the config's `_name_or_path`, else its file's (a model directory's
    config.json: the directory's), never just the model_type."""
    from pathlib import PurePath

    if given := str(data.get("_name_or_path") or ""):
        return given.replace("/", "-")
    path = PurePath(source)
    if path.name == "config.json":
        return path.parent.name if path.parent.name not in ("", ".") else ""
    return path.stem if path.suffix == ".json" else ""


# families whose text model is supported but whose other parts are not written, and the way out
UNWRITTEN = {"llama4": "Llama 4's vision encoder is not written: import its text_config (model_type llama4_text), "
                       "the text model, whose parameters leave the encoder and its projector out",
             **{f: f"Qwen3.5's vision encoder is not written: import its text_config (model_type {f}_text), the text "
                   "model, whose parameters leave the encoder and its merger out" for f in ("qwen3_5", "qwen3_5_moe")}}


def family_of_class(architectures) -> str | None:
    """The supported family whose model class `architectures[0]` names (DeepseekV3ForCausalLM:
    deepseek_v3), by its name without the head (ForCausalLM, Model, …), case and underscores aside."""
    import re

    if not isinstance(architectures, list) or not architectures or not isinstance(architectures[0], str):
        return None
    stem = re.sub(r"(For[A-Za-z]+|LMHeadModel|Model)$", "", architectures[0]).lower()
    found = [f for f in FAMILIES if f.replace("_", "") == stem]
    return found[0] if len(found) == 1 else None


def import_config(data: dict, source: str = "config.json", name: str | None = None, text: str | None = None,
                  head: str | None = None) -> str:
    """The spec text for a config's architecture (see convert)."""
    return convert(data, source, name, text, head).yaml


def convert(data: dict, source: str = "config.json", name: str | None = None, text: str | None = None,
            head: str | None = None) -> Imported:
    """The spec for a config's architecture (see module doc) with the head `architectures` names
    (or `head`: lm, mlm, classifier, none), and the fields it ignored; with the file's `text`,
    errors name the field's line and column."""
    if not isinstance(data, dict):
        raise SpecError("expected a JSON object (a Hugging Face config.json)", file=source)
    c = Config(data, source, key_places(text) if text is not None else None)
    family, notes = data.get("model_type"), []
    if isinstance(family, str) and family not in FAMILIES and (known := family_of_class(data.get("architectures"))):
        # Kimi-K2 ships DeepSeek-V3's architecture under its own model_type, which transformers maps back
        notes.append(f"model_type {family!r} is not a family symcost knows; read as {known}, the family of "
                     f"architectures[0] {data['architectures'][0]}")
        family = known
    if isinstance(family, str) and family in UNWRITTEN:
        raise c.error("model_type", f"{family!r}: {UNWRITTEN[family]}")
    if not isinstance(family, str) or family not in FAMILIES:
        raise c.error("model_type", f"{family!r} is not supported; supported: {', '.join(sorted(FAMILIES))}")
    w = Writer(name or _model_name(data, source) or family, source, f"{family} architecture from its Hugging Face config")
    for note in notes:
        w.note(note)
    c.read.update({"model_type", "_name_or_path"})  # read above
    for key in ("rope_parameters", "rope_scaling"):  # frequencies only, unless they rotate part of each head
        factor = data[key].get("partial_rotary_factor") if isinstance(data.get(key), dict) else None
        if family not in PARTIAL_ROTARY and factor not in (None, 1, 1.0):
            raise c.error(key, f"partial_rotary_factor {factor!r}: rotating part of each head is not supported by the "
                          "importer for this family")
    c.head = head_of(c, family, head)
    FAMILIES[family](c, w)
    if (stored := quantization_of(c)) is not None:
        w.quantization(stored)
    ignored = c.unread()
    _check_sizes(c, w)
    # (summary_first_dropout is the double-heads models' summary, which no imported head has)
    if trained := [f"{k} {v}" for k in ignored if dropout(k.split(".")[-1]) and not k.startswith("summary_")
                   and _positive(v := _at(data, k))]:
        w.note(f"the config's dropout ({', '.join(trained)}) is not written: activation memory here is that of "
               "p = 0, without dropout's one-byte masks (to count them, add a {rate: …} dim and the layers' "
               "dropout fields, as architectures/megatron_gpt.yaml does)")
    return Imported(w.text(), ignored, notes)


def _at(data: dict, path: str):
    """The value at a dotted path the importer lists (`attn_config.attn_pdrop`)."""
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _positive(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _check_sizes(c: Config, w: Writer) -> None:
    """The spec must hold at its own sizes (heads dividing the width, …) before anyone sees it;
    where it does not, the error is at the config fields the failing constraint is made of."""
    import sympy

    from ..derive import derive
    from ..evaluate import evaluate, site_checks
    from ..spec import loads

    why = "the config's sizes do not make a valid model: "
    try:
        spec = loads(w.text(), name="<import-hf>")
        derivation = derive(spec)
    except SpecError as e:
        raise SpecError(why + e.reason, file=c.source) from None
    try:
        evaluate(derivation)
    except SpecError as e:
        reason = why + e.reason
        dims = spec.dimset
        checks = [(("dims", d.name), dims.check(d)) for d in dims.items if d.definition is not None]
        checks += [(where + (check.field,), check) for where, check in site_checks(derivation)]
        at = [check for path, check in checks if path == e.path]
        if len(at) > 1:  # a field's own domain and its constraints: the one that fails at these sizes
            values = dims.values()
            at = [check for check in at if check.failure(lambda x: sympy.sympify(x).xreplace(values)) is not None]
        used = at[0].deps(dims.substitution()) if at else []
        keys = sorted({w.keys[d] for d in used if w.keys.get(d) in c.data},  # in the file's order, else by name
                      key=lambda k: (c.places.get(k, (0, 0)), k))
        if not keys:
            raise SpecError(reason, file=c.source) from None
        raise c.error(keys[0], f"{reason} (from {', '.join(keys)})") from None
