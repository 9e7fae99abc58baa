"""Architecture catalog and model construction.

``build_meta_model`` is imported on first use: it needs torch and transformers, resolving a model does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lorabench.models.catalog import ArchitectureEntry, ResolvedModel, architecture_catalog, resolve_model

if TYPE_CHECKING:
    from lorabench.models.build import build_meta_model

__all__ = ["ArchitectureEntry", "ResolvedModel", "architecture_catalog", "build_meta_model", "resolve_model"]


def __getattr__(name: str) -> Any:
    if name == "build_meta_model":
        from lorabench.models.build import build_meta_model

        return build_meta_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
