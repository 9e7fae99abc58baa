from __future__ import annotations

import pytest

from lorabench.measure.trackers import METHOD_COUNTER, METHOD_POWER, EnergyMeter, FakeSampler, trapezoid_j


def _run(sampler: FakeSampler, times: list[float]) -> EnergyMeter:
    meter = EnergyMeter(sampler)
    meter.start()
    for t in times:
        meter.sample(t)
    return meter


def test_energy_counter_delta_in_joules() -> None:
    sampler = FakeSampler(devices=(0, 1), energy_mj=[[1_000, 50_000], [4_500, 60_000]])
    report = _run(sampler, [0.0, 1.0]).stop()
    assert report.energy.value == pytest.approx(3.5 + 10.0)
    assert report.energy.per_device == (3.5, 10.0)
    assert report.method == METHOD_COUNTER
    assert report.energy.counter == "fake:energy (end - start, mJ -> J)"
    assert sampler.calls["power"] == 0  # no power polling when every device has a counter


def test_power_trapezoid_fallback() -> None:
    # No energy counter (pre-Volta): 100 W at t=0, 200 W at t=2, 200 W at t=3 -> 300 J + 200 J.
    sampler = FakeSampler(energy_mj=[[None]], power_mw=[[100_000], [200_000], [200_000]])
    report = _run(sampler, [0.0, 2.0, 3.0]).stop()
    assert report.energy.value == pytest.approx(500.0)
    assert report.method == METHOD_POWER
    assert report.energy.counter == "fake:power (trapezoid over samples, mW -> W)"


def test_zero_power_readings_are_dropped() -> None:
    sampler = FakeSampler(energy_mj=[[None]], power_mw=[[100_000], [0], [100_000]])
    report = _run(sampler, [0.0, 1.0, 2.0]).stop()
    assert report.energy.value == pytest.approx(200.0)


def test_mixed_devices() -> None:
    sampler = FakeSampler(devices=(0, 1), energy_mj=[[0, None], [2_000, None]], power_mw=[[None, 50_000]])
    report = _run(sampler, [0.0, 4.0]).stop()
    assert report.energy.per_device == (2.0, 200.0)
    assert report.method == "mixed" and report.device_methods == (METHOD_COUNTER, METHOD_POWER)


@pytest.mark.parametrize(
    ("energy", "power", "times"),
    [
        ([[None]], [[None]], [0.0, 1.0]),  # no NVML: no counter, no power
        ([[None]], [[100_000]], [0.0]),  # a single power sample integrates to nothing
        ([[5_000], [1_000]], [[None]], [0.0, 1.0]),  # counter went backwards (driver reload)
        ([[5_000], [None]], [[None]], [0.0, 1.0]),  # counter unreadable at the end
    ],
)
def test_unknown_energy_is_none_never_zero(
    energy: list[list[int | None]], power: list[list[int | None]], times: list[float]
) -> None:
    report = _run(FakeSampler(energy_mj=energy, power_mw=power), times).stop()
    assert report.energy.value is None and report.energy.counter is None
    assert report.method is None and report.energy.reason


def test_partial_energy_is_not_a_total() -> None:
    sampler = FakeSampler(devices=(0, 1), energy_mj=[[0, None], [1_000, None]], power_mw=[[None, None]])
    report = _run(sampler, [0.0, 1.0]).stop()
    assert report.energy.value is None and report.energy.per_device == (1.0, None)


def test_trapezoid() -> None:
    assert trapezoid_j([]) is None and trapezoid_j([(0.0, 5.0)]) is None
    assert trapezoid_j([(1.0, 10.0), (0.0, 0.0)]) == pytest.approx(5.0)  # sorted by time
