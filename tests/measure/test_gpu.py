"""Real CUDA and NVML readings; skipped without a CUDA GPU."""

from __future__ import annotations

import pytest

from lorabench.measure import CudaNvmlSampler, ResourceTracker
from lorabench.measure.trackers import METHOD_COUNTER, METHOD_POWER, DeviceMemoryMeter

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

MIB = 2**20


def test_allocator_peaks_and_nvml_on_a_known_tensor() -> None:
    sampler = CudaNvmlSampler([0])
    try:
        torch.ones(1, device="cuda:0")  # the CUDA context exists before the peaks are reset
        meter = DeviceMemoryMeter(sampler)
        meter.start()
        meter.sample(0.0)
        block = torch.empty(256 * MIB, dtype=torch.uint8, device="cuda:0")
        torch.cuda.synchronize(0)
        meter.sample(1.0)
        report = meter.stop()
        del block
    finally:
        sampler.close()
    allocated, reserved = report.peak_allocated.value, report.peak_reserved.value
    assert allocated is not None and reserved is not None
    assert 256 * MIB <= allocated < 256 * MIB + 8 * MIB
    assert reserved >= allocated
    assert report.peak_allocated.counter == "torch.cuda.max_memory_allocated"
    if sampler.nvml_unavailable is None:
        used = report.nvml_peak_used.value
        assert used is not None and used >= reserved  # NVML adds the context and everything outside PyTorch


def test_real_cuda_run_of_a_tiny_model() -> None:
    torch.manual_seed(0)
    tracker = ResourceTracker(warmup_steps=1, devices=[0])
    tracker.start()
    model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024)).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(5):
        tracker.step_begin()
        for _ in range(20):  # enough work for the energy counter to move
            loss = model(torch.randn(512, 1024, device="cuda")).square().mean()
            loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tracker.step_end(padded_tokens=512, nonpad_tokens=500, samples=4)
    metrics = tracker.stop()
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert metrics["device"] == "cuda" and metrics["devices"] == [0]
    assert metrics["counters"]["wall_time_s"] == "time.perf_counter after torch.cuda.synchronize"
    assert metrics["peak_allocated_bytes"] >= 4 * param_bytes
    assert metrics["peak_reserved_bytes"] >= metrics["peak_allocated_bytes"]
    assert metrics["peak_allocated_bytes_per_device"] == [metrics["peak_allocated_bytes"]]
    assert metrics["tokens_per_s_nonpad"] > 0
    if "nvml_peak_used_bytes" not in metrics["unavailable"]:
        assert metrics["nvml_peak_used_bytes"] >= metrics["peak_reserved_bytes"]
        assert metrics["energy_j"] is not None and metrics["energy_j"] > 0
        assert metrics["energy_method"] in (METHOD_COUNTER, METHOD_POWER)
