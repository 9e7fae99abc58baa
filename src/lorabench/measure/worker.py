"""Process entry point for one run: ``python -m lorabench.measure.worker LAUNCH.json``.

``lorabench run`` and ``lorabench sweep`` start it as a subprocess (directly, or under torchrun for
several ranks) so an out-of-memory error or a crash cannot take the caller down and every peak is clean.
LAUNCH.json holds ``{"spec": {...}, "options": {...}}``. Exit status: 0 ok, 3 oom, 4 failed, 2 bad input, 74 disk
full / read-only (:data:`~lorabench.errors.EXIT_ENVIRONMENT`), 128 + N when signal N stopped it (the record then says
``interrupted``). A repeated signal is ignored: the parent forwards what it got, and a terminal's Ctrl-C reaches both;
the parent kills the run if it does not stop in time.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from lorabench.errors import EXIT_ENVIRONMENT, LorabenchError, is_environment_failure
from lorabench.interrupts import deferred, signals_handled

__all__ = [
    "EXIT_FAILED",
    "EXIT_OOM",
    "PROGRESS_FILE_ENV",
    "main",
    "progress_hook",
    "read_progress",
    "worker_command",
    "write_launch_file",
]

EXIT_OOM = 3
EXIT_FAILED = 4
PROGRESS_FILE_ENV = "LORABENCH_PROGRESS_FILE"
"""When set, rank 0 appends one JSON line per optimizer step to this file (the parent's progress bar reads it)."""


def worker_command(launch: Path, nproc: int) -> list[str]:
    """The command that runs the worker on ``launch``: one process, or ``nproc`` ranks under torchrun."""
    if nproc > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "lorabench.measure.worker",
            str(launch),
        ]
    return [sys.executable, "-m", "lorabench.measure.worker", str(launch)]


def write_launch_file(path: Path, spec: dict[str, Any], options: dict[str, Any]) -> None:
    """Write the worker's input atomically."""
    from lorabench.records import write_json_atomic

    write_json_atomic(path, {"spec": spec, "options": options})


def progress_hook() -> Any:
    """The step hook that feeds a parent's progress bar, or None (no :data:`PROGRESS_FILE_ENV`, or not rank 0).

    Each line is ``[step, total_steps, loss, tokens_per_s]``; tokens/s is rank 0's padded rate times the world
    size (every rank runs the same batch shapes), so the bar shows the whole run's rate.
    """
    path = os.environ.get(PROGRESS_FILE_ENV)
    if not path or os.environ.get("RANK", "0") != "0":
        return None
    ranks = int(os.environ.get("WORLD_SIZE", "1") or 1)

    def hook(step: int, total: int, loss: float | None, tokens_per_s: float | None) -> None:
        rate = None if tokens_per_s is None else tokens_per_s * ranks
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps([step, total, loss, rate]) + "\n")

    return hook


def read_progress(path: Path, offset: int) -> tuple[list[tuple[int, int, float | None, float | None]], int]:
    """Complete lines of a progress file from byte ``offset``: ``(steps, new offset)``; a missing file is empty."""
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            data = stream.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
    steps = []
    for line in data[:end].splitlines():
        try:
            step, total, loss, rate = json.loads(line)
            steps.append((int(step), int(total), loss, rate))
        except (ValueError, TypeError):
            continue
    return steps, offset + end


def main(argv: list[str] | None = None) -> int:
    """Run the launch file's spec; the record lands in ``options.out``."""
    args = sys.argv[1:] if argv is None else argv
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        with signals_handled(), deferred(force_on_repeat=False):
            from lorabench.measure.options import RunOptions
            from lorabench.measure.runner import run_training
            from lorabench.spec import RunSpec

            payload = json.loads(Path(args[0]).read_text("utf-8"))
            spec, options = RunSpec.model_validate(payload["spec"]), RunOptions.model_validate(payload["options"])
            record = run_training(spec, options, on_step=progress_hook())
    except LorabenchError as exc:
        sys.stderr.write(f"lorabench: error: {' '.join(str(exc).split())}\n")
        return exc.exit_status
    except OSError as exc:
        if not is_environment_failure(exc):
            raise
        sys.stderr.write(f"lorabench: error: {exc.filename or 'a file'}: {exc.strerror}\n")
        return EXIT_ENVIRONMENT
    status = record.get("status")
    return 0 if status == "ok" else EXIT_OOM if status == "oom" else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
