"""Writing a spec: dims with the config field each came from, then layers, and the layer patterns
several families share (a trunk's dims, a parallel block, an encoder container)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from .reader import Config, _alias


CLIPPED = "q, k and v are clamped to clip_qkv (elementwise, not written: no count under pytorch)"


SCALED = ("the embeddings are multiplied by sqrt(d_model) ({}one elementwise multiply per token and feature, not "
          "written: no count under pytorch)")


class Writer:
    """Builds the YAML text: dims with the config field each came from, then layers."""

    def __init__(self, name: str, source: str, description: str) -> None:
        # strings written by YAML's own emitter, double-quoted: a `: ` or a newline in a
        # config's name cannot change the spec's structure
        self.head = [f"# Imported by `symcost import-hf` from {_quoted(source)}.", f"name: {_quoted(name)}",
                     f"description: {_quoted(description)}", f"source: {_quoted(source)}", "dims:"]
        self.dims: list[str] = []
        self.layers: list[str] = []
        self.keys: dict[str, str] = {}  # dim -> the config field its note starts with
        self.tail: list[str] = []  # blocks after the layers (quantization)

    def note(self, text: str) -> None:
        """A line at the top of the spec: what the model computes that the spec does not write."""
        import textwrap

        self.head[1:1] = textwrap.wrap(text, 96, initial_indent="# NB: ", subsequent_indent="#     ")

    def dim(self, name: str, value, note: str) -> str:
        self.dims.append(f"  {name}: {value}".ljust(36) + f"  # {note}")
        self.keys[name] = re.match(r"\w*", note).group(0)
        return name

    def layer(self, line: str, indent: int = 1) -> None:
        self.layers.append("  " * indent + "- " + line)

    def block(self, head: str, lines, indent: int = 1, fields: tuple[str, ...] = ()) -> None:
        """A container (`repeat: n_layers`, `encoder: src_len`) with its other `fields`
        (`shared: true`), holding `lines` as its layers."""
        self.layer(head, indent)
        self.layers += ["  " * (indent + 1) + line for line in (*fields, "layers:")]
        for line in lines:
            self.layer(line, indent + 2)

    def text(self) -> str:
        return "\n".join(self.head + self.dims + ["layers:"] + self.layers + self.tail) + "\n"

    def mtp(self, depth: int, lines, note: str) -> None:
        """Multi-token prediction modules (spec.MTP): `depth` of `lines`, reported apart from the model."""
        self.tail += [f"mtp:   # {note}", f"  depth: {depth}", "  layers:", *(f"    - {line}" for line in lines)]

    def nextn(self, c: Config, key: str, names: tuple[str, str, str, str | None], block: list[str]) -> None:
        """The checkpoint's multi-token-prediction modules, `key` of them (none when unset), each as DeepSeek-V3's
        (its report, Sec. 2.2) and the models that copy it: the main model's hidden state and the next token's
        embedding (the shared table's) each normalised (`names`: the hidden state's norm, the projection, the
        embedding's norm, the last norm), projected from 2 x d_model to d_model (as its two halves), one more
        `block`, a norm of its own (none where the last name is None: the model's final norm again, whose weights
        and elementwise work count nothing more), then the model's own head."""
        depth = mtp_depth(c, self, key)
        hidden, proj, embedding, last = names
        norm, half = "rmsnorm: {dim: d_model}", "linear: {dim: d_model, out: d_model, bias: false}"
        end = () if last is None else (f"{norm}   # {last}; then the model's head",)
        if depth:
            self.mtp(depth, (f"{norm}   # {hidden}, of the main model's hidden state",
                             f"{half}   # {proj}'s half that reads it",
                             f"{norm}   # {embedding}, of the next token's embedding (the shared table's)",
                             f"{half}   # {proj}'s other half", *block, *end),
                     f"{key}: multi-token prediction, reported apart (transformers does not build it)")

    def quantization(self, fields: dict) -> None:
        """The checkpoint's storage of its linears (hf/quantization.py)."""
        self.tail.append(f"quantization: {_flow(fields)}")


def mtp_depth(c: Config, w: Writer, key: str) -> int:
    """How many multi-token-prediction modules the file's `key` says (none when unset); none for a model without
    the LM head they predict through (a classifier, the bare model), and said."""
    depth = c.get(key, 0)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise c.error(key, f"expected a whole number of modules, got {depth!r}")
    if depth and c.head != "lm":
        w.note(f"{key} {depth}: multi-token-prediction modules predict through an LM head, which this model (head: "
               f"{c.head}) does not have; not written")
        return 0
    return depth


def _quoted(text: str) -> str:
    import yaml

    return yaml.safe_dump(text, default_style='"', allow_unicode=True, width=float("inf")).strip()


def _flow(fields: dict) -> str:
    return "{" + ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in fields.items()) + "}"


