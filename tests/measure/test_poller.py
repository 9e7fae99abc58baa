from __future__ import annotations

import pytest

from lorabench.errors import MeasurementError
from lorabench.measure.trackers import MIN_INTERVAL_S, Poller

from .fakes import FakeClock


def test_samples_at_start_and_stop_in_the_callers_thread() -> None:
    times: list[float] = []
    poller = Poller(times.append, interval_s=600, clock=FakeClock([1.0, 2.0]))
    poller.start()
    poller.stop()
    assert times == [1.0, 2.0]
    assert poller.samples == 2


def test_interval_below_100_ms_is_refused() -> None:
    assert MIN_INTERVAL_S == 0.1
    with pytest.raises(MeasurementError):
        Poller(lambda t: None, interval_s=0.05)


def test_misuse() -> None:
    poller = Poller(lambda t: None, interval_s=600)
    with pytest.raises(MeasurementError):
        poller.stop()
    poller.start()
    with pytest.raises(MeasurementError):
        poller.start()
    poller.stop()
    with pytest.raises(MeasurementError):
        poller.stop()


def test_a_failing_sample_in_the_thread_surfaces_at_stop() -> None:
    calls = []

    def sample(t: float) -> None:
        calls.append(t)
        if len(calls) == 2:  # the first threaded sample
            raise RuntimeError("driver went away")

    poller = Poller(sample, interval_s=MIN_INTERVAL_S)
    poller.start()
    assert poller._thread is not None
    poller._thread.join(timeout=5)  # the thread ends after its failed sample
    with pytest.raises(MeasurementError, match="driver went away"):
        poller.stop()
