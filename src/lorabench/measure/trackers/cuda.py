"""The real device sampler: torch's CUDA allocator statistics and NVML's memory, energy and power counters."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from lorabench.errors import MeasurementError
from lorabench.measure.trackers.nvml import load_nvml, nvml_handles

__all__ = ["CudaNvmlSampler"]


class CudaNvmlSampler:
    """A :class:`~lorabench.measure.trackers.sampler.DeviceSampler` over real CUDA devices.

    Allocator peaks come from ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` per device (reset with
    ``torch.cuda.reset_peak_memory_stats``). NVML readings come from the NVML devices matched to the run's CUDA
    devices (see :mod:`lorabench.measure.trackers.nvml`); without NVML, or for a device NVML cannot match, they are
    None. NVML's used memory covers the whole device: the CUDA context, libraries' workspaces, memory allocated
    outside PyTorch, and other processes on the same GPU.

    Args:
        devices: CUDA device indices this process uses (in DDP, its own ``local_rank`` only); default: every visible
            device.
        environ: Where ``CUDA_VISIBLE_DEVICES`` is read.

    Raises:
        MeasurementError: CUDA is not available, or a device index is out of range.
    """

    def __init__(self, devices: Sequence[int] | None = None, environ: Mapping[str, str] | None = None) -> None:
        import torch

        if not torch.cuda.is_available():
            raise MeasurementError("CudaNvmlSampler needs CUDA, and torch.cuda.is_available() is False")
        count = torch.cuda.device_count()
        self._devices = list(range(count)) if devices is None else list(devices)
        bad = [d for d in self._devices if not 0 <= d < count]
        if bad or not self._devices:
            raise MeasurementError(f"CUDA devices {self._devices} are not all among the {count} visible ones")
        self._nvml, self.nvml_unavailable = load_nvml()
        self._handles: list[Any | None] = [None] * len(self._devices)
        if self._nvml is not None:
            uuids = [_torch_uuid(d) for d in self._devices]
            self._handles = nvml_handles(self._nvml, self._devices, uuids, os.environ if environ is None else environ)
        self._memory_v2 = self._probe_memory_v2()
        memory_api = "nvmlDeviceGetMemoryInfo_v2" if self._memory_v2 else "nvmlDeviceGetMemoryInfo"
        self._counters = {
            "allocated": "torch.cuda.max_memory_allocated",
            "reserved": "torch.cuda.max_memory_reserved",
            "nvml_used": f"nvml.{memory_api}.used (whole device)",
            "energy": "nvml.nvmlDeviceGetTotalEnergyConsumption",
            "power": "nvml.nvmlDeviceGetPowerUsage",
        }

    def _probe_memory_v2(self) -> bool:
        nvml = self._nvml
        if nvml is None or not hasattr(nvml, "nvmlMemory_v2"):
            return False
        handles = [h for h in self._handles if h is not None]
        try:
            for handle in handles[:1]:
                nvml.nvmlDeviceGetMemoryInfo(handle, nvml.nvmlMemory_v2)
        except nvml.NVMLError:
            return False
        return True

    @property
    def devices(self) -> Sequence[int]:
        """The CUDA device indices read, in order."""
        return list(self._devices)

    @property
    def counters(self) -> Mapping[str, str]:
        """The counter behind each reading."""
        return dict(self._counters)

    def reset_peaks(self) -> None:
        """``torch.cuda.reset_peak_memory_stats`` on every device."""
        import torch

        for device in self._devices:
            torch.cuda.reset_peak_memory_stats(device)

    def peak_allocated_bytes(self) -> list[int | None]:
        """``torch.cuda.max_memory_allocated`` per device."""
        import torch

        return [int(torch.cuda.max_memory_allocated(d)) for d in self._devices]

    def peak_reserved_bytes(self) -> list[int | None]:
        """``torch.cuda.max_memory_reserved`` per device."""
        import torch

        return [int(torch.cuda.max_memory_reserved(d)) for d in self._devices]

    def _read(self, name: str, *args: Any) -> list[Any | None]:
        nvml = self._nvml
        if nvml is None:
            return [None] * len(self._devices)
        values: list[Any | None] = []
        for handle in self._handles:
            try:
                values.append(None if handle is None else getattr(nvml, name)(handle, *args))
            except nvml.NVMLError:
                values.append(None)
        return values

    def nvml_used_bytes(self) -> list[int | None]:
        """NVML's used bytes per device (the v2 figure, which leaves out driver-reserved memory, when available)."""
        if self._memory_v2 and self._nvml is not None:
            infos = self._read("nvmlDeviceGetMemoryInfo", self._nvml.nvmlMemory_v2)
        else:
            infos = self._read("nvmlDeviceGetMemoryInfo")
        return [None if info is None else int(info.used) for info in infos]

    def total_energy_mj(self) -> list[int | None]:
        """NVML's cumulative energy counter per device, in millijoules (Volta and newer)."""
        return [None if v is None else int(v) for v in self._read("nvmlDeviceGetTotalEnergyConsumption")]

    def power_mw(self) -> list[int | None]:
        """NVML's power draw per device, in milliwatts."""
        return [None if v is None else int(v) for v in self._read("nvmlDeviceGetPowerUsage")]

    def close(self) -> None:
        """Shut NVML down (it counts initialisations, so other users in the process are unaffected)."""
        if self._nvml is not None:
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()
            self._nvml = None


def _torch_uuid(device: int) -> str | None:
    import torch

    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    return None if uuid is None else str(uuid)
