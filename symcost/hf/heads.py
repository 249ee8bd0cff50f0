"""Heads: which one a class in `architectures` asks for (or `--head`), and how each is written after
the trunk (LM head, masked-LM head, classifier, pooler, or none)."""

from __future__ import annotations

from ..errors import SpecError
from .reader import Config
from .writer import Writer


CLS = "pool_tokens: {mode: first}   # the first token ([CLS])"


def _encoder_head(c: Config, w: Writer, mlm_act: str, table: str = "d_model", pool_act: str = "tanh",
                  bare_pooler: bool = True, pool: str = CLS) -> None:
    """A BERT-like model's head: the masked-LM one (a transform to the token table's width, its norm,
    the tied decoder with its own bias; no pooler), else the `pool`ed token through a dense layer and
    pool_act (BERT's pooler, which the bare model has too; DistilBERT's pre-classifier, which only
    its classifier has; BART's and T5's classification heads, on the last <eos>), then the
    classifier of num_labels."""
    if c.head == "mlm":
        for line in (f"linear: {{dim: d_model, out: {table}, bias: true}}", f"activation: {{function: {mlm_act}}}",
                     f"layernorm: {{dim: {table}}}", f"lm_head: {{dim: {table}, vocab: vocab, tied: true, bias: true}}"):
            w.layer(line)
        return
    if c.head == "none" and not bare_pooler:
        return
    for line in (pool, "linear: {dim: d_model, out: d_model, bias: true}", f"activation: {{function: {pool_act}}}"):
        w.layer(line)
    if c.head == "classifier":
        w.layer(f"linear: {{dim: d_model, out: {_labels(c, w)}, bias: true}}")


# BART's and T5's …ForSequenceClassification: dense, tanh and out_proj on each sequence's last <eos>
LAST_EOS = "pool_tokens: {mode: last}   # the last <eos> token (the source ends in one)"


def _target_len(c: Config, w: Writer, tokens, note: str) -> None:
    """An encoder-decoder's target tokens; a sequence classifier's decoder reads the source shifted right."""
    if c.head == "classifier":
        w.dim("seq_len", "src_len", "target tokens: the source, shifted right (a classifier's decoder input)")
    else:
        w.dim("seq_len", tokens, note)


def _labels(c: Config, w: Writer) -> str:
    labels = c.get("num_labels")
    if labels is None:
        labels = len(c.get("id2label", {})) or 2  # transformers' own default: two labels
        c.read.add("num_labels")
    if isinstance(labels, bool) or not isinstance(labels, int) or labels <= 0:
        raise c.error("num_labels" if "num_labels" in c.data else "id2label", f"expected a positive number of labels, got {labels!r}")
    return w.dim("n_labels", labels, "num_labels" if "num_labels" in c.data else "id2label: its labels")


def _decoder_head(c: Config, w: Writer, tied: bool) -> None:
    """After the final norm: the LM head, a classifier (…ForSequenceClassification's `score`, on
    every token; the last one's logits are kept), or nothing (the bare …Model)."""
    if c.head == "lm":
        w.layer(f"lm_head: {{dim: d_model, vocab: vocab, tied: {str(tied).lower()}}}")
    elif c.head == "classifier":
        w.layer(f"linear: {{dim: d_model, out: {_labels(c, w)}}}   # score: logits of every token")


# the head a class in `architectures` asks for, by the end of its name (longest first)
HEADS = {"LMHeadModel": "lm", "ForCausalLM": "lm", "ForConditionalGeneration": "lm", "ForMaskedLM": "mlm",
         "ForSequenceClassification": "classifier", "ForImageClassification": "classifier",
         "EncoderModel": "encoder", "Model": "none"}  # T5EncoderModel: the encoder stack alone (none imports it)


HEAD_NAMES = {"lm": "a language-model head", "mlm": "a masked-LM head", "classifier": "a sequence classifier",
              "none": "no head", "encoder": "the encoder alone"}


ENCODERS = ("bert", "roberta", "xlm-roberta", "distilbert", "albert")  # BERT-like: token ids in, no causal mask


SEQ2SEQ = ("t5", "bart", "whisper")  # encoder-decoder: a source (token ids; Whisper's mel frames) and target ids


EOS_CLASSIFIERS = ("bart", "t5")  # their …ForSequenceClassification reads each sequence's last <eos>


FAMILY_HEADS = {**{f: ("none", "mlm", "classifier") for f in ENCODERS},
                "t5": ("lm", "none", "classifier"), "bart": ("lm", "none", "classifier"), "whisper": ("lm", "none"),
                "vit": ("none", "classifier"), "clip": ("none",)}  # the first is the default


DECODER_HEADS = ("lm", "classifier", "none")


def head_of(c: Config, family: str, override: str | None = None) -> str:
    """The head to write: `override` (import-hf's head), else the one `architectures` names, else the family's default."""
    allowed = FAMILY_HEADS.get(family, DECODER_HEADS)
    if override is not None:
        if override not in allowed:
            raise SpecError(f"head {override}: {family} models are imported with {', '.join(allowed)}", param="head")
        c.get("architectures")
        return override
    classes = c.get("architectures")
    if not classes:
        return allowed[0]
    if not isinstance(classes, list) or not all(isinstance(x, str) for x in classes) or len(set(classes)) > 1:
        raise c.error("architectures", f"expected one class name, got {classes!r}")
    cls = classes[0]
    head = next((h for end, h in HEADS.items() if cls.endswith(end)), None)
    if head is None:
        raise c.error("architectures", f"{cls!r}: a head the importer does not know (it knows class names ending in "
                      f"{', '.join(HEADS)}); give `head=`")
    if head not in allowed:
        raise c.error("architectures", f"{cls!r} asks for {HEAD_NAMES[head]}, which the importer does not write for "
                      f"{family} ({', '.join(allowed)}); give `head=`")
    return head