def _parallel_block(w: Writer, norm: str, attention: str, mlp: str, separate: bool, after: tuple[str, ...] = ()) -> None:
    """`repeat: n_layers` of x + attn(ln x) + mlp(ln x) (or, `separate`, a norm per branch): a
    residual block around a residual block whose shortcut is the MLP (or whatever `mlp` is: Falcon-H1's
    attention beside its Mamba-2 mixer); then the layers `after`."""
    branches = ([norm] * separate + [attention], [norm] * separate + [mlp])
    w.block("repeat: n_layers", ())
    w.layers += ["      " + line for line in (
        "- residual:", *([f"    - {norm}   # one norm read by both branches"] * (not separate)),
        "    - residual:", *(f"        - {x}" for x in branches[0]),
        "      shortcut:", *(f"        - {x}" for x in branches[1]), *(f"- {x}" for x in after))]


def _trunk(c: Config, w: Writer, hidden: tuple[str, ...], layers: tuple[str, ...], heads: tuple[str, ...]) -> int:
    """d_model, n_layers and n_heads from the first of each field's names the config uses (_alias); the heads."""
    sizes = {}
    for name, keys in (("d_model", hidden), ("n_layers", layers), ("n_heads", heads)):
        key = _alias(c, *keys)
        sizes[name] = c.int(key)
        w.dim(name, sizes[name], key)
    return sizes["n_heads"]


def _dims(c: Config, w: Writer, rows) -> None:
    """Dims read from positive integer config fields, a row each: (dim, field[, note[, default]]), the
    note the field's name when None or left out, the field required when no default is given."""
    for name, key, *rest in rows:
        note, default = (rest + [None, None])[:2]
        w.dim(name, c.int(key, default), note or key)


def _capped_seq_len(c: Config, w: Writer, cap: int = 4096) -> None:
    """seq_len for a long-context family: one pass of max_position_embeddings tokens, or of `cap`
    where the file's context is longer or not given (a longer pass is a `--set seq_len=` away), the
    longer context then kept as max_pos."""
    if c.get("max_position_embeddings") is None:
        w.dim("seq_len", cap, f"a {cap}-token pass (no max_position_embeddings)")
        return
    positions = c.int("max_position_embeddings")
    w.dim("seq_len", min(positions, cap), "max_position_embeddings: one full-context pass" if positions <= cap
          else f"a {cap}-token pass (max_position_embeddings {positions:,} is longer)")
    if positions > cap:  # the longest context, kept beside the working length (no layer reads it)
        w.dim("max_pos", positions, f"max_position_embeddings: the longest context (--set seq_len={positions})")


def _runs(w: Writer, kinds: list, lines: Callable, label: Callable[[object], str], total: str | None = None,
          size: Callable[[object], int] = lambda kind: 1) -> None:
    """Layers of differing kinds in a stack, a `repeat` per run of like ones (`lines(kind)`: a layer's
    lines), each commented with the layers it covers and `label(kind)`; `size(kind)`: the layers one
    of a kind holds (two kinds in turn: two). With `total` (the dim that counts every layer) the last
    run of single layers is that dim less the layers before it, so that changing it lengthens or
    shortens the last run."""
    runs = [(kind, len(list(run))) for kind, run in itertools.groupby(kinds)]
    first = 0
    for i, (kind, count) in enumerate(runs):
        layers = count * size(kind)
        last = total is not None and i == len(runs) - 1 and size(kind) == 1
        where = (f"layers {first} on" if last else f"layer {first}" if layers == 1
                 else f"layers {first} to {first + layers - 1}")
        times = (f"{total} - {first}" if first else total) if last else count
        w.block(f"repeat: {times}   # {where}: {label(kind)}", lines(kind))
        first += layers


def _encoder(w: Writer, lines, source: str = "src_len", image: bool = False) -> None:
    """`encoder: src_len` (or, over images, `encoder: image_size` with `image: true`) and the
    layers before its repeat."""
    w.layer(f"encoder: {source}")
    w.layers += ["    image: true"] * image + ["    layers:"]
    for line in lines:
        w.layer(line, 3)
