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

__all__ = ["EXIT_FAILED", "EXIT_OOM", "main", "worker_command", "write_launch_file"]

EXIT_OOM = 3
EXIT_FAILED = 4


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
            record = run_training(spec, options)
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
