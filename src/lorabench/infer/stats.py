"""Summaries of repeated timings: mean, min, max and percentiles (linear interpolation, numpy's default)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["PERCENTILE_METHOD", "percentile", "summarize"]

PERCENTILE_METHOD = "linear interpolation between closest ranks (numpy's default); with few repeats p99 ~ max"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by linear interpolation between closest ranks.

    Raises:
        ValueError: No values, or ``q`` outside 0-100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100 (got {q})")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict[str, float] | None:
    """``mean``, ``p50``, ``p90``, ``p99``, ``min`` and ``max`` of the values; None when there are none."""
    if not values:
        return None
    return {
        "mean": sum(values) / len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
    }
