"""Chaos: a real ``lorabench sweep`` SIGKILLed at random points, again and again, then resumed.

Kill points are drawn (seeded) from: early (start-up, expansion, ledger sync, first claim), mid-run (while a run
subprocess trains), right after a record was written (between the record and the ledger's ``done``), and, once
every run is recorded, during the resume itself; every third launch uses two workers. Two "crashes" kill only a
run's subprocess: the sweep must record it as failed and go on. In the end every planned run has exactly one
complete, parseable record; no record is ever rewritten once it exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lorabench.measure.ledger import Claim, Ledger, process_alive

MATRIX = """
base: {model: tiny, seq_len: 16, micro_batch: 2}
matrix: {rank: [2, 4, 6], method: [lora, rslora]}
options: {dataset: "synthetic:sentiment", examples: 8, max_steps: 2, warmup_steps: 1, trackers: false}
"""
KILLS = 20
SEED = int(os.environ.get("LORABENCH_CHAOS_SEED", "20261128"))
KILL_PHASE_S = 240.0


def _claims(out: Path) -> list[Claim]:
    if not (out / "ledger.sqlite").is_file():
        return []
    with Ledger(out) as ledger:
        return ledger.claims()


def _running(out: Path) -> list[Claim]:
    """Claims whose run subprocess is alive now (a killed launch leaves claims of dead processes behind)."""
    return [c for c in _claims(out) if c.state == "claimed" and process_alive(c.child_pid, None)]


def _records(out: Path) -> dict[str, tuple[int, int, str]]:
    """Every record now on disk: its run, file identity and content hash; each must parse as a whole record."""
    seen = {}
    for path in out.glob("*/result.json"):
        blob = path.read_bytes()
        record = json.loads(blob)  # a half-written record would fail here
        assert record["schema"] == "lorabench.run" and record["status"] in ("ok", "failed")
        stat = path.stat()
        seen[path.parent.name] = (stat.st_ino, stat.st_mtime_ns, hashlib.sha256(blob).hexdigest())
    return seen


def _wait(condition: object, deadline: float, proc: subprocess.Popen[bytes]) -> bool:
    while time.monotonic() < deadline and proc.poll() is None:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.integration
@pytest.mark.slow
def test_sweep_survives_random_sigkills_with_no_result_lost_or_duplicated(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    matrix, out = tmp_path / "matrix.yaml", tmp_path / "sweep"
    matrix.write_text(MATRIX)
    command = [sys.executable, "-m", "lorabench.cli.main", "sweep", str(matrix), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    plan = ["early"] * 8 + ["mid-run"] * 6 + ["after-record"] * 4
    rng.shuffle(plan)
    plan[1:1] = ["crash"]  # crashes early on, while runs are left for the sweep to go on with
    plan[4:4] = ["crash"]
    first_seen: dict[str, tuple[int, int, str]] = {}
    crashed: set[str] = set()
    kills, launches, log = 0, 0, []
    phase_end = time.monotonic() + KILL_PHASE_S
    while kills < KILLS and time.monotonic() < phase_end:
        kind = plan[kills % len(plan)]
        workers = "2" if launches % 3 == 2 else "1"
        launches += 1
        proc = subprocess.Popen(
            [*command, "--workers", workers],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        before = _records(out)
        deadline = time.monotonic() + 60
        if len(before) == 6:  # all recorded: kill the resume itself (expansion, ledger sync, summary)
            kind = "complete"
            time.sleep(rng.uniform(0.05, 0.4))
        elif kind == "early":
            time.sleep(rng.uniform(0.1, 3.0))
        elif kind == "mid-run":
            _wait(lambda: bool(_running(out)), deadline, proc)
            time.sleep(rng.uniform(0.0, 4.0))
        elif kind == "after-record":
            count = len(before)
            _wait(lambda n=count: len(_records(out)) > n, deadline, proc)
            time.sleep(rng.uniform(0.0, 0.2))
        else:  # crash: only the run subprocess dies; the sweep must record it and go on
            running: list[Claim] = []

            def has_child(found: list[Claim] = running) -> bool:
                found[:] = _running(out)
                return bool(found)

            if _wait(has_child, deadline, proc):
                victim = running[0]
                time.sleep(rng.uniform(0.5, 3.0))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(victim.child_pid or 0), signal.SIGKILL)
                if _wait(lambda v=victim.run_id: v in _records(out), deadline, proc):
                    record = json.loads((out / victim.run_id / "result.json").read_text())
                    if record["status"] == "failed":
                        crashed.add(victim.run_id)
                    # the sweep goes on: another run is claimed (or the sweep ends)
                    _wait(
                        lambda v=victim.run_id: any(c.run_id != v for c in _running(out)),
                        deadline,
                        proc,
                    )
        alive = proc.poll() is None
        if alive:
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep, its workers and their runs die at once
            kills += 1
        proc.wait()
        now = _records(out)
        for run_id, identity in first_seen.items():
            assert now[run_id] == identity, f"{run_id}: a complete record was lost or rewritten"
        first_seen.update({k: v for k, v in now.items() if k not in first_seen})
        log.append(f"{kind}/{workers}w:{'killed' if alive else 'exited'}:{len(now)}")
    assert kills >= KILLS, f"only {kills} kills in {KILL_PHASE_S:.0f} s (seed {SEED}): {log}"

    done = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    planned = {r["run_id"] for r in json.loads((out / "sweep-plan.json").read_text())["runs"]}
    final = _records(out)
    assert set(final) == planned and len(planned) == 6  # none lost, none extra: one record per configuration
    for run_id, identity in first_seen.items():
        assert final[run_id] == identity, f"{run_id}: a complete record was rewritten"
    for run_id, (_, _, _) in final.items():
        record = json.loads((out / run_id / "result.json").read_text())
        if run_id in crashed:
            assert record["status"] == "failed" and "killed by signal SIGKILL" in record["message"]
        else:
            assert record["status"] == "ok", (run_id, record.get("message"))
    assert crashed, f"no crash was recorded as failed (seed {SEED}): {log}"
    claims = _claims(out)
    assert {c.run_id for c in claims} == planned and {c.state for c in claims} == {"done"}
    rows = json.loads(done.stdout)
    assert sorted(r["runs"] for r in rows) == [1] * 6
    print(f"chaos: {kills} kills over {launches} launches (seed {SEED}), 0 results lost: {' '.join(log)}")


def _default_signals() -> None:
    # A background shell job starts with SIGINT ignored, and lorabench keeps an inherited "ignore" (nohup's rule).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


SIGNAL_MATRIX = """
base: {model: tiny, seq_len: 16, micro_batch: 2}
matrix: {rank: [2, 4]}
options: {dataset: "synthetic:sentiment", examples: 8, max_steps: 15, warmup_steps: 1, trackers: false}
"""
# (signal, workers): each launch is stopped mid-run by a signal sent to the sweep process alone, as a service
# manager or `kill` would; the sweep must forward it to its workers and runs, wait, and leave no process behind.
SIGNAL_LAUNCHES = [(signal.SIGTERM, "1"), (signal.SIGINT, "2")]  # SIGHUP: tests/test_interrupts.py


@pytest.mark.integration
@pytest.mark.slow
def test_a_sweep_stopped_by_signals_forwards_them_and_resumes_with_nothing_lost(tmp_path: Path) -> None:
    matrix, out = tmp_path / "matrix.yaml", tmp_path / "sweep"
    matrix.write_text(SIGNAL_MATRIX)
    command = [sys.executable, "-m", "lorabench.cli.main", "sweep", str(matrix), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    finished: dict[str, tuple[int, int, str]] = {}
    survived = 0
    for signum, workers in SIGNAL_LAUNCHES:
        proc = subprocess.Popen(
            [*command, "--workers", workers],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_signals,
        )
        running: list[Claim] = []

        def has_child(found: list[Claim] = running) -> bool:
            found[:] = _running(out)
            return bool(found)

        if not _wait(has_child, time.monotonic() + 90, proc):
            proc.communicate()
            continue  # nothing left to run
        launched = time.monotonic()
        time.sleep(1.0)
        proc.send_signal(signum)  # the sweep alone, not its process group
        _, err = proc.communicate(timeout=120)
        print(
            f"{signal.Signals(signum).name}/{workers}w: stopped {time.monotonic() - launched:.1f} s after a run began"
        )
        assert proc.returncode == 128 + signum, err[-2000:]
        assert "Traceback" not in err
        errors = [ln for ln in err.splitlines() if ln.startswith("lorabench: error: ")]
        assert len(errors) == 1 and f"sweep interrupted by {signal.Signals(signum).name}" in errors[0], err[-2000:]
        assert "rerun the same command" in errors[0]
        for claim in running:  # forwarded and waited for: no run subprocess outlives its sweep
            assert not process_alive(claim.child_pid, None), f"{claim.run_id}: run subprocess orphaned"
        assert not [c for c in _claims(out) if c.state == "claimed"], "a claim was left behind"
        survived += 1
        for path in out.glob("*/result.json"):
            record = json.loads(path.read_text())
            assert record["status"] in ("ok", "interrupted")
            if record["status"] == "interrupted":
                # this launch's, or an earlier launch's not yet redone
                assert record["message"].split(" after ")[0] in {f"interrupted by {s.name}" for s, _ in SIGNAL_LAUNCHES}
            else:
                blob = path.read_bytes()
                identity = (path.stat().st_ino, path.stat().st_mtime_ns, hashlib.sha256(blob).hexdigest())
                assert finished.setdefault(path.parent.name, identity) == identity, "a finished record was rewritten"
    assert survived >= 1, f"only {survived} launches were stopped mid-run"
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    final = _records(out)
    assert len(final) == 2 and all(final[k] == v for k, v in finished.items())
    statuses = {json.loads((out / k / "result.json").read_text())["status"] for k in final}
    assert statuses == {"ok"}  # every interrupted run was redone
    assert {c.state for c in _claims(out)} == {"done"}
    print(f"signals: {survived} interrupted launches survived, 0 results lost")


DISK_MATRIX = """
base: {model: tiny, seq_len: 16, micro_batch: 2}
matrix: {rank: [2, 16]}
options: {dataset: "synthetic:sentiment", examples: 8, max_steps: 2, warmup_steps: 1, trackers: false}
"""
FILE_SIZE_LIMIT = 64_000  # the rank-2 adapter (~44 kB) fits, the rank-16 one (~350 kB) does not


@pytest.mark.integration
@pytest.mark.slow
def test_a_sweep_whose_disk_fills_says_why_in_one_line_and_resumes(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse to grow any file past the limit (EFBIG), as a full disk refuses (ENOSPC)."""
    import resource

    matrix, out = tmp_path / "matrix.yaml", tmp_path / "sweep"
    matrix.write_text(DISK_MATRIX)
    command = [sys.executable, "-m", "lorabench.cli.main", "sweep", str(matrix), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))

    full = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert full.returncode == 74, full.stderr[-2000:]
    assert "Traceback" not in full.stderr and "OperationalError" not in full.stderr
    errors = [ln for ln in full.stderr.splitlines() if ln.startswith("lorabench: error: ")]
    assert len(errors) == 1 and "r16" in errors[0] and "File too large" in errors[0], full.stderr[-2000:]
    assert "cannot save the adapter" in errors[0]  # the real cause, from the run subprocess's own stderr
    claims = {c.run_id.split("-")[2]: c for c in _claims(out)}
    assert claims["r2"].state == "done" and claims["r16"].state == "pending"  # the claim was given back
    assert not (out / claims["r16"].run_id / "result.json").exists()  # no record: a rerun redoes it
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {json.loads(p.read_text())["status"] for p in out.glob("*/result.json")} == {"ok"}
    assert len(list(out.glob("*/result.json"))) == 2
