from __future__ import annotations

from collections.abc import Sequence


class FakeClock:
    """Returns scripted times, or advances by ``step`` seconds on every reading."""

    def __init__(self, times: Sequence[float] | None = None, step: float = 1.0) -> None:
        self._times = list(times) if times is not None else None
        self._step = step
        self._now = 0.0
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        if self._times is not None:
            return self._times.pop(0)
        now = self._now
        self._now += self._step
        return now


class SyncCounter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
