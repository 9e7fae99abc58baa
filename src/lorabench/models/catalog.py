"""Architecture catalog: config facts for well-known models, and resolving a model reference.

A model reference is a catalog name (``llama-3.1-8b``), a Hugging Face id that maps to a
catalog entry (``meta-llama/Llama-3.1-8B-Instruct``), or a local directory holding a
``config.json`` (any architecture transformers knows). No weights are needed.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lorabench.errors import CatalogError, ModelError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["ArchitectureEntry", "ResolvedModel", "architecture_catalog", "resolve_model"]

_SUFFIXES = ("-instruct", "-chat", "-hf", "-it", "-base")


class ArchitectureEntry(BaseModel):
    """One catalog entry: the published config facts of one model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    display_name: str = Field(min_length=1)
    source: str = Field(min_length=1)
    hub_ids: tuple[str, ...] = ()
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


def _normalise(ref: str) -> str:
    name = ref.strip().rsplit("/", 1)[-1].lower()
    if name.startswith("meta-llama-"):
        name = name.removeprefix("meta-")
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                name, changed = name.removesuffix(suffix), True
    return name


def _lookup(ref: str) -> str | None:
    catalog = architecture_catalog()
    low = ref.strip().lower()
    if low in catalog:
        return low
    for key, entry in catalog.items():
        if any(low == hub.lower() for hub in entry.hub_ids):
            return key
    norm = _normalise(ref)
    return norm if norm in catalog else None


def resolve_model(ref: str) -> ResolvedModel:
    """Resolve a model reference to its transformers config.

    Args:
        ref: Catalog name, Hugging Face id of a catalog model, or a local directory with ``config.json``.

    Returns:
        The resolved model.

    Raises:
        ModelError: Unknown name, or a directory without a readable ``config.json``.
    """
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"model directory {path} has no config.json")
        try:
            content = json.loads((path / "config.json").read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path / 'config.json'}: transformers cannot read it ({exc})") from None
        if not isinstance(content, dict):
            raise ModelError(f"{path / 'config.json'}: transformers cannot read it (not a JSON object)")
        return ResolvedModel(
            key=path.name,
            display_name=path.name,
            source=str(path / "config.json"),
            config_content=content,
            local_dir=path,
        )
    key = _lookup(ref)
    if key is None:
        known = ", ".join(architecture_catalog())
        raise ModelError(
            f"unknown model {ref!r}: not in the architecture catalog ({known}) and not a local directory "
            "with config.json"
        )
    entry = architecture_catalog()[key]
    return ResolvedModel(key=key, display_name=entry.display_name, source=entry.source, config_content=entry.config)
