"""Inference resources of LoRA-adapted models against their base: latency, throughput, memory, energy and cost.

``lorabench infer`` measures a generation benchmark over a grid of batch sizes and prompt lengths for the base, the
base with the adapter unmerged, the adapter merged, N adapters on one base, and the quantized base; one versioned
``lorabench.infer`` record per cell goes beside the training records. Options, records and statistics import
without torch; the runner loads torch, transformers and PEFT when first asked for.
"""

from __future__ import annotations

from typing import Any

from lorabench.infer.options import VARIANTS, InferOptions, check_options
from lorabench.infer.record import (
    INFER_SCHEMA,
    INFER_SCHEMA_VERSION,
    read_infer_record,
    slowdowns,
    summary_row,
    write_infer_record,
)
from lorabench.infer.stats import percentile, summarize

__all__ = [
    "INFER_SCHEMA",
    "INFER_SCHEMA_VERSION",
    "VARIANTS",
    "InferOptions",
    "check_options",
    "percentile",
    "read_infer_record",
    "run_inference",
    "slowdowns",
    "summarize",
    "summary_row",
    "write_infer_record",
]


def __getattr__(name: str) -> Any:
    if name == "run_inference":
        from lorabench.infer.runner import run_inference

        return run_inference
    raise AttributeError(f"module 'lorabench.infer' has no attribute {name!r}")
