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
