"""Sweeps: expansion, subprocess runs, crash recording, and kill-and-resume with exactly one record each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lorabench.errors import ConfigError
from lorabench.measure.sweep import load_sweep, run_sweep, summarise

MATRIX = """
base: {model: tiny, seq_len: 32, micro_batch: 2}
matrix: {method: [lora, qlora, rslora], bits: [16, 4]}
exclude: [{method: rslora, bits: 4}]
options: {dataset: "synthetic:sentiment", examples: 16, max_steps: 3, warmup_steps: 1}
"""


# The kill-and-resume test's matrix: three configurations (a 16-bit, a 4-bit and an rsLoRA run) are enough for a
# kill after the first record to leave both finished and unfinished runs behind.
KILL_MATRIX = MATRIX.replace(
    "exclude: [{method: rslora, bits: 4}]", "exclude: [{method: rslora, bits: 4}, {method: lora, bits: 4}]"
)


def _matrix(tmp_path: Path, text: str = MATRIX) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    return path


def test_expansion_skips_impossible_combinations(tmp_path: Path) -> None:
    sweep = load_sweep(_matrix(tmp_path), tmp_path / "out", repeats=2)
    labels = sorted({r.spec.label() for r in sweep.runs})
    assert labels == ["tiny-lora-r8-16bit", "tiny-lora-r8-4bit", "tiny-qlora-r8-4bit", "tiny-rslora-r8-16bit"]
    assert len(sweep.runs) == 8  # 4 configurations x 2 repeats
    assert len({r.run_id for r in sweep.runs}) == 8
    assert any("method=qlora, bits=16" in s for s in sweep.skipped)
    again = load_sweep(_matrix(tmp_path), tmp_path / "out", repeats=2)
    assert [r.run_id for r in again.runs] == [r.run_id for r in sweep.runs]  # stable ids


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("base: {model: tiny}\nmatrix: {rank: [0, 8]}\n", "rank"),
        ("base: {model: tiny}\nmatrix: {rank: 8}\n", "non-empty list"),
        ("base: {model: tiny}\nmatrix: {rank: [8]}\noptions: {max_steps: 0}\n", "options.max_steps"),
        ("base: {model: tiny}\nmatrix: {rank: [8]}\noptions: {out: x}\n", "options.out"),
        ("base: {model: tiny}\nmatrx: {rank: [8]}\n", "unknown key"),
        ("- 1\n", "expected a mapping"),
        ("base: {model: tiny, method: qlora, bits: 16}\n", "no runnable configuration"),
    ],
)
def test_bad_matrices(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_sweep(_matrix(tmp_path, text), tmp_path / "out")
    assert needle in str(err.value)


@pytest.mark.integration
def test_a_worker_that_dies_is_recorded_as_failed(tmp_path: Path) -> None:
    text = MATRIX.replace("matrix: {method: [lora, qlora, rslora], bits: [16, 4]}", "matrix: {method: [lora]}")
    sweep = load_sweep(_matrix(tmp_path, text.replace("exclude: [{method: rslora, bits: 4}]", "")), tmp_path / "o")
    records = run_sweep(sweep, timeout_s=0.5)  # far too short to import torch: the worker is killed
    assert records[0]["status"] == "failed"
    assert "timed out" in records[0]["message"]
    rows = summarise(sweep, records)
    assert rows[0]["statuses"] == ["failed"] and rows[0]["wall_time_s_mean"] is None


def _records(out: Path) -> list[Path]:
    return sorted(out.glob("*/result.json"))


@pytest.mark.integration
@pytest.mark.slow
def test_killed_sweep_resumes_with_exactly_one_record_per_run(tmp_path: Path) -> None:
    matrix, out = _matrix(tmp_path, KILL_MATRIX), tmp_path / "sweep"
    command = [sys.executable, "-m", "lorabench.cli.main", "sweep", str(matrix), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 240
    while not _records(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its running worker die mid-way
    proc.wait()
    first = _records(out)
    assert 1 <= len(first) < 3
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    final = _records(out)
    assert len(final) == 3  # every configuration, exactly once
    for path in final:
        record = json.loads(path.read_text())  # none corrupt
        assert record["status"] == "ok"
    for path in first:  # finished runs were skipped, not redone
        assert path in final
    rows = json.loads(done.stdout)
    assert sorted(r["runs"] for r in rows) == [1, 1, 1]
    assert {json.loads(p.read_text())["spec"]["bits"] for p in final} == {16, 4}


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path: Path) -> None:
    from lorabench.measure.sweep import remove_stale_temporaries
    from lorabench.records import write_json_atomic

    folder = tmp_path / "run"
    write_json_atomic(folder / "launch.json", {"a": 1})
    leftover = folder / ".result.json.abc123.tmp"  # what SIGKILL between mkstemp and os.replace leaves
    leftover.write_text('{"half":')
    assert remove_stale_temporaries(folder) == [leftover]
    assert sorted(p.name for p in folder.iterdir()) == ["launch.json"]


@pytest.mark.parametrize(
    "content",
    [b'{"schema": "lorabench.run", "schema_version": 1, "status": "ok", "spec": {', b"", b"\xff\xfe", b"[1, 2]"],
    ids=["truncated", "empty", "binary", "not-a-record"],
)
def test_resume_reports_a_corrupt_record_before_any_run_starts(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    from lorabench.cli.main import main

    matrix, out = _matrix(tmp_path), tmp_path / "sweep"
    sweep = load_sweep(matrix, out)
    victim = sweep.runs[-1].folder
    victim.mkdir(parents=True)
    (victim / "result.json").write_bytes(content)
    assert main(["sweep", str(matrix), "--out", str(out)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(victim / "result.json") in lines[0] and "delete it" in lines[0], lines
    assert not list(out.glob("*/launch.json")) and not (out / "ledger.sqlite").exists()  # nothing started


def test_an_interrupted_record_is_redone_on_resume(tmp_path: Path) -> None:
    from lorabench.measure.record import write_run_record
    from lorabench.measure.sweep import record_state

    sweep = load_sweep(_matrix(tmp_path), tmp_path / "sweep")
    run = sweep.runs[0]
    write_run_record(run.folder, {"status": "interrupted", "message": "interrupted by SIGTERM after 1 of 2 steps"})
    assert record_state(run.folder) == "interrupted" and not run.done()
    write_run_record(run.folder, {"status": "failed", "message": "x"})
    assert record_state(run.folder) == "done" and run.done()
