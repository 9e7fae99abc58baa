from __future__ import annotations

import lorabench.measure
import lorabench.measure.trackers


def test_measure_exports() -> None:
    assert set(lorabench.measure.__all__) == {
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
    }
    for module in (lorabench.measure, lorabench.measure.trackers):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_samplers_satisfy_their_protocols() -> None:
    from lorabench.measure import DeviceSampler, EnergySampler, FakeSampler, MemorySampler

    fake = FakeSampler()
    assert isinstance(fake, DeviceSampler) and isinstance(fake, MemorySampler) and isinstance(fake, EnergySampler)
