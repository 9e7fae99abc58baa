"""GPU hardware catalog: datasheet facts for well-known GPUs, and resolving a GPU name.

Each entry records what the vendor's datasheet says: memory (``vram_bytes``), dense bf16 tensor
throughput with FP32 accumulate and without sparsity (``bf16_dense_tflops``), dense int8 tensor
throughput (``int8_dense_tops``), the number of streaming multiprocessors (``sm_count``), memory
bandwidth (``memory_bandwidth_gbps``, in GB/s = 1e9 bytes/s), the link between GPUs
(``interconnect``, with its per-GPU unidirectional bandwidth ``interconnect_gbps``), board power
(``tdp_w``), the URL the figures came from (``source``) and the date they were checked
(``checked``). The packaged file is ``hardware/catalog/gpus.yaml``; users can validate their own
files in the same schema with :func:`load_gpu_file` (a missing field is one ``CatalogError`` line
naming the file, the entry and the field).

A GPU name resolves through the entry key or any alias, case-insensitively and ignoring spaces,
dashes, underscores and a leading ``NVIDIA`` (so ``a5000``, ``RTX A5000`` and ``NVIDIA RTX A5000`` all
name the same entry).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Hashable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lorabench.errors import CatalogError

__all__ = ["INTERCONNECTS", "GpuSpec", "Interconnect", "gpu_catalog", "load_gpu_file", "resolve_gpu"]

_PACKAGED = "lorabench/hardware/catalog/gpus.yaml"
_SEPARATORS = re.compile(r"[\s\-_]+")

Interconnect = Literal["pcie3", "pcie4", "pcie5", "nvlink3", "nvlink4", "nvlink5"]
"""The link GPUs of one machine exchange data over: a PCIe generation (x16) or an NVLink generation."""

INTERCONNECTS: tuple[str, ...] = get_args(Interconnect)


class GpuSpec(BaseModel):
    """Datasheet facts of one GPU model.

    Attributes:
        key: Catalog key (the mapping key in the YAML file), e.g. ``A5000``.
        display_name: Full product name.
        aliases: Other names that resolve to this entry.
        vram_bytes: Memory in bytes (see the header of ``gpus.yaml`` for GB versus GiB).
        bf16_dense_tflops: Dense bf16 tensor throughput in TFLOPS with FP32 accumulate (what
            training uses), without sparsity; GeForce cards run FP32 accumulate at half their
            FP16-accumulate rate, so their figure is the lower one. ``note`` says which datasheet
            figure was used.
        int8_dense_tops: Dense int8 tensor throughput in TOPS, without sparsity.
        sm_count: Number of streaming multiprocessors.
        fp32_tflops: Non-tensor FP32 throughput in TFLOPS from the datasheet (fp32 matmuls: PyTorch leaves
            TF32 off by default), or None where no datasheet states it.
        mamf_bf16_tflops: Maximum achievable bf16 matmul TFLOPS, MEASURED: Stas Bekman's ``mamf-finder.py``
            table for data-center cards, a community square-``torch.matmul`` benchmark for GeForce cards
            (both named in ``gpus.yaml``'s header, the issue in each entry's ``note``), or None where nobody
            published a measurement.
        memory_bandwidth_gbps: Memory bandwidth in GB/s (1e9 bytes per second).
        interconnect: The link between GPUs of one machine: ``nvlink*`` for SXM / NVLink parts,
            the card's PCIe generation otherwise.
        interconnect_gbps: Per-GPU unidirectional bandwidth of that link in GB/s (the datasheet's
            bidirectional NVLink or PCIe figure halved), before protocol losses.
        tdp_w: Board power in watts.
        source: URL of the datasheet or product page the figures came from.
        checked: Date the figures were checked against ``source``.
        note: Which figure was used, or what could not be confirmed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    key: str = Field(min_length=1)
    display_name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    vram_bytes: int = Field(gt=0, strict=True)
    bf16_dense_tflops: float = Field(gt=0, strict=True, allow_inf_nan=False)
    int8_dense_tops: float = Field(gt=0, strict=True, allow_inf_nan=False)
    sm_count: int = Field(gt=0, strict=True)
    fp32_tflops: float | None = Field(default=None, gt=0, strict=True, allow_inf_nan=False)
    mamf_bf16_tflops: float | None = Field(default=None, gt=0, strict=True, allow_inf_nan=False)
    memory_bandwidth_gbps: float = Field(gt=0, strict=True, allow_inf_nan=False)
    interconnect: Interconnect
    interconnect_gbps: float = Field(gt=0, strict=True, allow_inf_nan=False)
    tdp_w: float = Field(gt=0, strict=True, allow_inf_nan=False)
    source: str = Field(min_length=1)
    checked: dt.date
    note: str | None = None

    @field_validator("source")
    @classmethod
    def _source_is_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the URL of the datasheet or product page (http:// or https://)")
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases_not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not _normalise(alias) for alias in value):
            raise ValueError("an alias is blank")
        return value


