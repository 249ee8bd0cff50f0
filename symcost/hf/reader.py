"""Reading a config: its fields, each one either read, listed as ignored (it changes no count) or
refused by name; and the readings several families share (activations, aliases, rotary fractions)."""

from __future__ import annotations

from ..errors import SpecError
from ..hfneutral import REFUSED, neutral


class Config:
    """A config's fields, remembering which were read, so that what was not can be refused."""

    def __init__(self, data: dict, source: str, places: dict | None = None, prefix: tuple[str, ...] = ()) -> None:
        self.data, self.source, self.read, self.places, self.prefix = data, source, set(), places or {}, prefix
        self.head = "lm"  # the model's head (see head_of)
        self.nested: list[Config] = []  # the objects `sub` opened, whose unread fields `unread` reports too
        self.unused: set[str] = set()  # fields the family's model never reads, whatever their value
        self.defaults: dict[str, object] = {}  # the family's config class's values for fields a file leaves out

    def error(self, key: str, message: str) -> SpecError:
        """An error at the field's line and column in the file, when the file's text was given
        (a nested field's: its top-level field's)."""
        line, column = self.places.get(self.prefix[0] if self.prefix else key, (None, None))
        return SpecError(message, file=self.source, line=line, column=column, path=self.prefix + (key,))

    def sub(self, key: str) -> Config:
        """A nested config object (DBRX's attn_config), read and refused field by field as this one."""
        value = self.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"expected an object, got {value!r}")
        self.nested.append(Config(value, self.source, self.places, self.prefix + (key,)))
        return self.nested[-1]

    def _same_as_read(self, key: str) -> None:
        """CLIP's older configs hold `text_config_dict` beside `text_config`, which transformers
        overrides with it: it changes nothing where every value it holds is `text_config`'s."""
        base = key.removesuffix("_dict")
        if not key.endswith("_config_dict") or self.data[key] is None:
            return
        if not isinstance(self.data[key], dict) or not isinstance(self.data.get(base), dict):
            raise self.error(key, f"expected an object beside {base}")
        for field, value in self.data[key].items():
            if self.data[base].get(field) != value:
                raise self.error(key, f"{field} {value!r} differs from {base}.{field} "
                                      f"{self.data[base].get(field)!r}; transformers builds the model from this one's")

    def get(self, key: str, default=None):
        self.read.add(key)
        value = self.data.get(key)
        return self.defaults.get(key, default) if value is None else value

    def int(self, key: str, default=None) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(key, f"expected a positive integer, got {value!r}")
        return value

    def positive(self, key: str, default=None) -> int | float:
        """A positive finite number (an integer or a float, not a boolean): a factor or a limit."""
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
            raise self.error(key, f"expected a positive number, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def expect(self, key: str, allowed, default=None):
        """A field whose value the importer must understand; anything else is refused."""
        value = self.get(key, default)
        try:
            known = value in allowed
        except TypeError:  # a list or an object, where a name or a number is expected
            known = False
        if not known:
            raise self.error(key, f"{value!r} is not supported by the importer (it understands {sorted(map(str, allowed))})")
        return value

    def unread(self) -> list[str]:
        """The fields not read that change no count (ignored), nested ones as `attn_config.attn_pdrop`;
        any other unread field is refused."""
        unread = sorted(k for k in self.data if k not in self.read)
        for key in unread:
            self._same_as_read(key)
        unknown = [k for k in unread if not neutral(k, self.data[k]) and k not in self.unused
                   and not k.endswith("_config_dict")]
        if unknown:
            raise self.error(unknown[0], REFUSED.get(unknown[0], "a config field the importer does not understand; it "
                             "may change the architecture, so no spec is written (symcost never writes a silently "
                             "wrong one)"))
        return unread + [f"{n.prefix[-1]}.{k}" for n in self.nested for k in n.unread()]


ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_tanh",
               "quick_gelu": "quick_gelu",
               "gelu_fast": "gelu_tanh", "relu": "relu", "relu2": "relu2"}


def _act(c: Config, key: str = "hidden_act", default: str = "silu", read_as: dict[str, str] | None = None) -> str:
    """The activation `key` names; `read_as` holds legacy values the family's model replaces."""
    value = c.expect(key, ACTIVATIONS, default)
    return ACTIVATIONS[(read_as or {}).get(value, value)]


def _rotary_fraction(c: Config, key: str, default: float) -> float:
    """The part of each head that rotary rotates: `key` at the top level (older configs), else
    `partial_rotary_factor` inside rope_parameters or rope_scaling (transformers 5)."""
    if key in c.data:
        value = c.get(key)
    else:
        nested = [c.data[k]["partial_rotary_factor"] for k in ("rope_parameters", "rope_scaling")
                  if isinstance(c.data.get(k), dict) and "partial_rotary_factor" in c.data[k]]
        value = nested[0] if nested else default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise c.error(key if key in c.data else "rope_parameters", f"expected a fraction in (0, 1], got {value!r}")
    return value


def _layer_indices(c: Config, key: str, n: int) -> set[int]:
    """The layers a config field lists by index (Llama 4's moe_layers, Bamba's attn_layer_indices, LFM2's
    full_attn_idxs), or the one-line refusal."""
    given = c.get(key)
    if not isinstance(given, list) or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n
                                          for i in given):
        raise c.error(key, f"expected layer indices from 0 to {n - 1}, got {given!r}")
    return set(given)


def _alias(c: Config, *keys: str) -> str:
    """The first of a field's names (current, then legacy) that the config uses; the others are read too."""
    c.read.update(keys)
    return next((k for k in keys if c.data.get(k) is not None), keys[0])
