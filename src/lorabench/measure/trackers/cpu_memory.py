"""Peak tensor memory on CPU, from the PyTorch profiler's allocator events.

torch has no CPU counterpart of ``torch.cuda.max_memory_allocated``. With ``profile_memory=True`` the profiler
receives one event per allocation and per free from c10's CPU allocator (the one every CPU tensor, kernel temporaries
included, is allocated through), with its size in bytes and a nanosecond timestamp. Summing the events in time order
gives the bytes live at every moment; their maximum is the peak. Only memory allocated after :meth:`start` is seen:
frees of older blocks are dropped by the profiler, so start before the model is built to count its weights.

The profiler also records every operator, so the cost grows with the number of operators run: a few to a few
hundred training steps are fine, a long run is not. Only one profiler can run at a time in a process.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

from lorabench.errors import MeasurementError
from lorabench.measure.trackers.measured import Measured

__all__ = [
    "CPU_MEMORY_COUNTER",
    "CPU_MEMORY_COUNTER_NEW_SHAPES",
    "CpuTensorMemory",
    "NewShapeCpuMemory",
    "peak_live_bytes",
]

CPU_MEMORY_COUNTER = "torch.profiler(profile_memory=True): CPU allocator events since start, running peak"
CPU_MEMORY_COUNTER_NEW_SHAPES = (
    "cpu.profiler_peak_new_shapes: torch.profiler(profile_memory=True) CPU allocator events from start through "
    "the first {k} steps of each batch shape (later steps of a shape repeat them), running peak"
)


def peak_live_bytes(events: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """The peak and the final sum of live bytes from ``(timestamp_ns, signed_bytes)`` allocator events.

    Events are ordered by timestamp (a stable sort keeps the recorded order of ties); frees are negative.

    Returns:
        ``(peak, final)``: the highest running sum (0 at least: nothing allocated is 0 bytes, a real figure) and
        the sum after the last event (bytes allocated since the start and still live).
    """
    live = peak = 0
    for _, nbytes in sorted(events, key=lambda e: e[0]):
        live += nbytes
        peak = max(peak, live)
    return peak, live


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for a moment: Kineto prints ``USDT ... profiler_start/stop`` lines there.

    Python-level errors are unaffected (they are exceptions, printed later by whoever catches them).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2 (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class CpuTensorMemory:
    """Measures the peak bytes of CPU tensor memory allocated between :meth:`start` and :meth:`stop`.

    Usable as a context manager; the result is then in :attr:`result`.
    """

    def __init__(self) -> None:
        self._profile: Any | None = None
        self.result: Measured | None = None
        self.final_live_bytes: int | None = None
        self.events = 0

    def start(self) -> None:
        """Start the profiler with memory profiling.

        Raises:
            MeasurementError: Already started, or another profiler is running in this process.
        """
        import torch
        from torch._C._autograd import _profiler_enabled

        if self._profile is not None:
            raise MeasurementError("the CPU memory tracker was already started")
        if _profiler_enabled():
            # A second profiler would silently take over and leave the first one with no events.
            raise MeasurementError("cannot measure CPU memory: a PyTorch profiler is already running in this process")
        profile = torch.autograd.profiler.profile(use_cpu=True, profile_memory=True, record_shapes=False)
        try:
            with _native_stderr_silenced():
                profile.__enter__()
        except RuntimeError as exc:
            raise MeasurementError(f"cannot start the PyTorch profiler to measure CPU memory ({exc})") from None
        self._profile = profile

    def stop(self) -> Measured:
        """Stop the profiler and compute the peak from its memory events.

        Raises:
            MeasurementError: Not started, or stopped twice.
        """
        import torch

        profile = self._profile
        if profile is None or self.result is not None:
            raise MeasurementError("the CPU memory tracker is not running")
        with _native_stderr_silenced():
            profile.__exit__(None, None, None)
        results = profile.kineto_results
        if results is None:
            self.result = Measured.unknown("bytes", "the profiler returned no results")
            return self.result
        cpu = torch.profiler.DeviceType.CPU
        events = [
            (e.start_ns(), e.nbytes()) for e in results.events() if e.name() == "[memory]" and e.device_type() == cpu
        ]
        self.events = len(events)
        peak, self.final_live_bytes = peak_live_bytes(events)
        self.result = Measured(peak, "bytes", CPU_MEMORY_COUNTER)
        return self.result

    def __enter__(self) -> CpuTensorMemory:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._profile is not None and self.result is None:
            self.stop()


class NewShapeCpuMemory:
    """The CPU tensor-memory peak, profiling only the steps where a new peak can occur.

    A training step's allocations depend only on its batch shape once the optimizer state exists, so the
    profiler runs from :meth:`start` (set-up: weights, adapter) through the first ``steps_per_shape`` steps
    of the first batch shape (the first step creates the optimizer state, the second is the steady state), is
    stopped for repeats, and runs again for the first steps of any new shape. Each window's peak is added to
    the bytes live when it began (exact for the first window; for later ones, the first window's final live
    bytes plus what later windows left live, shape-identical steps in between leaving nothing). Frees of
    blocks allocated outside a window are not seen by the profiler, so a later window can only over-count.

    Args:
        steps_per_shape: Profiled steps per batch shape.
    """

    def __init__(self, steps_per_shape: int = 2) -> None:
        if steps_per_shape < 1:
            raise MeasurementError("steps_per_shape must be at least 1")
        self.steps_per_shape = steps_per_shape
        self._window: CpuTensorMemory | None = None
        self._seen: dict[Hashable, int] = {}
        self._baseline = 0
        self._peak: int | None = None
        self._started = False
        self.result: Measured | None = None
        self.profiled_steps = 0
        self.steps = 0
        self.windows = 0

    @property
    def counter(self) -> str:
        """The counter's label when some steps were not profiled (else :data:`CPU_MEMORY_COUNTER`)."""
        return CPU_MEMORY_COUNTER_NEW_SHAPES.format(k=self.steps_per_shape)

    def start(self) -> None:
        """Start the first window (before the model is built).

        Raises:
            MeasurementError: Already started, or the profiler cannot start.
        """
        if self._started:
            raise MeasurementError("the CPU memory tracker was already started")
        self._started = True
        self._open()

    def step_begin(self, shape: Hashable | None) -> None:
        """Decide whether the step about to run is profiled (``shape=None``: always).

        Raises:
            MeasurementError: Not started, or the profiler cannot restart.
        """
        if not self._started or self.result is not None:
            raise MeasurementError("the CPU memory tracker is not running")
        self.steps += 1
        count = self._seen.get(shape, 0) + 1
        self._seen[shape] = count
        profile = shape is None or count <= self.steps_per_shape
        if profile and self._window is None:
            self._open()
        elif not profile and self._window is not None:
            self._close()
        if profile:
            self.profiled_steps += 1

    def stop(self) -> Measured:
        """Close the open window and return the peak.

        Raises:
            MeasurementError: Not started, or stopped twice.
        """
        if not self._started or self.result is not None:
            raise MeasurementError("the CPU memory tracker is not running")
        if self._window is not None:
            self._close()
        if self._peak is None:
            self.result = Measured.unknown("bytes", "the profiler returned no results")
        else:
            every = self.profiled_steps == self.steps
            self.result = Measured(self._peak, "bytes", CPU_MEMORY_COUNTER if every else self.counter)
        return self.result

    def _open(self) -> None:
        window = CpuTensorMemory()
        window.start()
        self._window = window
        self.windows += 1

    def _close(self) -> None:
        window, self._window = self._window, None
        if window is None:
            return
        measured = window.stop()
        if measured.value is None or window.final_live_bytes is None:
            return
        peak = self._baseline + int(measured.value)
        self._peak = peak if self._peak is None else max(self._peak, peak)
        self._baseline += window.final_live_bytes
