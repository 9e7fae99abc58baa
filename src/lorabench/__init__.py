"""lorabench: predict, measure and price LoRA / QLoRA / DoRA / rsLoRA fine-tuning.

The library's public names are re-exported here; heavy libraries (torch, transformers,
PEFT) are imported only when a function that needs them runs.
"""

from __future__ import annotations

__version__ = "0.1.0"

from lorabench.errors import (
    CatalogError,
    ConfigError,
    DataError,
    LorabenchError,
    MeasurementError,
    ModelError,
)
from lorabench.spec import Hardware, RunSpec, load_spec, parse_spec

__all__ = [
    "CatalogError",
    "ConfigError",
    "DataError",
    "Hardware",
    "LorabenchError",
    "MeasurementError",
    "ModelError",
    "RunSpec",
    "__version__",
    "load_spec",
    "parse_spec",
]
