"""The sweep ledger: transactional claims between real concurrent processes, takeover of dead claims, reconciling."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lorabench.measure.ledger import LEDGER_NAME, Ledger, process_alive, process_start

RUNS = [f"run-{i:03d}" for i in range(120)]

CLAIMER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from lorabench.measure.ledger import Ledger
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    run_ids = json.loads(sys.argv[3])
    claimed = []
    with Ledger(folder) as ledger:
        while (run_id := ledger.claim(run_ids)) is not None:
            claimed.append(run_id)
            ledger.finish(run_id, "ok")
    out.write_text(json.dumps(claimed))
    """
)


def test_concurrent_processes_never_claim_the_same_run(tmp_path: Path) -> None:
    outs = [tmp_path / f"claimed-{i}.json" for i in range(4)]
    with Ledger(tmp_path / "sweep") as ledger:
        ledger.sync(RUNS, lambda run_id: False)
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path / "sweep"), str(out), json.dumps(RUNS)])
        for out in outs
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    claimed = [run_id for out in outs for run_id in json.loads(out.read_text())]
    assert sorted(claimed) == RUNS  # every run claimed exactly once across the four processes
    with Ledger(tmp_path / "sweep") as ledger:
        assert {c.state for c in ledger.claims()} == {"done"}
        assert all(c.attempts == 1 for c in ledger.claims())
    mode = sqlite3.connect(tmp_path / "sweep" / LEDGER_NAME).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def _claim_in_child(folder: Path, run_ids: list[str]) -> subprocess.Popen[str]:
    code = (
        "import sys, json, time\nfrom pathlib import Path\nfrom lorabench.measure.ledger import Ledger\n"
        "l = Ledger(Path(sys.argv[1])); ids = json.loads(sys.argv[2]); l.sync(ids, lambda r: False)\n"
        "print(l.claim(ids), flush=True); time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder), json.dumps(run_ids)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == run_ids[0]
    return proc


def test_a_killed_claimers_run_is_taken_over_and_a_live_one_is_not(tmp_path: Path) -> None:
    ids = ["a", "b"]
    holder = _claim_in_child(tmp_path, ids)
    with Ledger(tmp_path) as ledger:
        assert ledger.claim(["a"]) is None  # held by a live process
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert ledger.claim(["a"]) == "a"  # its process is gone: taken over
        assert [c.attempts for c in ledger.claims(["a"])] == [2]
        assert ledger.claim(["a"]) is None  # now ours, and we live


def test_a_live_run_subprocess_keeps_the_claim_of_a_dead_claimer(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with Ledger(tmp_path) as first:
            first.sync(["a"], lambda r: False)
            assert first.claim(["a"]) == "a"
            first.set_child("a", child.pid)
            # pretend the claimer died: a pid that cannot be alive, the run subprocess still is
            first._db.execute("UPDATE runs SET pid = 0")
            assert first.claim(["a"]) is None
            child.kill()
            child.wait()
            assert first.claim(["a"]) == "a"
    finally:
        child.kill()
        child.wait()


def test_zombies_recycled_pids_and_other_hosts(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    while process_start(proc.pid) is not None:  # exited, not yet collected: a zombie is gone
        os.sched_yield()
    proc.wait()
    me = process_start(os.getpid())
    assert me is not None and process_alive(os.getpid(), me)
    if me:  # start times are readable (Linux): a recycled pid is not the claimer
        assert not process_alive(os.getpid(), str(int(me) + 1))
    with Ledger(tmp_path) as ledger:
        ledger.sync(["a"], lambda r: False)
        assert ledger.claim(["a"]) == "a"
        ledger._db.execute("UPDATE runs SET host = 'elsewhere', pid = 0")
        assert ledger.claim(["a"]) is None  # another machine's claim is never taken over


def test_records_are_the_truth(tmp_path: Path) -> None:
    recorded = {"b"}
    with Ledger(tmp_path) as ledger:
        ledger.sync(["a", "b", "c"], recorded.__contains__)
        assert [(c.run_id, c.state) for c in ledger.claims()] == [("a", "pending"), ("b", "done"), ("c", "pending")]
        assert ledger.claim(["a", "b", "c"]) == "a"
        ledger.finish("a", "ok")
        recorded.add("c")  # written by a worker that died before marking it
        ledger.sync(["a", "b", "c"], recorded.__contains__)  # "a" marked done but its record is gone: redo it
        assert [(c.run_id, c.state) for c in ledger.claims()] == [("a", "pending"), ("b", "done"), ("c", "done")]
        assert ledger.unfinished(["a", "b", "c"]) == 1


def test_a_file_that_is_not_a_ledger_is_one_clear_error(tmp_path: Path) -> None:
    from lorabench.errors import MeasurementError

    (tmp_path / LEDGER_NAME).write_bytes(b"\x00garbage" * 100)
    with pytest.raises(MeasurementError, match="not a sweep ledger"):
        Ledger(tmp_path)


# The kernel refuses to grow a file past RLIMIT_FSIZE (EFBIG; Python ignores SIGXFSZ): a real disk-full source.
FULL_LEDGER = """
import json, resource, sys
from pathlib import Path
from lorabench.errors import LorabenchError
from lorabench.measure.ledger import Ledger
out = Path(sys.argv[1])
with Ledger(out) as ledger:
    ledger.sync(["a"], lambda run_id: False)
    claimed = ledger.claim(["a"])
    limit = max(p.stat().st_size for p in out.iterdir())
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        ledger.sync([f"r{i}" for i in range(2000)], lambda run_id: False)
    except LorabenchError as exc:
        print(json.dumps({"type": type(exc).__name__, "message": str(exc), "status": exc.exit_status}))
    ledger.release_quietly(claimed)  # must not raise, whatever the disk says
"""


@pytest.mark.integration
def test_a_full_disk_under_the_ledger_is_one_environment_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FULL_LEDGER, str(tmp_path / "sweep")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["type"] == "EnvironmentFailure" and result["status"] == 74
    assert "ledger.sqlite" in result["message"] and "rerun the same command" in result["message"]
