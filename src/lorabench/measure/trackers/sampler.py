"""What the trackers read from a device, as protocols, and a scripted fake of it for tests.

The real implementation is :class:`lorabench.measure.trackers.cuda.CudaNvmlSampler`. Every reading is one value per
device, in the order of :attr:`MemorySampler.devices`; a device without a reading gives None, never 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

__all__ = ["COUNTER_KEYS", "DeviceSampler", "EnergySampler", "FakeSampler", "MemorySampler"]

COUNTER_KEYS = ("allocated", "reserved", "nvml_used", "energy", "power")
"""The keys of a sampler's :attr:`~MemorySampler.counters`: which counter each kind of reading comes from."""

Reading = list[int | None]


@runtime_checkable
class MemorySampler(Protocol):
    """Device memory counters: the allocator's peaks since the last reset, and the driver's used bytes now."""

    @property
    def devices(self) -> Sequence[int]:
        """The CUDA device indices the run uses, in reading order."""
        ...

    @property
    def counters(self) -> Mapping[str, str]:
        """The name of the counter behind each reading, keyed by :data:`COUNTER_KEYS`."""
        ...

    def reset_peaks(self) -> None:
        """Reset the allocator's peak statistics on every device (the peak restarts from what is live now)."""
        ...

    def peak_allocated_bytes(self) -> Reading:
        """Peak bytes held by live tensors since the last reset, per device."""
        ...

    def peak_reserved_bytes(self) -> Reading:
        """Peak bytes the caching allocator held (tensors + cache) since the last reset, per device."""
        ...

    def nvml_used_bytes(self) -> Reading:
        """Bytes the driver reports used on each device right now (whole device: context and other processes too)."""
        ...


@runtime_checkable
class EnergySampler(Protocol):
    """NVML-like energy readings."""

    @property
    def devices(self) -> Sequence[int]:
        """The CUDA device indices the run uses, in reading order."""
        ...

    @property
    def counters(self) -> Mapping[str, str]:
        """The name of the counter behind each reading, keyed by :data:`COUNTER_KEYS`."""
        ...

    def total_energy_mj(self) -> Reading:
        """Each device's cumulative energy counter in millijoules; None where unsupported or failing."""
        ...

    def power_mw(self) -> Reading:
        """Each device's power draw in milliwatts now; None where unsupported or failing."""
        ...


@runtime_checkable
class DeviceSampler(MemorySampler, EnergySampler, Protocol):
    """Both memory and energy readings, as the CUDA path of the resource tracker needs them."""


def _script(values: Iterable[Sequence[int | None]] | None, width: int) -> list[Reading]:
    script: list[Reading] = [list(v) for v in values] if values is not None else [[None] * width]
    if not script:
        raise ValueError("a script needs at least one reading")
    for reading in script:
        if len(reading) != width:
            raise ValueError(f"every reading needs one value per device ({width}), got {reading}")
    return script


class FakeSampler:
    """A scripted :class:`DeviceSampler` for tests: each call returns the next reading of its script.

    A script is a list of readings (one value per device); once it runs out, its last reading repeats. A missing
    script reads None on every device. Counters are named ``fake:...`` so a fake figure never passes for a real one.

    Args:
        devices: The device indices the fake pretends to read.
        peak_allocated: Script for :meth:`peak_allocated_bytes`.
        peak_reserved: Script for :meth:`peak_reserved_bytes`.
        nvml_used: Script for :meth:`nvml_used_bytes`.
        energy_mj: Script for :meth:`total_energy_mj`.
        power_mw: Script for :meth:`power_mw`.
    """

    def __init__(
        self,
        devices: Sequence[int] = (0,),
        *,
        peak_allocated: Iterable[Sequence[int | None]] | None = None,
        peak_reserved: Iterable[Sequence[int | None]] | None = None,
        nvml_used: Iterable[Sequence[int | None]] | None = None,
        energy_mj: Iterable[Sequence[int | None]] | None = None,
        power_mw: Iterable[Sequence[int | None]] | None = None,
    ) -> None:
        self._devices = list(devices)
        width = len(self._devices)
        self._scripts = {
            "allocated": _script(peak_allocated, width),
            "reserved": _script(peak_reserved, width),
            "nvml_used": _script(nvml_used, width),
            "energy": _script(energy_mj, width),
            "power": _script(power_mw, width),
        }
        self.calls = dict.fromkeys(self._scripts, 0)
        self.resets = 0

    def _next(self, key: str) -> Reading:
        script = self._scripts[key]
        reading = script[min(self.calls[key], len(script) - 1)]
        self.calls[key] += 1
        return list(reading)

    @property
    def devices(self) -> Sequence[int]:
        """The device indices the fake pretends to read."""
        return list(self._devices)

    @property
    def counters(self) -> Mapping[str, str]:
        """``fake:<key>`` for every key of :data:`COUNTER_KEYS`."""
        return {key: f"fake:{key}" for key in COUNTER_KEYS}

    def reset_peaks(self) -> None:
        """Count the reset."""
        self.resets += 1

    def peak_allocated_bytes(self) -> Reading:
        """The next scripted reading."""
        return self._next("allocated")

    def peak_reserved_bytes(self) -> Reading:
        """The next scripted reading."""
        return self._next("reserved")

    def nvml_used_bytes(self) -> Reading:
        """The next scripted reading."""
        return self._next("nvml_used")

    def total_energy_mj(self) -> Reading:
        """The next scripted reading."""
        return self._next("energy")

    def power_mw(self) -> Reading:
        """The next scripted reading."""
        return self._next("power")
