from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.measure.trackers import DeviceMemoryMeter, FakeSampler, Measured, PeakRss


def test_device_memory_peaks_and_counters() -> None:
    sampler = FakeSampler(
        devices=(0, 1),
        peak_allocated=[[100, 300]],
        peak_reserved=[[200, 400]],
        nvml_used=[[1000, 2000], [5000, 2500], [4000, 2200]],
    )
    meter = DeviceMemoryMeter(sampler)
    meter.start()
    for t in (0.0, 0.1, 0.2):
        meter.sample(t)
    report = meter.stop()
    assert sampler.resets == 1
    assert report.peak_allocated == Measured(300, "bytes", "fake:allocated", per_device=(100, 300))
    assert report.peak_reserved.value == 400 and report.peak_reserved.per_device == (200, 400)
    assert report.nvml_peak_used.value == 5000 and report.nvml_peak_used.per_device == (5000, 2500)
    assert report.nvml_peak_used.counter == "fake:nvml_used, sampled max"


def test_a_device_without_readings_makes_the_max_unknown_not_zero() -> None:
    sampler = FakeSampler(devices=(0, 1), peak_allocated=[[100, None]], nvml_used=[[None, None]])
    meter = DeviceMemoryMeter(sampler)
    meter.start()
    meter.sample(0.0)
    report = meter.stop()
    assert report.peak_allocated.value is None and report.peak_allocated.counter is None
    assert report.peak_allocated.per_device == (100, None)
    assert "position(s) [1]" in (report.peak_allocated.reason or "")
    assert report.nvml_peak_used.value is None and report.peak_reserved.value is None


def test_measured_invariants() -> None:
    with pytest.raises(ValueError):
        Measured(None, "bytes", None)  # unknown needs a reason
    with pytest.raises(ValueError):
        Measured(5, "bytes", None)  # known needs a counter
    assert Measured.unknown("J", "no GPU").value is None


def _status(tmp_path: Path, hwm_kb: str) -> Path:
    path = tmp_path / "status"
    path.write_text(f"Name:\tpython\nVmPeak:\t 999 kB\nVmHWM:\t  {hwm_kb} kB\nVmRSS:\t 10 kB\n")
    return path


def test_peak_rss_from_vmhwm_reset_at_start(tmp_path: Path) -> None:
    rss = PeakRss(status_path=_status(tmp_path, "2048"), clear_refs_path=tmp_path / "clear_refs")
    rss.start()
    assert (tmp_path / "clear_refs").read_text() == "5"
    figure = rss.read()
    assert figure.value == 2048 * 1024  # kB in /proc are KiB
    assert figure.counter is not None and "VmHWM" in figure.counter and "since start" in figure.counter
    assert figure.counter.startswith("process RSS")


def test_peak_rss_without_reset_says_process_lifetime(tmp_path: Path) -> None:
    rss = PeakRss(status_path=_status(tmp_path, "4"), clear_refs_path=tmp_path / "missing" / "clear_refs")
    rss.start()
    assert rss.read().counter == "process RSS: /proc/self/status VmHWM, process lifetime"


def test_peak_rss_falls_back_to_getrusage(tmp_path: Path) -> None:
    pytest.importorskip("resource")
    rss = PeakRss(status_path=tmp_path / "absent", clear_refs_path=tmp_path / "absent2")
    figure = rss.read()
    assert figure.counter is not None and "ru_maxrss" in figure.counter
    assert isinstance(figure.value, int) and figure.value > 1024 * 1024  # a Python process is over 1 MiB


def test_real_peak_rss_is_positive() -> None:
    rss = PeakRss()
    rss.start()
    block = bytearray(32 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    figure = rss.read()
    assert isinstance(figure.value, int) and figure.value >= 32 * 1024 * 1024
    del block
