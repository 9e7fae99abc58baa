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
from collections.abc import Iterable, Iterator
from typing import Any

from lorabench.errors import MeasurementError
from lorabench.measure.trackers.measured import Measured

__all__ = ["CPU_MEMORY_COUNTER", "CpuTensorMemory", "peak_live_bytes"]

CPU_MEMORY_COUNTER = "torch.profiler(profile_memory=True): CPU allocator events since start, running peak"


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