class _GpuFile(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1]
    gpus: dict[str, Any] = Field(min_length=1)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a mapping key given twice (a silent overwrite otherwise)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            break  # construct_mapping reports the unhashable key
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _normalise(name: str) -> str:
    low = _SEPARATORS.sub("", name.strip().lower())
    return low.removeprefix("nvidia")


def _describe(error: Mapping[str, Any]) -> str:
    field = ".".join(str(part) for part in error.get("loc", ())) or "(entry)"
    if error.get("type") == "missing":
        return f"{field}: required"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{field}: {message} (got {error.get('input')!r})"


def _parse(label: str, text: str) -> dict[str, GpuSpec]:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise CatalogError(f"{label}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{label}: expected a mapping with schema_version and gpus")
    try:
        parsed = _GpuFile.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(f"{label}: {_describe(exc.errors()[0])}") from None
    specs: dict[str, GpuSpec] = {}
    owner: dict[str, str] = {}
    for key, raw in parsed.gpus.items():
        entry = f"gpus.{key}"
        if not isinstance(raw, dict):
            raise CatalogError(f"{label}: {entry}: expected a mapping of fields")
        if "key" in raw and raw["key"] != key:
            raise CatalogError(f"{label}: {entry}: key: must match the entry name (got {raw['key']!r})")
        try:
            spec = GpuSpec.model_validate({**raw, "key": key})
        except ValidationError as exc:
            problems = "; ".join(_describe(error) for error in exc.errors())
            raise CatalogError(f"{label}: {entry}: {problems}") from None
        for name in (spec.key, *spec.aliases):
            norm = _normalise(name)
            if not norm:
                raise CatalogError(f"{label}: {entry}: key: {key!r} is blank once normalised")
            other = owner.setdefault(norm, key)
            if other != key:
                raise CatalogError(f"{label}: {entry}: aliases: {name!r} already names entry {other!r}")
        specs[key] = spec
    return specs


def load_gpu_file(path: str | Path) -> dict[str, GpuSpec]:
    """Load and validate a GPU catalog file in the packaged schema.

    Args:
        path: A YAML file with ``schema_version: 1`` and a ``gpus`` mapping of entries.

    Returns:
        The entries by key, in file order.

    Raises:
        CatalogError: The file is unreadable or invalid; the one-line message names the file, the
            entry and the field.
    """
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{file}: cannot read GPU catalog file ({exc})") from None
    if not text.strip():
        raise CatalogError(f"{file}: GPU catalog file is empty")
    return _parse(str(file), text)


@functools.cache
def gpu_catalog() -> dict[str, GpuSpec]:
    """Load and validate the packaged GPU catalog (cached).

    Returns:
        The entries by key, in file order. Treat it as read-only: it is shared.

    Raises:
        CatalogError: The packaged file is malformed (a packaging bug).
    """
    text = resources.files("lorabench.hardware").joinpath("catalog/gpus.yaml").read_text("utf-8")
    return _parse(_PACKAGED, text)


@functools.cache
def _index() -> dict[str, str]:
    index: dict[str, str] = {}
    for key, spec in gpu_catalog().items():
        for name in (key, *spec.aliases):
            index[_normalise(name)] = key
    return index


def resolve_gpu(name: str) -> GpuSpec:
    """Resolve a GPU name to its catalog entry.

    Args:
        name: A catalog key or alias, matched case-insensitively and ignoring spaces, dashes,
            underscores and a leading ``NVIDIA`` (``a5000``, ``RTX A5000``, ``A100-80GB``, ``h100``).

    Returns:
        The catalog entry.

    Raises:
        CatalogError: No entry has that name; the one-line message lists the known keys.
    """
    key = _index().get(_normalise(name))
    if key is None:
        raise CatalogError(f"unknown GPU {name!r}; known: {', '.join(gpu_catalog())}")
    return gpu_catalog()[key]
