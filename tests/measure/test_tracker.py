from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from lorabench.errors import MeasurementError
from lorabench.measure import FakeSampler, RankCounts, ResourceTracker, combine_ranks
from lorabench.measure.trackers import CPU_MEMORY_COUNTER, METHOD_COUNTER, PeakRss

from .fakes import FakeClock, SyncCounter

FIGURES = (
    "peak_allocated_bytes",
    "peak_reserved_bytes",
    "nvml_peak_used_bytes",
    "peak_rss_bytes",
    "energy_j",
)


def _fake_rss(tmp_path: Path) -> PeakRss:
    status = tmp_path / "status"
    status.write_text("VmHWM:\t  1000 kB\n")
    return PeakRss(status_path=status, clear_refs_path=tmp_path / "clear_refs")


def _drive(tracker: ResourceTracker, steps: int) -> dict[str, Any]:
    tracker.start()
    for _ in range(steps):
        tracker.step_begin()
        tracker.step_end(padded_tokens=64, nonpad_tokens=48, samples=2)
    return tracker.stop()


def _assert_consistent(metrics: dict[str, Any]) -> None:
    json.dumps(metrics, allow_nan=False)  # a plain dict, ready for a record
    for name in FIGURES:
        value, counter = metrics[name], metrics["counters"][name]
        assert (value is None) == (counter is None), name
        assert (value is None) == (name in metrics["unavailable"]), name
        assert value != 0 or counter is not None, f"{name}: 0 must never stand for unknown"


def test_fake_cuda_path(tmp_path: Path) -> None:
    sampler = FakeSampler(
        devices=(0, 1),
        peak_allocated=[[10, 30]],
        peak_reserved=[[20, 40]],
        nvml_used=[[100, 100], [500, 300]],
        energy_mj=[[0, 0], [3_000, 5_000]],
    )
    sync = SyncCounter()
    clock = FakeClock(step=1.0)
    tracker = ResourceTracker(
        warmup_steps=1, world_size=2, sampler=sampler, clock=clock, sync=sync, rss=_fake_rss(tmp_path)
    )
    tracker.start()
    for _ in range(4):
        tracker.step_begin()
        tracker.step_end(padded_tokens=100, nonpad_tokens=80, samples=4)
    metrics = tracker.stop()
    _assert_consistent(metrics)
    assert metrics["device"] == "cuda" and metrics["devices"] == [0, 1]
    assert metrics["steps"] == 4 and metrics["warmup_steps"] == 1 and metrics["counted_steps"] == 3
    assert len(metrics["step_times_s"]) == 4
    counted = sum(metrics["step_times_s"][1:])
    assert metrics["counted_time_s"] == pytest.approx(counted)
    assert metrics["wall_time_s"] > sum(metrics["step_times_s"])  # never paused; gaps and set-up included
    # Global rates: this rank's counted tokens x world size / this rank's counted time.
    assert metrics["tokens_per_s_padded"] == pytest.approx(300 * 2 / counted)
    assert metrics["tokens_per_s_nonpad"] == pytest.approx(240 * 2 / counted)
    assert metrics["samples_per_s"] == pytest.approx(12 * 2 / counted)
    assert metrics["peak_allocated_bytes"] == 30 and metrics["peak_allocated_bytes_per_device"] == [10, 30]
    assert metrics["peak_reserved_bytes"] == 40
    assert metrics["nvml_peak_used_bytes"] == 500 and metrics["nvml_peak_used_bytes_per_device"] == [500, 300]
    assert metrics["energy_j"] == pytest.approx(8.0) and metrics["energy_j_per_device"] == [3.0, 5.0]
    assert metrics["energy_method"] == METHOD_COUNTER
    assert metrics["peak_rss_bytes"] == 1000 * 1024
    assert metrics["counters"]["peak_allocated_bytes"] == "fake:allocated"
    assert metrics["counters"]["wall_time_s"].endswith("FakeClock after tests.measure.fakes.SyncCounter")
    assert sampler.resets == 1 and sync.calls == 2 + 2 * 4  # start, stop, and both ends of every step
    assert RankCounts(**metrics["rank_counts"]).counted_steps == 3


def test_ranks_combine_exactly(tmp_path: Path) -> None:
    results = []
    for rank in range(2):
        tracker = ResourceTracker(
            world_size=2, rank=rank, sampler=FakeSampler(), clock=FakeClock(step=0.5), rss=_fake_rss(tmp_path)
        )
        results.append(_drive(tracker, steps=3))
    combined = combine_ranks([RankCounts(**r["rank_counts"]) for r in results])
    assert combined.world_size == 2
    assert combined.tokens_per_s_padded == pytest.approx(2 * 3 * 64 / results[0]["counted_time_s"])


