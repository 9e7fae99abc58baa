"""Architecture catalog: config facts for well-known models, and resolving a model reference.

A model reference is a catalog name (``llama-3.1-8b``), a Hugging Face id that maps to a
catalog entry (``meta-llama/Llama-3.1-8B-Instruct``, a mirror such as ``NousResearch/Meta-Llama-3-8B``, or a
pre-quantized re-upload such as ``unsloth/llama-3-8b-bnb-4bit``), a model in the local Hugging Face cache
(``$HF_HUB_CACHE`` or ``$HF_HOME/hub``: ``models--ORG--NAME/snapshots/*/config.json``), or a local directory
holding a ``config.json`` (any architecture transformers knows). No weights are needed, nothing is downloaded.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lorabench.errors import CatalogError, ModelError
from lorabench.spec.model_names import QUANT_SUFFIX as _QUANT_SUFFIX
from lorabench.spec.model_names import quantized_upload_bits

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = [
    "ArchitectureEntry",
    "ResolvedModel",
    "architecture_catalog",
    "hf_hub_cache",
    "quantized_upload_bits",
    "resolve_model",
]

_SUFFIXES = ("-instruct", "-chat", "-hf", "-it", "-pt", "-base", "-sft", "-fp16", "-bf16", "-sharded", "-colab")


class ArchitectureEntry(BaseModel):
    """One catalog entry: the published config facts of one model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    display_name: str = Field(min_length=1)
    source: str = Field(min_length=1)
    hub_ids: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    config: dict[str, Any]


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int
    checked: str
    models: dict[str, ArchitectureEntry]


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference resolved to its config content and where it came from.

    ``config`` (the transformers config) is built on first use, so resolving a model does not import
    transformers; ``config_content`` is what the config is built from (the catalog facts, or the parsed
    ``config.json``), the key of :mod:`lorabench.models.facts`' cache.
    """

    key: str
    display_name: str
    source: str
    config_content: Mapping[str, Any]
    local_dir: Path | None = None
    note: str | None = None

    @functools.cached_property
    def config(self) -> PretrainedConfig:
        """The transformers config (built on first access).

        Raises:
            ModelError: transformers cannot read the config.
        """
        if self.local_dir is not None:
            from transformers import AutoConfig

            path = self.local_dir
            try:
                loaded: PretrainedConfig = AutoConfig.from_pretrained(
                    str(path), trust_remote_code=False, local_files_only=True
                )
            except (ValueError, OSError, KeyError) as exc:
                raise ModelError(f"{path / 'config.json'}: transformers cannot read it ({exc})") from None
            return loaded
        from transformers import CONFIG_MAPPING

        facts = copy.deepcopy(dict(self.config_content))  # transformers edits nested dicts (rope) in place
        model_type = facts.pop("model_type")
        config: PretrainedConfig = CONFIG_MAPPING[model_type](**facts)
        return config


@functools.cache
def architecture_catalog() -> dict[str, ArchitectureEntry]:
    """Load and validate the packaged architecture catalog (cached).

    Raises:
        CatalogError: The packaged file is malformed (a packaging bug).
    """
    text = resources.files("lorabench.models").joinpath("catalog/architectures.yaml").read_text("utf-8")
    try:
        return _CatalogFile.model_validate(yaml.safe_load(text)).models
    except ValidationError as exc:
        raise CatalogError(f"architectures.yaml: invalid catalog: {exc.errors()[0]['msg']}") from None


def _normalise(ref: str) -> tuple[str, str | None]:
    """Lower-case name without organisation and variant suffixes, and the quantized suffix if any."""
    name = ref.strip().rsplit("/", 1)[-1].lower()
    if name.startswith("meta-llama-"):
        name = name.removeprefix("meta-")
    quant: str | None = None
    changed = True
    while changed:
        changed = False
        match = _QUANT_SUFFIX.search(name)
        if match:
            quant = quant or match.group(0).lstrip("-")
            name, changed = name[: match.start()], True
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                name, changed = name.removesuffix(suffix), True
    name = re.sub(r"-(?:2407|2409|2501|2503|2506|2507)$", "", name)  # dated Mistral / Qwen refreshes
    return name, quant


def _lookup(ref: str) -> tuple[str, str | None] | None:
    catalog = architecture_catalog()
    low = ref.strip().lower()
    if low in catalog:
        return low, None
    for key, entry in catalog.items():
        if any(low == hub.lower() for hub in entry.hub_ids):
            return key, None
    norm, quant = _normalise(ref)
    for key, entry in catalog.items():
        if norm == key or norm in entry.aliases or any(norm == _normalise(h)[0] for h in entry.hub_ids):
            return key, quant
    return None


def hf_hub_cache() -> Path:
    """The local Hugging Face hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _cached_snapshot(ref: str) -> Path | None:
    """The snapshot folder of ``ORG/NAME`` in the hub cache that holds a config.json (``refs/main`` first)."""
    if ref.count("/") != 1 or ref.startswith((".", "/", "~")):
        return None
    repo = hf_hub_cache() / ("models--" + ref.strip().replace("/", "--"))
    snapshots = repo / "snapshots"
    try:
        main = (repo / "refs" / "main").read_text("utf-8").strip()
    except OSError:
        main = ""
    if main and (snapshots / main / "config.json").is_file():
        return snapshots / main
    try:
        found = [p.parent for p in snapshots.glob("*/config.json")]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _from_directory(path: Path, key: str, note: str | None = None) -> ResolvedModel:
    config_file = path / "config.json"
    try:
        content = json.loads(config_file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{config_file}: transformers cannot read it ({exc})") from None
    if not isinstance(content, dict):
        raise ModelError(f"{config_file}: transformers cannot read it (not a JSON object)")
    from lorabench.models.validate import check_model_config

    check_model_config(content, str(config_file))  # sizes from a file, checked before anything is built from them
    return ResolvedModel(
        key=key, display_name=key, source=str(config_file), config_content=content, local_dir=path, note=note
    )


def resolve_model(ref: str) -> ResolvedModel:
    """Resolve a model reference to its transformers config, offline.

    Order: a local directory; a catalog name or listed hub id; the local Hugging Face cache; a catalog
    entry after removing the organisation and variant suffixes (``-Instruct``, ``-it``, ``-bnb-4bit``, ...).

    Args:
        ref: Catalog name, Hugging Face id, or a local directory with ``config.json``.

    Returns:
        The resolved model (``note`` says when it is a pre-quantized re-upload or came from the cache).

    Raises:
        ModelError: Unknown name, or a directory without a readable ``config.json``.
    """
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"model directory {path} has no config.json")
        return _from_directory(path, path.name)
    found = _lookup(ref)
    if found is None or found[1] is not None:
        snapshot = _cached_snapshot(ref)
        if snapshot is not None:
            return _from_directory(snapshot, ref.strip(), note=f"config from the local Hugging Face cache ({snapshot})")
    if found is None:
        raise ModelError(
            f"unknown model {ref!r}: not a catalog name ({', '.join(architecture_catalog())}), not in the Hugging "
            f"Face cache ({hf_hub_cache()}), not a local directory; put its config.json in a folder (e.g. "
            "`huggingface-cli download ORG/NAME config.json --local-dir DIR`) and pass that folder as the model"
        )
    key, quant = found
    entry = architecture_catalog()[key]
    note = None
    if quant is not None:
        bits = "8-bit" if "8" in quant else "4-bit"
        note = (
            f"{ref} is a pre-quantized {bits} ({quant}) re-upload of {entry.display_name}; the architecture is "
            f"the base's, so give the bits it was quantized to (--bits {8 if bits == '8-bit' else 4})"
        )
    return ResolvedModel(
        key=key, display_name=entry.display_name, source=entry.source, config_content=entry.config, note=note
    )
