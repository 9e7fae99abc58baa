"""Resource trackers for a training run: wall clock and step times, tokens, peak memory, energy.

Every figure names the counter it came from, carries its unit in its name, and is None (never 0) when unknown.
:class:`ResourceTracker` is what a training loop uses; the pieces underneath are usable alone and take fake
clocks and samplers in tests.
"""

from __future__ import annotations

from lorabench.measure.trackers.clock import Clock, StepClock, no_sync
from lorabench.measure.trackers.cpu_memory import CPU_MEMORY_COUNTER, CpuTensorMemory, peak_live_bytes
from lorabench.measure.trackers.cuda import CudaNvmlSampler
from lorabench.measure.trackers.energy import METHOD_COUNTER, METHOD_POWER, EnergyMeter, EnergyReport, trapezoid_j
from lorabench.measure.trackers.measured import Measured
from lorabench.measure.trackers.memory import DeviceMemoryMeter, DeviceMemoryReport
from lorabench.measure.trackers.poller import MIN_INTERVAL_S, Poller
from lorabench.measure.trackers.rss import PeakRss
from lorabench.measure.trackers.sampler import DeviceSampler, EnergySampler, FakeSampler, MemorySampler
from lorabench.measure.trackers.tokens import (
    RankCounts,
    StepCount,
    Throughput,
    TokenCounter,
    combine_ranks,
    rank_counts,
    throughput,
)
from lorabench.measure.trackers.tracker import ResourceTracker

__all__ = [
    "CPU_MEMORY_COUNTER",
    "METHOD_COUNTER",
    "METHOD_POWER",
    "MIN_INTERVAL_S",
    "Clock",
    "CpuTensorMemory",
    "CudaNvmlSampler",
    "DeviceMemoryMeter",
    "DeviceMemoryReport",
    "DeviceSampler",
    "EnergyMeter",
    "EnergyReport",
    "EnergySampler",
    "FakeSampler",
    "Measured",
    "MemorySampler",
    "PeakRss",
    "Poller",
    "RankCounts",
    "ResourceTracker",
    "StepClock",
    "StepCount",
    "Throughput",
    "TokenCounter",
    "combine_ranks",
    "no_sync",
    "peak_live_bytes",
    "rank_counts",
    "throughput",
    "trapezoid_j",
]
