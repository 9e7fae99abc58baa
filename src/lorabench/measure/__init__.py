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


def __getattr__(name: str) -> object:
    # The runner and the Trainer callback import transformers/PEFT; load them only when asked for.
    if name == "ResourceCallback":
        from lorabench.measure.callback import ResourceCallback

        return ResourceCallback
    if name == "run_training":
        from lorabench.measure.runner import run_training

        return run_training
    if name == "RunOptions":
        from lorabench.measure.options import RunOptions

        return RunOptions
    raise AttributeError(f"module 'lorabench.measure' has no attribute {name!r}")
