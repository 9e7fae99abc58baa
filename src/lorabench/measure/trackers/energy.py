"""GPU energy over a run, from NVML: the cumulative energy counter, or integrated power samples where it is missing.

The counter (``nvmlDeviceGetTotalEnergyConsumption``, Volta and newer) is exact to the millijoule. Older GPUs only
report power (``nvmlDeviceGetPowerUsage``, on recent GPUs a one-second average), so their energy is the trapezoid
integral of samples taken every poll interval. With no NVML or no GPU the energy is unknown: None, never 0 J.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from lorabench.measure.trackers.measured import Measured, sum_known
from lorabench.measure.trackers.sampler import EnergySampler

__all__ = ["METHOD_COUNTER", "METHOD_POWER", "EnergyMeter", "EnergyReport", "trapezoid_j"]

METHOD_COUNTER = "nvml_energy_counter"
METHOD_POWER = "nvml_power_trapezoid"


def trapezoid_j(samples: list[tuple[float, float]]) -> float | None:
    """Energy in joules from ``(time_s, watts)`` samples by the trapezoid rule; None with fewer than two."""
    if len(samples) < 2:
        return None
    ordered = sorted(samples)
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in itertools.pairwise(ordered))


@dataclass(frozen=True)
class EnergyReport:
    """A run's energy, summed over its devices, and how it was measured.

    Attributes:
        energy: Joules over all devices (with the per-device values); unknown if any device is.
        method: :data:`METHOD_COUNTER`, :data:`METHOD_POWER`, ``mixed`` (devices differ; see ``device_methods``),
            or None when unknown.
        device_methods: The method of each device (None where it has no figure).
    """

    energy: Measured
    method: str | None
    device_methods: tuple[str | None, ...]


class EnergyMeter:
    """Measures each device's energy between :meth:`start` and :meth:`stop`.

    At :meth:`start` each device's energy counter is read: a device with one is measured by the counter's difference
    at :meth:`stop`; any other by its power samples, taken by :meth:`sample` (call it from a
    :class:`~lorabench.measure.trackers.poller.Poller`, which samples at its start and stop too). Power readings of
    0 mW are dropped: some drivers return zeros when polled too fast, and a working GPU never draws 0 W.
    """

    def __init__(self, sampler: EnergySampler) -> None:
        self._sampler = sampler
        width = len(sampler.devices)
        self._start_mj: list[int | None] = [None] * width
        self._power: list[list[tuple[float, float]]] = [[] for _ in range(width)]
        self._started = False

    def start(self) -> None:
        """Read the energy counters."""
        self._start_mj = self._sampler.total_energy_mj()
        self._started = True

    def sample(self, t: float) -> None:
        """Keep a power sample, at time ``t`` in seconds, of every device that has no energy counter."""
        if not self._started or all(v is not None for v in self._start_mj):
            return
        for i, milliwatts in enumerate(self._sampler.power_mw()):
            if self._start_mj[i] is None and milliwatts is not None and milliwatts > 0:
                self._power[i].append((t, milliwatts / 1000))

    def stop(self) -> EnergyReport:
        """Read the energy counters again and return the energy per device and in total."""
        end_mj = self._sampler.total_energy_mj()
        values: list[float | None] = []
        methods: list[str | None] = []
        reasons: list[str] = []
        for i, (start, end) in enumerate(zip(self._start_mj, end_mj, strict=True)):
            if start is not None:
                if end is not None and end >= start:
                    values.append((end - start) / 1000)
                    methods.append(METHOD_COUNTER)
                else:
                    values.append(None)
                    methods.append(None)
                    reasons.append(f"device position {i}: energy counter unreadable or reset at the end")
            else:
                energy = trapezoid_j(self._power[i])
                values.append(energy)
                methods.append(None if energy is None else METHOD_POWER)
                if energy is None:
                    reasons.append(f"device position {i}: no energy counter and fewer than two power samples")
        return self._report(values, methods, reasons)

    def _report(self, values: list[float | None], methods: list[str | None], reasons: list[str]) -> EnergyReport:
        total = sum_known(values)
        if total is None:
            reason = "; ".join(reasons) or "no devices"
            return EnergyReport(Measured.unknown("J", reason, values), None, tuple(methods))
        kinds = sorted({m for m in methods if m is not None})
        method = kinds[0] if len(kinds) == 1 else "mixed"
        counters = self._sampler.counters
        counter = {
            METHOD_COUNTER: f"{counters['energy']} (end - start, mJ -> J)",
            METHOD_POWER: f"{counters['power']} (trapezoid over samples, mW -> W)",
        }.get(method, f"{counters['energy']} or {counters['power']} per device")
        return EnergyReport(Measured(total, "J", counter, per_device=tuple(values)), method, tuple(methods))
