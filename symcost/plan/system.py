"""The system: accelerators as data (hardware.yaml, or a user's file of the same shape), each
number with its source. Peak FLOP/s are dense; the planner never reads a sparse figure."""

from __future__ import annotations

import functools
from pathlib import Path

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import SpecError

CATALOG = Path(__file__).with_name("hardware.yaml")
TFLOPS_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")

# Every number is finite and between bounds no accelerator comes near (a thousandth of a small one's,
# a thousand times today's largest), so that a typo, `.inf` or 1e-308 is refused where it is
# written, not planned in 0 s or forever. Strict: `true` is not 1 and "80" is not a number.
TFLOPS = Annotated[float, Field(strict=True, ge=1e-3, le=1e7, allow_inf_nan=False)]
GB = Annotated[float, Field(strict=True, ge=1e-3, le=1e6, allow_inf_nan=False)]
GBPS = Annotated[float, Field(strict=True, ge=1e-3, le=1e7, allow_inf_nan=False)]


class Hardware(BaseModel):
    """One accelerator. Units are in the field names; bandwidths in GB/s (10^9 bytes)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    name: str
    tflops: dict[str, TFLOPS] = Field(description="dense peak per dtype, TFLOP/s")
    memory_GB: GB
    memory_GBps: GBPS
    intra_node_GBps: GBPS = Field(description="scale-up link, both directions together")
    gpus_per_node: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    inter_node_GBps: GBPS = Field(description="scale-out bandwidth per accelerator, one direction")
    inter_node_source: str
    host_link_GBps: GBPS | None = Field(None, description="the link to host memory, one direction (PCIe)")
    host_link_source: str | None = None
    source: str
    date: str

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s of matmuls in `dtype`."""
        if dtype not in self.tflops:
            raise SpecError(f"{self.name} has no {dtype} peak in the catalog (it has {', '.join(self.tflops)})")
        return self.tflops[dtype] * 1e12

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_GB * 10**9)


def entries(path: str | Path, model: type[BaseModel], check=None) -> dict:
    """The file's mapping of hardware keys to entries of `model`, each validated where it is written (a
    field's file:line); `check(entry)` may refuse an entry further with a SpecError naming its field."""
    from .. import source

    doc = source.read(path)
    raw = doc.data
    if not isinstance(raw, dict):
        raise SpecError("expected a mapping of hardware names to entries", file=str(path))
    out = {}
    for key, entry in raw.items():
        if not isinstance(entry, dict):
            raise doc.error((key,), f"expected a mapping of the fields {', '.join(list(model.model_fields)[:3])}, ...")
        for name in entry:
            if name not in model.model_fields:
                raise doc.error((key, name), f"unknown field {name!r}; expected {', '.join(model.model_fields)}")
        try:
            if check is not None:
                check(entry)
            out[str(key)] = model.model_validate(entry)
        except ValidationError as e:
            raise located(doc, (key,), e) from None
        except SpecError as e:
            raise doc.error((key, e.param), e.message) from None
    return out


def located(doc, where: tuple, e: ValidationError) -> SpecError:
    """pydantic's first error in a data file (hardware, efficiency, runs) at its field's file:line, with the value
    as given."""
    err = e.errors()[0]
    given = err.get("input")
    got = f", got {given!r}" if isinstance(given, (bool, int, float, str)) else ""
    return doc.error((*where, *err["loc"]), err["msg"] + got)


def _dtypes(entry: dict) -> None:
    if unknown := set(entry.get("tflops") or ()) - set(TFLOPS_DTYPES):
        raise SpecError(f"tflops: unknown dtype {sorted(unknown)[0]!r}; expected {', '.join(TFLOPS_DTYPES)}",
                        param="tflops")


def _load(path: str | Path) -> dict[str, Hardware]:
    return entries(path, Hardware, _dtypes)


@functools.cache
def catalog() -> dict[str, Hardware]:
    return _load(CATALOG)


def hardware(name: str, extra_file: str | None = None) -> Hardware:
    """The entry `name` from the shipped catalog, or from `extra_file` (which may add or replace entries)."""
    entries = dict(catalog())
    if extra_file is not None:
        entries |= _load(extra_file)
    if name not in entries:
        raise SpecError(f"unknown hardware {name!r}; known: {', '.join(sorted(entries))}")
    return entries[name]

