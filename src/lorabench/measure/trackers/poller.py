"""A background thread that calls a sampling function at a fixed interval (never faster than 100 ms)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lorabench.errors import MeasurementError
from lorabench.measure.trackers.clock import Clock

__all__ = ["MIN_INTERVAL_S", "Poller"]

MIN_INTERVAL_S = 0.1
"""Polling NVML faster than ~50 ms returns errors or zeros on some drivers; 100 ms leaves a margin."""


class Poller:
    """Calls ``sample(t)`` once at :meth:`start`, every ``interval_s`` in a daemon thread, and once at :meth:`stop`.

    The first and last samples are taken in the caller's thread, so a run of any length has at least two, at its
    very start and end. An exception raised by ``sample`` in the thread ends the polling and is raised again, as a
    :class:`~lorabench.errors.MeasurementError`, by :meth:`stop`.

    Args:
        sample: Takes the time of the sample (from ``clock``), reads the devices and keeps what it needs.
        interval_s: Seconds between samples; at least :data:`MIN_INTERVAL_S`.
        clock: A monotonic clock in seconds.
    """

    def __init__(self, sample: Callable[[float], None], *, interval_s: float = 0.1, clock: Clock = time.perf_counter):
        if interval_s < MIN_INTERVAL_S:
            raise MeasurementError(f"poll interval must be >= {MIN_INTERVAL_S} s (got {interval_s})")
        self._sample = sample
        self._interval_s = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.samples = 0

    def _take(self) -> None:
        self._sample(self._clock())
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._take()
            except BaseException as exc:  # reported by stop(); a dead poller must not pass silently
                self._error = exc
                return

    def start(self) -> None:
        """Take the first sample and start the thread.

        Raises:
            MeasurementError: The poller was already started.
        """
        if self._thread is not None:
            raise MeasurementError("the poller was already started")
        self._take()
        self._thread = threading.Thread(target=self._run, name="lorabench-device-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and take the last sample.

        Raises:
            MeasurementError: The poller was not running, or a sample failed in the thread.
        """
        if self._thread is None or self._stop.is_set():
            raise MeasurementError("the poller is not running")
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise MeasurementError(f"device sampling failed: {self._error!r}") from self._error
        self._take()
