"""GPU hardware catalog: datasheet facts (memory, dense bf16 TFLOPS, bandwidth, power) and name resolution."""

from lorabench.hardware.catalog import GpuSpec, gpu_catalog, resolve_gpu

__all__ = ["GpuSpec", "gpu_catalog", "resolve_gpu"]
