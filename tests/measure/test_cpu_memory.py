from __future__ import annotations

from typing import Any

import pytest

from lorabench.errors import MeasurementError
from lorabench.measure.trackers.cpu_memory import (
    CPU_MEMORY_COUNTER,
    CPU_MEMORY_COUNTER_NEW_SHAPES,
    CpuTensorMemory,
    NewShapeCpuMemory,
    peak_live_bytes,
)

torch = pytest.importorskip("torch")

MB = 1_000_000
TOLERANCE = 64 * 1024  # stray small allocations (scalars, bookkeeping) may join the known tensors


def test_peak_live_bytes_orders_by_time() -> None:
    assert peak_live_bytes([]) == (0, 0)
    events = [(3, -10), (1, 10), (4, 4), (2, 5), (5, -5)]  # +10, +5, -10, +4, -5
    assert peak_live_bytes(events) == (15, 4)


def test_known_tensors_give_the_expected_peak() -> None:
    with CpuTensorMemory() as tracker:
        big = torch.empty(10 * MB, dtype=torch.uint8)
        big.fill_(1)
        del big
        small = torch.empty(4 * MB, dtype=torch.uint8)
    assert tracker.result is not None
    assert tracker.result.counter == CPU_MEMORY_COUNTER and tracker.result.unit == "bytes"
    assert tracker.result.value == pytest.approx(10 * MB, abs=TOLERANCE)
    assert tracker.final_live_bytes == pytest.approx(4 * MB, abs=TOLERANCE)
    del small


def test_tensors_live_together_add_up() -> None:
    with CpuTensorMemory() as tracker:
        a = torch.zeros(10 * MB, dtype=torch.uint8)
        b = torch.zeros(MB, dtype=torch.float32)  # 4 MB
        del a, b
    assert tracker.result is not None
    assert tracker.result.value == pytest.approx(14 * MB, abs=TOLERANCE)
    assert tracker.final_live_bytes == pytest.approx(0, abs=TOLERANCE)


def test_training_step_peak_covers_weights_grads_and_optimizer_state() -> None:
    torch.manual_seed(0)
    with CpuTensorMemory() as tracker:
        model = torch.nn.Linear(512, 512)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loss = model(torch.randn(8, 512)).square().mean()
        loss.backward()
        optimizer.step()
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    grad_bytes = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    state_bytes = sum(
        v.numel() * v.element_size() for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)
    )
    assert grad_bytes == param_bytes and state_bytes >= 2 * param_bytes  # exp_avg and exp_avg_sq
    assert tracker.result is not None and tracker.result.value is not None
    assert tracker.result.value >= param_bytes + grad_bytes + state_bytes


def test_refuses_to_run_under_another_profiler() -> None:
    with torch.autograd.profiler.profile(), pytest.raises(MeasurementError, match="already running"):
        CpuTensorMemory().start()


def test_misuse() -> None:
    tracker = CpuTensorMemory()
    with pytest.raises(MeasurementError):
        tracker.stop()
    tracker.start()
    with pytest.raises(MeasurementError):
        tracker.start()
    tracker.stop()
    with pytest.raises(MeasurementError):
        tracker.stop()


def _train(tracker: Any, shapes: list[int], key: bool) -> None:
    """A real training loop over batches of the given row counts (peak grows with the batch)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 256))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for rows in shapes:
        tracker.step_begin(rows if key else None)
        loss = model(torch.randn(rows, 256)).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        del loss


@pytest.mark.parametrize("shapes", [[64] * 8, [64, 64, 64, 512, 512, 512, 64, 64], [64, 64, 512, 64, 1024, 64]])
def test_new_shape_windows_give_the_full_profile_peak(shapes: list[int]) -> None:
    full = NewShapeCpuMemory()
    full.start()
    _train(full, shapes, key=False)
    reference = full.stop()
    windowed = NewShapeCpuMemory()
    windowed.start()
    _train(windowed, shapes, key=True)
    result = windowed.stop()
    assert reference.counter == CPU_MEMORY_COUNTER and full.profiled_steps == len(shapes)
    assert result.counter == CPU_MEMORY_COUNTER_NEW_SHAPES.format(k=2)
    assert windowed.profiled_steps == sum(min(shapes.count(s), 2) for s in set(shapes)) < len(shapes)
    assert reference.value is not None and result.value is not None
    assert result.value == pytest.approx(reference.value, rel=0.01)


def test_new_shape_counter_rejects_misuse() -> None:
    tracker = NewShapeCpuMemory()
    with pytest.raises(MeasurementError):
        tracker.step_begin(1)
    with pytest.raises(MeasurementError):
        NewShapeCpuMemory(steps_per_shape=0)
    tracker.start()
    tracker.stop()
    with pytest.raises(MeasurementError):
        tracker.stop()