def test_unknowns_are_none_with_reasons(tmp_path: Path) -> None:
    metrics = _drive(ResourceTracker(sampler=FakeSampler(), clock=FakeClock(), rss=_fake_rss(tmp_path)), steps=1)
    _assert_consistent(metrics)
    for name in ("peak_allocated_bytes", "nvml_peak_used_bytes", "energy_j"):
        assert metrics[name] is None and metrics["unavailable"][name]
    assert metrics["energy_method"] is None


def test_disabled_keeps_only_the_wall_clock(tmp_path: Path) -> None:
    sync, clock = SyncCounter(), FakeClock()
    tracker = ResourceTracker(trackers_enabled=False, sampler=FakeSampler(), clock=clock, sync=sync)
    metrics = _drive(tracker, steps=3)
    _assert_consistent(metrics)
    assert metrics["trackers_enabled"] is False and metrics["wall_time_s"] == 1.0
    assert clock.readings == 2 and sync.calls == 2  # no per-step clock or sync
    assert metrics["step_times_s"] is None and metrics["tokens_per_s_nonpad"] is None
    assert metrics["steps"] == 3 and metrics["nonpad_tokens"] == 3 * 48
    assert all(metrics[name] is None for name in FIGURES)


def test_step_misuse(tmp_path: Path) -> None:
    for enabled in (True, False):
        tracker = ResourceTracker(
            trackers_enabled=enabled, sampler=FakeSampler(), clock=FakeClock(), rss=_fake_rss(tmp_path)
        )
        with pytest.raises(MeasurementError):
            tracker.step_begin()
        tracker.start()
        with pytest.raises(MeasurementError):
            tracker.step_end(1, 1, 1)
        tracker.step_begin()
        with pytest.raises(MeasurementError):
            tracker.step_begin()
        with pytest.raises(MeasurementError):
            tracker.step_end(1, 2, 1)  # more real tokens than positions


def test_bad_world_size_and_rank() -> None:
    with pytest.raises(MeasurementError):
        ResourceTracker(world_size=0, sampler=FakeSampler())
    with pytest.raises(MeasurementError):
        ResourceTracker(world_size=2, rank=2, sampler=FakeSampler())


def test_real_cpu_run_of_a_tiny_model() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this test exercises the CPU path")
    torch.manual_seed(0)
    tracker = ResourceTracker(warmup_steps=2)
    tracker.start()
    model = torch.nn.Sequential(torch.nn.Embedding(100, 32), torch.nn.Linear(32, 100))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(5):
        tracker.step_begin()
        ids = torch.randint(0, 100, (4, 16))
        mask = torch.ones(4, 16, dtype=torch.long)
        mask[:, 12:] = 0  # 4 padding positions per sample
        logits = model(ids)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, 100), ids.view(-1), reduction="none")
        (loss * mask.view(-1)).sum().div(mask.sum()).backward()
        optimizer.step()
        optimizer.zero_grad()
        tracker.step_end(padded_tokens=ids.numel(), nonpad_tokens=int(mask.sum()), samples=ids.shape[0])
    metrics = tracker.stop()
    _assert_consistent(metrics)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert metrics["device"] == "cpu" and metrics["steps"] == 5 and metrics["counted_steps"] == 3
    assert metrics["wall_time_s"] >= sum(metrics["step_times_s"]) > 0
    assert metrics["counters"]["wall_time_s"] == "time.perf_counter"
    assert math.isclose(metrics["tokens_per_s_nonpad"] / metrics["tokens_per_s_padded"], 48 / 64)
    assert metrics["samples_per_s"] > 0
    assert metrics["peak_allocated_bytes"] >= 4 * param_bytes  # weights, grads, exp_avg, exp_avg_sq
    assert metrics["counters"]["peak_allocated_bytes"] == CPU_MEMORY_COUNTER
    assert metrics["peak_rss_bytes"] >= metrics["peak_allocated_bytes"]
    assert metrics["counters"]["peak_rss_bytes"].startswith("process RSS")
    assert metrics["peak_reserved_bytes"] is None and metrics["nvml_peak_used_bytes"] is None
    assert metrics["energy_j"] is None and metrics["energy_method"] is None
    assert metrics["devices"] is None and metrics["energy_j_per_device"] is None


def test_invalid_counts_leave_the_step_open(tmp_path: Path) -> None:
    tracker = ResourceTracker(sampler=FakeSampler(), clock=FakeClock(), rss=_fake_rss(tmp_path))
    tracker.start()
    tracker.step_begin()
    with pytest.raises(MeasurementError):
        tracker.step_end(1, 2, 1)
    assert tracker.step_end(2, 1, 1) is not None
    assert tracker.stop()["steps"] == 1


def test_context_manager_stops_everything_on_error(tmp_path: Path) -> None:
    tracker = ResourceTracker(sampler=FakeSampler(), clock=FakeClock(), rss=_fake_rss(tmp_path))
    with pytest.raises(RuntimeError), tracker:
        tracker.step_begin()
        raise RuntimeError("out of memory")
    assert tracker.metrics is not None and tracker.metrics["steps"] == 1
