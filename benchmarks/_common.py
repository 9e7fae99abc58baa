"""Shared helpers for benchmark scripts (they print figures; nothing here asserts speed)."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
FINLORA = Path(os.environ.get("LORABENCH_SHARED", REPO.parent / "shared")) / "data" / "finlora"


def run(spec_values: dict[str, Any], **options: Any) -> dict[str, Any]:
    """One in-process measured run in a temporary folder; returns its record."""
    from lorabench.measure.options import RunOptions
    from lorabench.measure.runner import run_training
    from lorabench.spec import parse_spec

    with tempfile.TemporaryDirectory() as tmp:
        return run_training(parse_spec(spec_values), RunOptions(out=Path(tmp), **options))


def counted_step_median(record: dict[str, Any]) -> float:
    """Median duration of the steps after warm-up."""
    metrics = record["metrics"]
    return statistics.median(metrics["step_times_s"][metrics["warmup_steps"] :])
