"""Describe the machine and software a measurement was taken on."""

from __future__ import annotations

import importlib
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch

__all__ = ["describe_environment"]

_PACKAGES = ("lorabench", "torch", "transformers", "peft", "bitsandbytes", "accelerate")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _driver_version() -> str | None:
    try:
        pynvml: Any = importlib.import_module("pynvml")  # provided by nvidia-ml-py
        pynvml.nvmlInit()
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML library, no driver, no GPU: unknown, never made up
        return None
    return driver.decode() if isinstance(driver, bytes) else str(driver)


def describe_environment(device: torch.device) -> dict[str, Any]:
    """Python and library versions, the device(s) used, driver, CPU; unknown values are None."""
    packages: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    cuda = device.type == "cuda"
    return {
        "python": platform.python_version(),
        "packages": packages,
        "device_type": device.type,
        "device_names": [torch.cuda.get_device_name(device)] if cuda else [_cpu_name()],
        "cuda_version": torch.version.cuda if cuda else None,
        "driver_version": _driver_version() if cuda else None,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
