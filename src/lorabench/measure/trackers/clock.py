"""Wall clock and per-step times, MLPerf-style: started first, never paused, synchronised at every boundary."""

from __future__ import annotations

import time
from collections.abc import Callable

from lorabench.errors import MeasurementError

__all__ = ["Clock", "StepClock", "no_sync"]

Clock = Callable[[], float]
"""A monotonic clock in seconds (``time.perf_counter`` in production; a fake in tests)."""


def no_sync() -> None:
    """Synchronise nothing: the default on CPU, where work is done when the call returns."""


class StepClock:
    """The total wall clock of a run and the duration of each training step.

    The total clock starts with :meth:`start` (call it before anything else: before data is touched or a model is
    built) and stops with :meth:`stop`; it is never paused. A step lasts from :meth:`step_begin` to
    :meth:`step_end`, so a loop that wants data loading inside its step times calls ``step_begin`` before it fetches
    the batch. The first ``warmup_steps`` steps count in the total but not in :attr:`counted_step_times_s`, the steps
    throughput is computed over. CUDA work is asynchronous, so ``sync`` (``torch.cuda.synchronize`` when CUDA is in
    use) runs before every clock reading.

    Args:
        warmup_steps: How many first steps are left out of throughput.
        clock: A monotonic clock in seconds.
        sync: Waits for queued device work before each reading.
    """

    def __init__(self, warmup_steps: int = 0, *, clock: Clock = time.perf_counter, sync: Callable[[], None] = no_sync):
        if warmup_steps < 0:
            raise MeasurementError(f"warmup_steps must be >= 0 (got {warmup_steps})")
        self.warmup_steps = warmup_steps
        self._clock = clock
        self._sync = sync
        self._t0: float | None = None
        self._t1: float | None = None
        self._step_t0: float | None = None
        self._steps: list[float] = []

    def _now(self) -> float:
        self._sync()
        return self._clock()

    @property
    def running(self) -> bool:
        """Whether the clock has started and not yet stopped."""
        return self._t0 is not None and self._t1 is None

    def start(self) -> None:
        """Start the total wall clock.

        Raises:
            MeasurementError: The clock was already started.
        """
        if self._t0 is not None:
            raise MeasurementError("the step clock was already started")
        self._t0 = self._now()

    def step_begin(self) -> None:
        """Mark the beginning of a step.

        Raises:
            MeasurementError: The clock is not running, or the previous step has not ended.
        """
        if not self.running:
            raise MeasurementError("step_begin() before start() or after stop()")
        if self._step_t0 is not None:
            raise MeasurementError(f"step_begin() twice: step {len(self._steps)} has not ended")
        self._step_t0 = self._now()

    def step_end(self) -> float:
        """Mark the end of the current step.

        Returns:
            The step's duration in seconds.

        Raises:
            MeasurementError: No step is in progress, or the clock went backwards.
        """
        if self._step_t0 is None:
            raise MeasurementError("step_end() without step_begin()")
        duration = self._now() - self._step_t0
        self._step_t0 = None
        if duration < 0:
            raise MeasurementError(f"the clock went backwards during step {len(self._steps)} ({duration} s)")
        self._steps.append(duration)
        return duration

    def stop(self) -> float:
        """Stop the total wall clock.

        Returns:
            The total wall time in seconds, warm-up included.

        Raises:
            MeasurementError: The clock is not running, or a step has not ended.
        """
        if self._t0 is None or self._t1 is not None:
            raise MeasurementError("stop() before start() or twice")
        if self._step_t0 is not None:
            raise MeasurementError(f"stop() inside step {len(self._steps)}: call step_end() first")
        self._t1 = self._now()
        return self._t1 - self._t0

    @property
    def wall_time_s(self) -> float | None:
        """Total wall time from start to stop; None until stopped."""
        if self._t0 is None or self._t1 is None:
            return None
        return self._t1 - self._t0

    @property
    def step_times_s(self) -> list[float]:
        """Every step's duration, warm-up steps included, in order."""
        return list(self._steps)

    @property
    def counted_step_times_s(self) -> list[float]:
        """The durations of the steps after the warm-up: the ones throughput is computed over."""
        return self._steps[self.warmup_steps :]
