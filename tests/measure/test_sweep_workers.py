"""``lorabench sweep --workers N``: real worker processes share one sweep through the ledger; a killed one's run is
taken over once it is gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lorabench.measure.ledger import Claim, Ledger

MATRIX = """
base: {model: tiny, seq_len: 16, micro_batch: 2}
matrix: {rank: [2, 4, 6]}  # two run at once, one is killed and taken over
options: {dataset: "synthetic:sentiment", examples: 8, max_steps: 2, warmup_steps: 1, trackers: false}
"""


def _claims(out: Path) -> list[Claim]:
    if not (out / "ledger.sqlite").is_file():
        return []
    with Ledger(out) as ledger:
        return ledger.claims()


@pytest.mark.integration
@pytest.mark.slow
def test_two_workers_share_a_sweep_and_take_over_a_killed_workers_run(tmp_path: Path) -> None:
    matrix, out = tmp_path / "matrix.yaml", tmp_path / "sweep"
    matrix.write_text(MATRIX)
    command = [sys.executable, "-m", "lorabench.cli.main", "sweep", str(matrix), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [*command, "--workers", "2", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        running: list[Claim] = []
        while time.monotonic() < deadline and proc.poll() is None:
            running = [c for c in _claims(out) if c.state == "claimed" and c.child_pid]
            if len({c.pid for c in running}) == 2:
                break
            time.sleep(0.1)
        assert len({c.pid for c in running}) == 2, "two workers never ran at the same time"
        assert len({c.run_id for c in running}) == 2  # never the same configuration
        victim = running[0]
        assert victim.pid is not None and victim.child_pid is not None
        os.kill(victim.pid, signal.SIGKILL)  # the worker first, so it cannot record its run as failed
        os.kill(victim.child_pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stderr[-2000:]
    claims = {c.run_id: c for c in _claims(out)}
    assert {c.state for c in claims.values()} == {"done"} and {c.status for c in claims.values()} == {"ok"}
    taken = claims[victim.run_id]
    assert taken.attempts == 2 and taken.pid not in (None, victim.pid)  # redone by the surviving worker
    assert all(c.attempts == 1 for rid, c in claims.items() if rid != victim.run_id)
    records = sorted(out.glob("*/result.json"))
    assert len(records) == 3
    assert all(json.loads(p.read_text())["status"] == "ok" for p in records)
    assert sorted(r["runs"] for r in json.loads(stdout)) == [1, 1, 1]


def test_workers_flag_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lorabench.cli.main import main

    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX)
    assert main(["sweep", str(matrix), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
