"""The sweep ledger: which worker runs which configuration, in an embedded SQLite database beside the results.

Workers of one sweep (``lorabench sweep --workers N``, or several ``lorabench sweep`` commands on the same folder)
claim runs through it in ``BEGIN IMMEDIATE`` transactions, so two workers never take the same run. A claim names the
claiming process (host, pid and the process's start time, so a recycled pid is not mistaken for it) and the run
subprocess it started. A claim is taken over once both processes are gone; a claim made on another host is never
taken over (SQLite locking is only reliable on a local filesystem: run the workers of one sweep on one machine).

The run records stay the source of truth: :meth:`Ledger.sync` marks every run with a ``result.json`` done and puts
a run marked done without one back to pending, so deleting a record redoes that run and nothing else.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from lorabench.errors import EnvironmentFailure, LorabenchError, MeasurementError

__all__ = ["LEDGER_NAME", "Claim", "Ledger", "process_alive", "process_start"]

LEDGER_NAME = "ledger.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'claimed', 'done')),
    host TEXT,
    pid INTEGER,
    pid_start TEXT,
    child_pid INTEGER,
    child_start TEXT,
    claimed_at REAL,
    finished_at REAL,
    status TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
)
"""


def process_start(pid: int) -> str | None:
    """An identity token of a live process: its start time on Linux, ``""`` where that cannot be read.

    Returns:
        None when no such process runs (zombies count as gone: they have exited, only their parent has not
        collected them yet).
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text("ascii", errors="replace")
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:  # no procfs (macOS, BSD): existence only
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return ""
        return ""
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # the command name may hold spaces and parentheses
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22 of proc(5): start time in clock ticks after boot


def process_alive(pid: int | None, start: str | None) -> bool:
    """True when process ``pid`` runs and is the one whose :func:`process_start` token was ``start``."""
    if pid is None or pid <= 0:
        return False
    now = process_start(pid)
    return now is not None and (not start or not now or now == start)


@dataclass(frozen=True)
class Claim:
    """One row of the ledger."""

    run_id: str
    state: str
    host: str | None
    pid: int | None
    child_pid: int | None
    attempts: int
    status: str | None


class Ledger:
    """A run ledger in ``folder/ledger.sqlite`` (WAL journal), shared by every worker of a sweep.

    Args:
        folder: The sweep's output folder (created).
        busy_timeout_s: How long a transaction waits for another worker's lock.

    Every method raises :class:`~lorabench.errors.EnvironmentFailure` when the ledger cannot be written because of
    the disk (full, read-only, I/O error, file size limit), and :class:`~lorabench.errors.MeasurementError` for other
    database errors -- never a raw ``sqlite3`` error.

    Raises:
        MeasurementError: The database cannot be opened or is not a ledger.
        EnvironmentFailure: The disk refuses the database (full, read-only).
    """

    def __init__(self, folder: Path, busy_timeout_s: float = 60.0) -> None:
        self.path = folder / LEDGER_NAME
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.pid_start = process_start(self.pid) or ""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise MeasurementError(f"{self.path}: cannot open the sweep ledger ({exc})") from None
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                # Switching to WAL needs a moment alone with the file: another worker opening it can make it busy.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute(_SCHEMA)  # one statement in autocommit mode: atomic on its own
                break
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    self._db.close()
                    failure = self._failure(exc)
                    if isinstance(failure, EnvironmentFailure):
                        raise failure from None
                    raise MeasurementError(f"{self.path}: cannot open the sweep ledger ({exc})") from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                self._db.close()
                raise MeasurementError(f"{self.path}: not a sweep ledger ({exc}); move it away to rebuild it") from None

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _failure(self, exc: sqlite3.Error) -> LorabenchError:
        """A ledger write that failed, as one line: the disk (full, read-only, I/O) or the database file."""
        text = str(exc)
        if any(word in text for word in ("full", "I/O", "readonly", "read-only", "too large")):
            return EnvironmentFailure(
                f"{self.path}: cannot update the sweep ledger ({text}); free space (or make the folder writable) "
                "and rerun the same command to resume"
            )
        return MeasurementError(f"{self.path}: cannot update the sweep ledger ({text})")

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock at once: read-decide-write cannot interleave with another worker.
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        try:
            yield self._db
        except BaseException as exc:
            with suppress(sqlite3.Error):  # a failed write may have rolled back already
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._failure(exc) from None
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise self._failure(exc) from None

    def sync(self, run_ids: Sequence[str], recorded: Callable[[str], bool]) -> None:
        """Add the sweep's runs and reconcile the ledger with the records on disk.

        Args:
            run_ids: Every run of the sweep, in plan order.
            recorded: Whether a run has its complete record (checked while the ledger is locked, so a worker
                finishing meanwhile cannot be undone).
        """
        with self._immediate() as db:
            states = dict(db.execute("SELECT run_id, state FROM runs").fetchall())
            for position, run_id in enumerate(run_ids):
                done = recorded(run_id)
                if run_id not in states:
                    db.execute(
                        "INSERT INTO runs (run_id, position, state, status) VALUES (?, ?, ?, ?)",
                        (run_id, position, "done" if done else "pending", "recorded" if done else None),
                    )
                elif done and states[run_id] != "done":
                    db.execute(
                        "UPDATE runs SET state = 'done', status = COALESCE(status, 'recorded'), finished_at = ? "
                        "WHERE run_id = ?",
                        (time.time(), run_id),
                    )
                elif not done and states[run_id] == "done":
                    db.execute("UPDATE runs SET state = 'pending', status = NULL WHERE run_id = ?", (run_id,))

    def _held(
        self, host: str | None, pid: int | None, start: str | None, child: int | None, cstart: str | None
    ) -> bool:
        if host != self.host:
            return True  # another machine's process: its liveness cannot be checked from here
        return process_alive(pid, start) or process_alive(child, cstart)

    def claim(self, run_ids: Collection[str]) -> str | None:
        """Claim the first pending run of ``run_ids``, else one whose claiming processes are gone.

        Returns:
            The claimed run id, or None when every run is done or held by a live process.
        """
        wanted = set(run_ids)
        with self._immediate() as db:
            rows = db.execute(
                "SELECT run_id, state, host, pid, pid_start, child_pid, child_start FROM runs "
                "WHERE state != 'done' ORDER BY state = 'claimed', position"
            ).fetchall()
            for run_id, state, host, pid, start, child, cstart in rows:
                if run_id not in wanted or (state == "claimed" and self._held(host, pid, start, child, cstart)):
                    continue
                db.execute(
                    "UPDATE runs SET state = 'claimed', host = ?, pid = ?, pid_start = ?, child_pid = NULL, "
                    "child_start = NULL, claimed_at = ?, attempts = attempts + 1 WHERE run_id = ?",
                    (self.host, self.pid, self.pid_start, time.time(), run_id),
                )
                return str(run_id)
        return None

    def set_child(self, run_id: str, child_pid: int) -> None:
        """Note the run subprocess of a claim: the claim stays held while it lives, even if its claimer dies."""
        with self._immediate() as db:
            db.execute(
                "UPDATE runs SET child_pid = ?, child_start = ? WHERE run_id = ? AND pid = ?",
                (child_pid, process_start(child_pid) or "", run_id, self.pid),
            )

    def finish(self, run_id: str, status: str) -> None:
        """Mark a run done (its record is written)."""
        with self._immediate() as db:
            db.execute(
                "UPDATE runs SET state = 'done', status = ?, finished_at = ? WHERE run_id = ?",
                (status, time.time(), run_id),
            )

    def release(self, run_id: str) -> None:
        """Give a claim of this process back (the run did not start, or stopped on bad input)."""
        with self._immediate() as db:
            db.execute(
                "UPDATE runs SET state = 'pending', child_pid = NULL WHERE run_id = ? AND state = 'claimed' "
                "AND pid = ? AND host = ?",
                (run_id, self.pid, self.host),
            )

    def release_quietly(self, run_id: str) -> None:
        """:meth:`release` where the ledger can still be written; never raises.

        A claim left behind (disk full) is taken over once this process is gone, so a failure here must not hide
        the error being reported.
        """
        with suppress(LorabenchError):
            self.release(run_id)

    def claims(self, run_ids: Collection[str] | None = None) -> list[Claim]:
        """Every row (of ``run_ids`` when given), in plan order."""
        try:
            rows = self._db.execute(
                "SELECT run_id, state, host, pid, child_pid, attempts, status FROM runs ORDER BY position"
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        wanted = None if run_ids is None else set(run_ids)
        return [Claim(*row) for row in rows if wanted is None or row[0] in wanted]

    def unfinished(self, run_ids: Collection[str]) -> int:
        """How many of ``run_ids`` are not done."""
        return sum(1 for c in self.claims(run_ids) if c.state != "done")
