from __future__ import annotations

import pytest

from lorabench.errors import MeasurementError
from lorabench.measure.trackers import StepClock

from .fakes import FakeClock, SyncCounter


def test_steps_wall_and_warmup() -> None:
    # start 0; step0 1->3; step1 4->5; step2 6->10; stop 12
    clock = StepClock(warmup_steps=1, clock=FakeClock([0, 1, 3, 4, 5, 6, 10, 12]))
    clock.start()
    for _ in range(3):
        clock.step_begin()
        clock.step_end()
    assert clock.stop() == 12
    assert clock.wall_time_s == 12
    assert clock.step_times_s == [2, 1, 4]
    assert clock.counted_step_times_s == [1, 4]  # warm-up left out of rates, not out of the total


def test_sync_runs_before_every_reading() -> None:
    sync, fake = SyncCounter(), FakeClock()
    clock = StepClock(clock=fake, sync=sync)
    clock.start()
    clock.step_begin()
    clock.step_end()
    clock.stop()
    assert sync.calls == fake.readings == 4


def test_wall_time_unknown_until_stopped() -> None:
    clock = StepClock(clock=FakeClock())
    assert clock.wall_time_s is None
    clock.start()
    assert clock.running and clock.wall_time_s is None


@pytest.mark.parametrize(
    "calls",
    [
        ["step_begin"],
        ["start", "step_end"],
        ["start", "step_begin", "step_begin"],
        ["start", "step_begin", "stop"],
        ["start", "stop", "stop"],
        ["start", "start"],
        ["stop"],
    ],
)
def test_misuse_is_a_measurement_error(calls: list[str]) -> None:
    clock = StepClock(clock=FakeClock())
    with pytest.raises(MeasurementError):
        for name in calls:
            getattr(clock, name)()


def test_clock_going_backwards_is_refused() -> None:
    clock = StepClock(clock=FakeClock([0, 5, 4]))
    clock.start()
    clock.step_begin()
    with pytest.raises(MeasurementError, match="backwards"):
        clock.step_end()


def test_negative_warmup_is_refused() -> None:
    with pytest.raises(MeasurementError):
        StepClock(warmup_steps=-1)
