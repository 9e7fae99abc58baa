"""Architecture catalog and model construction."""

from lorabench.models.build import build_meta_model
from lorabench.models.catalog import ArchitectureEntry, ResolvedModel, architecture_catalog, resolve_model

__all__ = ["ArchitectureEntry", "ResolvedModel", "architecture_catalog", "build_meta_model", "resolve_model"]
