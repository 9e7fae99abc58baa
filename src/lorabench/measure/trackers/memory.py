"""Peak device memory over a run: the allocator's peaks and NVML's used bytes, sampled while the run goes on."""

from __future__ import annotations

from dataclasses import dataclass

from lorabench.measure.trackers.measured import Measured, max_known
from lorabench.measure.trackers.sampler import MemorySampler

__all__ = ["DeviceMemoryMeter", "DeviceMemoryReport"]


@dataclass(frozen=True)
class DeviceMemoryReport:
    """The three peaks of a run, each the max over its devices, with the per-device values and counters.

    Attributes:
        peak_allocated: Live tensors (``torch.cuda.max_memory_allocated``).
        peak_reserved: Tensors plus the caching allocator's cache (``torch.cuda.max_memory_reserved``).
        nvml_peak_used: What the driver saw used on the device, sampled (context, workspaces, memory allocated
            outside PyTorch such as paged optimizers, other processes).
    """

    peak_allocated: Measured
    peak_reserved: Measured
    nvml_peak_used: Measured


def _peak(values: list[int | None], counter: str, what: str) -> Measured:
    value = max_known(values)
    if value is None:
        missing = [i for i, v in enumerate(values) if v is None]
        return Measured.unknown("bytes", f"{what}: no reading on device position(s) {missing}", values)
    return Measured(value, "bytes", counter, per_device=tuple(values))


class DeviceMemoryMeter:
    """Reads a :class:`~lorabench.measure.trackers.sampler.MemorySampler` over a run.

    :meth:`start` resets the allocator peaks (they restart from what is live, so weights loaded before the start
    still count); :meth:`sample` keeps the largest NVML reading per device (call it from a
    :class:`~lorabench.measure.trackers.poller.Poller`); :meth:`stop` reads the allocator peaks.
    """

    def __init__(self, sampler: MemorySampler) -> None:
        self._sampler = sampler
        self._nvml_peaks: list[int | None] = [None] * len(sampler.devices)
        self.nvml_samples = 0

    def start(self) -> None:
        """Reset the allocator's peak statistics."""
        self._sampler.reset_peaks()

    def sample(self, t: float) -> None:
        """Read NVML's used bytes now and keep each device's largest reading (``t`` is unused)."""
        del t
        readings = self._sampler.nvml_used_bytes()
        self.nvml_samples += 1
        for i, value in enumerate(readings):
            if value is not None:
                current = self._nvml_peaks[i]
                self._nvml_peaks[i] = value if current is None else max(current, value)

    def stop(self) -> DeviceMemoryReport:
        """Read the allocator peaks and return all three peaks."""
        counters = self._sampler.counters
        return DeviceMemoryReport(
            peak_allocated=_peak(self._sampler.peak_allocated_bytes(), counters["allocated"], "allocator peak"),
            peak_reserved=_peak(self._sampler.peak_reserved_bytes(), counters["reserved"], "allocator reserve"),
            nvml_peak_used=_peak(list(self._nvml_peaks), f"{counters['nvml_used']}, sampled max", "NVML used"),
        )
