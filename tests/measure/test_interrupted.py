"""Ctrl-C and SIGTERM during real training and inference: a clean stop, one line, the conventional status.

Before, SIGINT during ``lorabench run`` training raised inside the CPU memory profiler's native callbacks and
ended in a segmentation fault with no record; now the run stops at the next micro-batch, the profiler is stopped
outside native code, the record says ``interrupted`` and the command exits 130 (143 for SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def _default_signals() -> None:
    # A background shell job starts with SIGINT ignored, and lorabench keeps an inherited "ignore" (nohup's rule).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_when(path: Path, proc: subprocess.Popen[str], signum: int, after_s: float) -> tuple[str, str]:
    deadline = time.monotonic() + 120
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(after_s)
    assert proc.poll() is None, "finished before the signal"
    proc.send_signal(signum)
    return proc.communicate(timeout=120)


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err[-2000:]
    errors = [ln for ln in err.splitlines() if ln.startswith("lorabench: error: ")]
    assert len(errors) == 1, err[-2000:]
    return errors[0]


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGINT], ids=["SIGINT"])
def test_a_signal_during_training_records_interrupted_and_exits_128_plus_n(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "lorabench.cli.main", "run", "--model", "tiny", "--seq-len", "16"]
    command += ["--batch-size", "2", "--max-steps", "2000", "--out", str(out)]  # trackers on: the profiler runs
    proc = subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals
    )
    _, err = _stop_when(out / "launch.json", proc, signum, after_s=2.0)
    assert proc.returncode == 128 + signum, err[-2000:]  # not -11 (SIGSEGV)
    line = _one_error_line(err)
    assert f"interrupted by {signal.Signals(signum).name}" in line and "result.json" in line
    record = json.loads((out / "result.json").read_text())
    assert record["status"] == "interrupted" and record["steps"] < 2000
    assert record["message"].startswith(f"interrupted by {signal.Signals(signum).name} after")


@pytest.mark.integration
def test_sigterm_during_inference_records_the_cell_and_exits_143(tmp_path: Path) -> None:
    out = tmp_path / "infer"
    command = [sys.executable, "-m", "lorabench.cli.main", "infer", "--model", "tiny", "--random-weights"]
    command += ["--batch-sizes", "1,2,4,8", "--repeats", "60", "--max-new-tokens", "8", "--variants", "base"]
    command += ["--out", str(out), "--json"]
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = _stop_when(out, proc, signal.SIGTERM, after_s=0.2)  # the first cell's record is written
    assert proc.returncode == 143, err[-2000:]
    assert "inference interrupted by SIGTERM" in _one_error_line(err)
    records = sorted((json.loads(p.read_text()) for p in out.glob("*.json")), key=lambda r: r["cell"]["batch_size"])
    assert [r["status"] for r in records[:-1]] == ["ok"] * (len(records) - 1) and len(records) < 4
    assert records[-1]["status"] == "interrupted"
