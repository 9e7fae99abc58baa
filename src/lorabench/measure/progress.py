"""Terminal progress bars (rich), quiet when not wanted: training steps (step, loss, tokens/s, ETA) and sweeps.

The bars are shown only on an interactive terminal: under ``--json``, in pipes, files and CI logs nothing is
printed, so machine-readable output stays clean.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["CellProgress", "StepProgress", "SweepProgress", "progress_wanted"]


def progress_wanted(as_json: bool, stream: Any = None) -> bool:
    """True when a progress bar should be drawn: not ``--json`` and ``stream`` (default stdout) is a terminal."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return not as_json and callable(isatty) and bool(isatty())


class StepProgress:
    """A rich progress bar over training (or inference) steps.

    Use as a context manager; call it (``progress(step, total, loss=..., tokens_per_s=...)``) after each step.

    Args:
        description: What runs (shown left of the bar).
        console: Where to draw (default: a stdout console).
    """

    def __init__(self, description: str, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} tok/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(),
            transient=False,
        )
        self._description = description
        self._task: Any = None

    def __enter__(self) -> StepProgress:
        self._progress.start()
        self._task = self._progress.add_task(self._description, total=None, loss="n/a", rate="n/a")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def __call__(self, step: int, total: int, loss: float | None = None, tokens_per_s: float | None = None) -> None:
        """Show ``step`` of ``total`` done, with the step's loss and tokens/s (None: n/a)."""
        self._progress.update(
            self._task,
            completed=step,
            total=total,
            loss="n/a" if loss is None else f"{loss:.3f}",
            rate="n/a" if tokens_per_s is None else f"{tokens_per_s:,.0f}",
        )


class CellProgress:
    """A rich progress bar over measurement cells (``infer``'s variant x batch x prompt grid): done / total and ETA.

    Use as a context manager; call it with the cell's description just before each cell runs (the runner's
    ``progress`` hook). The total is an upper bound the caller computes; the bar ends at the cells that ran.

    Args:
        total: Cells expected.
        console: Where to draw (default: a stdout console).
    """

    def __init__(self, total: int, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(),
            transient=False,
        )
        self._total = max(total, 1)
        self._started = 0
        self._task: Any = None

    def __enter__(self) -> CellProgress:
        self._progress.start()
        self._task = self._progress.add_task("measuring", total=self._total)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._progress.update(self._task, completed=self._started, total=self._started, description="measured")
        self._progress.stop()

    def __call__(self, line: str) -> None:
        """A cell starts: the ones before it are done."""
        self._progress.update(
            self._task, completed=self._started, total=max(self._total, self._started + 1), description=line
        )
        self._started += 1


class _Recordable(Protocol):
    def done(self) -> bool: ...


class SweepProgress:
    """One bar for a whole sweep, counting the records present in the sweep folder, with an ETA.

    The count comes from the folder, not from this process's own runs, so two sweeps sharing one folder both
    reach 100%. It is refreshed every ``poll_s`` seconds by a background thread and at every call. Quiet (no
    thread, nothing drawn) when ``enabled`` is False.

    Args:
        runs: The sweep's planned runs (anything with ``done()``).
        enabled: Draw the bar (see :func:`progress_wanted`).
        console: Where to draw (default: a stderr console).
        poll_s: How often the folder is counted.
    """

    def __init__(
        self, runs: Sequence[_Recordable], enabled: bool, console: Console | None = None, poll_s: float = 1.0
    ) -> None:
        self._runs = list(runs)
        self._enabled = enabled
        self._poll_s = poll_s
        self._running = ""
        self._nodes = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[nodes]}"),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: Any = None

    def recorded(self) -> int:
        """How many of the sweep's runs have a record in the folder now."""
        return sum(1 for run in self._runs if run.done())

    def __enter__(self) -> SweepProgress:
        if not self._enabled:
            return self
        self._progress.start()
        self._task = self._progress.add_task("sweep", total=len(self._runs), completed=self.recorded(), nodes="")
        self._thread = threading.Thread(target=self._poll, name="sweep-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._enabled:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._running = ""
        self.refresh()
        self._progress.stop()

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.refresh()

    def refresh(self) -> None:
        """Count the records again and redraw."""
        if not self._enabled or self._task is None:
            return
        done = self.recorded()
        with self._lock:
            description = f"running {self._running}" if self._running else "sweep"
            self._progress.update(self._task, completed=done, description=description, nodes=self._nodes)

    def running(self, run_ids: Sequence[str]) -> None:
        """Name the runs in progress (shown left of the bar)."""
        with self._lock:
            self._running = ", ".join(run_ids[:2]) + (f" +{len(run_ids) - 2}" if len(run_ids) > 2 else "")
        self.refresh()

    def nodes(self, counts: Mapping[str, int]) -> None:
        """Show how many records each node produced (the Ray backend)."""
        with self._lock:
            self._nodes = " ".join(f"{node} {n}" for node, n in sorted(counts.items()))
        self.refresh()
