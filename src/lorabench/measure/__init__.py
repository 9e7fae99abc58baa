"""Measuring real fine-tuning runs: the resource trackers (time, tokens, memory, energy) a training loop drives.

Every figure names the counter it came from, carries its unit in its name, and is None (never 0) when unknown.
"""

from __future__ import annotations

from lorabench.measure.trackers import (
    CudaNvmlSampler,
    DeviceSampler,
    EnergySampler,
    FakeSampler,
    Measured,
    MemorySampler,
    RankCounts,
    ResourceTracker,
    StepClock,
    Throughput,
    combine_ranks,
    throughput,
)

__all__ = [
    "CudaNvmlSampler",
    "DeviceSampler",
    "EnergySampler",
    "FakeSampler",
    "Measured",
    "MemorySampler",
    "RankCounts",
    "ResourceTracker",
    "StepClock",
    "Throughput",
    "combine_ranks",
    "throughput",
]
