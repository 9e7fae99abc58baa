"""The compute worker: one separate process that runs every estimate, fit and cost job, one at a time.

Why a process: a formula estimate of an unseen 70B model builds its module graph (~15 s of CPU), a simulate
estimate runs the fake-tensor step (longer), and an uploaded config can describe any size; Python threads
cannot be stopped. So the HTTP process only validates, queues and answers, and the worker computes:

- one job runs at a time (the worker keeps its caches warm between jobs); the others wait in line;
- at most ``max_waiting`` requests may wait (more: 429 "busy"), and only one ``simulate`` may be queued or
  running (another: 429);
- a job that runs past its time limit (``formula_timeout_s``, ``simulate_timeout_s``) has its worker killed
  (503 with the reason) and the next job starts a fresh worker.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["Busy", "JobError", "JobTimeout", "Limits", "Worker"]


@dataclass(frozen=True)
class Limits:
    """Request-cost limits of the server.

    Attributes:
        formula_timeout_s: Longest a formula estimate, fit or cost job may run.
        simulate_timeout_s: Longest a simulate estimate may run.
        max_waiting: Requests that may wait for the worker at once (more get 429).
        wait_s: Longest a request waits in line before it gets 503.
        max_upload_bytes: Largest config text a request may carry (per field).
    """

    formula_timeout_s: float = 60.0
    simulate_timeout_s: float = 180.0
    max_waiting: int = 16
    wait_s: float = 120.0
    max_upload_bytes: int = 256 * 1024


class Busy(Exception):
    """Too many requests are waiting (HTTP 429)."""


class JobTimeout(Exception):
    """The job ran past its limit, or waited too long for the worker (HTTP 503)."""


class JobError(Exception):
    """The job failed on bad input: ``kind`` is the lorabench error class, ``message`` names the field."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the child process
    """The worker's loop: receive ``(kind, payload)``, send ``("ok", result)`` or ``("error", class, message)``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    scratch = Path(tempfile.mkdtemp(prefix="lorabench-web-"))
    os.chdir(scratch)  # a relative model name can never find a folder of the server's working directory
    import lorabench.api  # noqa: F401  (warm: the first request does not pay the import)
    from lorabench.errors import LorabenchError
    from lorabench.web.jobs import run_job

    conn.send(("ready", None))
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", run_job(kind, payload, scratch)))
        except LorabenchError as exc:
            conn.send(("error", type(exc).__name__, str(exc)))
        except Exception as exc:
            conn.send(("crash", type(exc).__name__, "".join(traceback.format_exception_only(exc)).strip()))


class Worker:
    """The server's handle on the compute process: start, queue, time-bound, restart."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._waiting = 0
        self._simulating = False
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ready = False
        self.restarts = 0

    def start(self) -> None:
        """Start the process now (it imports the libraries in the background); a no-op when running."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> Connection:
        if self._process is not None and self._process.poll() is None and self._conn is not None:
            return self._conn
        self._kill()
        # A fresh interpreter (not fork: the server's threads; not multiprocessing's spawn: it re-runs the
        # caller's main script), talking over a socket pair.
        ours, theirs = socket.socketpair()
        import lorabench

        env = dict(os.environ)
        root = str(Path(lorabench.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "lorabench.web.worker", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._process, self._conn, self._ready = process, Connection(ours.detach()), False
        return self._conn

    def _kill(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(timeout=10)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn, self._ready = None, None, False

    def close(self) -> None:
        """Stop the process."""
        with self._lock:
            self._kill()

    def run(self, kind: str, payload: dict[str, Any], *, simulate: bool = False) -> Any:
        """Run one job in the worker and return its result.

        Raises:
            Busy: Too many requests waiting, or a simulation already queued or running.
            JobTimeout: Waited past ``wait_s``, or ran past the job's limit (the worker is restarted).
            JobError: Bad input (``kind`` ``crash``: an unexpected error in lorabench).
        """
        with self._count_lock:
            if self._waiting >= self.limits.max_waiting:
                raise Busy(f"{self._waiting} requests are already waiting for the compute worker; retry shortly")
            if simulate and self._simulating:
                raise Busy(
                    "one simulate estimate runs at a time and another is queued or running; retry when it is done, "
                    "or use engine=formula"
                )
            self._waiting += 1
            self._simulating = self._simulating or simulate
        try:
            if not self._lock.acquire(timeout=self.limits.wait_s):
                raise JobTimeout(f"the compute worker stayed busy for {self.limits.wait_s:.0f} s; retry later")
            try:
                return self._run_locked(kind, payload, simulate)
            finally:
                self._lock.release()
        finally:
            with self._count_lock:
                self._waiting -= 1
                if simulate:
                    self._simulating = False

    def _run_locked(self, kind: str, payload: dict[str, Any], simulate: bool) -> Any:
        limit = self.limits.simulate_timeout_s if simulate else self.limits.formula_timeout_s
        conn = self._ensure()
        if not self._ready:  # the import is not part of the job's time limit
            if not conn.poll(120.0):
                self._kill()
                raise JobTimeout("the compute worker did not start within 120 s")
            tag = self._receive(conn)[0]
            self._ready = tag == "ready"
        conn.send((kind, payload))
        started = time.monotonic()
        if not conn.poll(limit):
            self._kill()
            self.restarts += 1
            raise JobTimeout(
                f"the {kind} job ran past the server's limit of {limit:.0f} s and was stopped after "
                f"{time.monotonic() - started:.0f} s"
                + ("; the formula engine (engine=formula) answers in well under a second" if simulate else "")
            )
        reply = self._receive(conn)
        if reply[0] == "ok":
            return reply[1]
        raise JobError(str(reply[1]), str(reply[2]))

    def _receive(self, conn: Connection) -> tuple[Any, ...]:
        try:
            reply: tuple[Any, ...] = conn.recv()
        except (EOFError, OSError):
            self._kill()
            self.restarts += 1
            raise JobTimeout("the compute worker stopped (out of memory?) and will be restarted") from None
        return reply


if __name__ == "__main__":  # pragma: no cover - the worker process
    _serve(Connection(int(sys.argv[1])))
