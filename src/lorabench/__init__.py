"""lorabench: predict, measure and price LoRA / QLoRA / DoRA / rsLoRA fine-tuning.

The library's public names are re-exported here (see :mod:`lorabench.api`); heavy libraries (torch,
transformers, PEFT) are imported only when a function that needs them runs, and the API module itself on
first use, so ``import lorabench`` stays cheap. ``compare_costs`` is :func:`lorabench.api.cost` (the name
``lorabench.cost`` is the cost package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from lorabench.errors import (
    CatalogError,
    ConfigError,
    DataError,
    LorabenchError,
    MeasurementError,
    ModelError,
)
from lorabench.spec import Hardware, RunSpec, parse_spec

if TYPE_CHECKING:
    from lorabench.api import (
        CostComparison,
        EstimateResult,
        FitReport,
        RunResult,
        compare_costs,
        estimate,
        fit,
        load_spec,
        run,
    )

_API = frozenset(
    {
        "CostComparison",
        "EstimateResult",
        "FitReport",
        "RunResult",
        "compare_costs",
        "estimate",
        "fit",
        "load_spec",
        "run",
    }
)

__all__ = [
    "CatalogError",
    "ConfigError",
    "CostComparison",
    "DataError",
    "EstimateResult",
    "FitReport",
    "Hardware",
    "LorabenchError",
    "MeasurementError",
    "ModelError",
    "RunResult",
    "RunSpec",
    "__version__",
    "compare_costs",
    "estimate",
    "fit",
    "load_spec",
    "parse_spec",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        from lorabench import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
