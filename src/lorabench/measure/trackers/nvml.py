"""NVML (the NVIDIA driver's management library, through ``pynvml`` from nvidia-ml-py): loading and device lookup.

NVML numbers devices by PCI bus; CUDA, by default, fastest first, and only those in ``CUDA_VISIBLE_DEVICES``. The
run's CUDA devices are therefore matched to NVML devices by UUID when torch reports one, and otherwise through
``CUDA_VISIBLE_DEVICES`` (integer entries are taken as NVML indices, which holds with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``
or on a machine of one GPU model). Machine-wide figures of other devices are never read.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["load_nvml", "nvml_handles", "visible_devices"]


def load_nvml() -> tuple[Any | None, str | None]:
    """Import ``pynvml`` and initialise NVML.

    Returns:
        ``(module, None)``, or ``(None, reason)`` when the binding is missing or the driver cannot be reached.
    """
    try:
        nvml = importlib.import_module("pynvml")
    except ImportError:
        return None, "pynvml (nvidia-ml-py) is not installed"
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return None, f"NVML cannot start ({exc})"
    return nvml, None


def visible_devices(environ: Mapping[str, str]) -> list[str] | None:
    """The entries of ``CUDA_VISIBLE_DEVICES``, as CUDA reads them; None when it is unset.

    CUDA stops at the first entry that is neither an index nor a ``GPU-``/``MIG-`` UUID (``-1`` hides every device).
    """
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    entries: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if entry.isdigit() or entry.startswith(("GPU-", "MIG-")):
            entries.append(entry)
        else:
            break
    return entries


def _normalise_uuid(uuid: str) -> str:
    text = uuid.strip()
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def _by_uuid(nvml: Any, uuid: str) -> Any | None:
    try:
        return nvml.nvmlDeviceGetHandleByUUID(uuid)
    except nvml.NVMLError:
        pass
    # CUDA_VISIBLE_DEVICES accepts a unique UUID prefix; NVML wants the whole UUID.
    try:
        count = int(nvml.nvmlDeviceGetCount())
        matches = []
        for index in range(count):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            full = nvml.nvmlDeviceGetUUID(handle)
            full = full.decode() if isinstance(full, bytes) else str(full)
            if full.startswith(uuid):
                matches.append(handle)
    except nvml.NVMLError:
        return None
    return matches[0] if len(matches) == 1 else None


def _by_index(nvml: Any, index: int) -> Any | None:
    try:
        return nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError:
        return None


def nvml_handles(
    nvml: Any, cuda_devices: Sequence[int], uuids: Sequence[str | None], environ: Mapping[str, str]
) -> list[Any | None]:
    """NVML handles of the run's CUDA devices, in the same order; None where a device cannot be matched.

    Args:
        nvml: The ``pynvml`` module (or a fake with the same functions and ``NVMLError``).
        cuda_devices: CUDA device indices, as the process sees them.
        uuids: Each device's UUID as torch reports it (``torch.cuda.get_device_properties(i).uuid``), or None.
        environ: The environment holding ``CUDA_VISIBLE_DEVICES``.
    """
    if len(uuids) != len(cuda_devices):
        raise ValueError(f"{len(cuda_devices)} devices but {len(uuids)} UUIDs")
    visible = visible_devices(environ)
    handles: list[Any | None] = []
    for device, uuid in zip(cuda_devices, uuids, strict=True):
        handle = _by_uuid(nvml, _normalise_uuid(uuid)) if uuid else None
        if handle is None:
            if visible is None:
                handle = _by_index(nvml, device)
            elif 0 <= device < len(visible):
                entry = visible[device]
                handle = _by_index(nvml, int(entry)) if entry.isdigit() else _by_uuid(nvml, entry)
        handles.append(handle)
    return handles
