"""A terminal progress bar for training steps: step, loss, tokens/s and ETA (rich), quiet when not wanted.

The bar is shown only on an interactive terminal: under ``--json``, in pipes, files and CI logs nothing is
printed, so machine-readable output stays clean.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["StepProgress", "progress_wanted"]


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
