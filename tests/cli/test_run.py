from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lorabench.cli.main import main
from tests.cli.terminal import on_a_terminal


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration
def test_run_prints_measured_figures_with_counters(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "run",
        "--model",
        "tiny",
        "--max-steps",
        "4",
        "--warmup-steps",
        "1",
        "--seq-len",
        "32",
        "--batch-size",
        "2",
        "--examples",
        "16",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0
    assert "peak allocated" in out and "profiler" in out
    assert "n/a" in out  # energy / GPU-hours unknown on CPU
    assert "base dtype" in out
    assert "tok/s" not in out and "ETA" not in out  # stdout is not a terminal: no progress bar
    record = json.loads((tmp_path / "r" / "result.json").read_text())
    assert record["compute_dtype"]["dtype"] in ("bfloat16", "float32") and record["compute_dtype"]["reason"]
    assert record["metrics"]["counters"]["peak_allocated_bytes"].startswith("cpu.profiler_peak_new_shapes")


@pytest.mark.integration
def test_run_on_a_terminal_shows_progress_and_json_stays_quiet(tmp_path: Path) -> None:
    args = ["run", "--model", "tiny", "--max-steps", "3", "--warmup-steps", "1", "--seq-len", "32"]
    args += ["--batch-size", "2", "--examples", "8", "--cpu-dtype", "fp32"]
    env = {**os.environ, "COLUMNS": "160"}
    outputs = []
    for extra in ([], ["--json"]):
        command = [sys.executable, "-m", "lorabench.cli.main", *args, "--out", str(tmp_path / f"r{len(extra)}"), *extra]
        outputs.append(on_a_terminal(command, env))
    bar, as_json = outputs
    assert "tok/s" in bar and "3/3" in bar and "loss" in bar and "ETA" in bar
    assert "tok/s" not in as_json and "ETA" not in as_json
    record = json.loads((tmp_path / "r1" / "result.json").read_text())
    assert record["compute_dtype"] == {"dtype": "float32", "reason": "fp32 forced on CPU (--cpu-dtype fp32)"}


@pytest.mark.integration
def test_two_process_ddp_run_on_gloo(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "lorabench.cli.main", "run", "--model", "tiny", "--max-steps", "4"]
    command += ["--warmup-steps", "1", "--seq-len", "32", "--batch-size", "2", "--examples", "32", "--nproc", "2"]
    command += ["--out", str(tmp_path / "ddp")]
    bar = on_a_terminal(command, env)  # on a terminal: the parent's bar follows rank 0's steps
    assert "on 2 processes" in bar and "4/4" in bar and "tok/s" in bar and "ETA" in bar
    record = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert record["status"] == "ok"
    assert record["world_size"] == 2 and len(record["per_rank"]) == 2
    assert {r["rank"] for r in record["per_rank"]} == {0, 1}
    assert record["engine"]["backend"] == "gloo"
    assert "MULTI_CPU" in record["engine"]["distributed_type"]
    metrics = record["metrics"]
    # peaks are per rank, the run's figure is the max (never the sum)
    assert metrics["peak_allocated_bytes"] == max(r["peak_allocated_bytes"] for r in record["per_rank"])
    # throughput counts both ranks' tokens
    assert metrics["nonpad_tokens"] == sum(r["nonpad_tokens"] for r in record["per_rank"])
    assert "sum over 2 ranks" in metrics["throughput_method"]


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dataset", "/nonexistent/data.jsonl"], "cannot read dataset"),
        (["--max-steps", "0"], "--max-steps"),
        (["--max-steps", "-3"], "--max-steps"),
        (["--max-steps", "2", "--warmup-steps", "2"], "warmup_steps"),
        (["--dataset", "synthetic:poetry"], "poetry"),
        (["--batching", "random"], "--batching"),
        (["--nproc", "0"], "--nproc"),
        (["--parallelism", "zero2", "--gpu", "A100", "--nproc", "2"], "DeepSpeed"),
        (["--targets", "c_attn"], "c_attn not found"),
    ],
)
def test_run_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], needle: str) -> None:
    out_dir = tmp_path / "never"
    code, _out, err = run(capsys, "run", "--model", "tiny", "--out", str(out_dir), *args)
    assert code == 2, err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out_dir.exists()


def test_malformed_and_empty_datasets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = _jsonl(tmp_path / "bad.jsonl", ['{"context": "a", "target": "b"}', '{"context": "a", "target": ', ""])
    code, _, err = run(capsys, "run", "--model", "tiny", "--dataset", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2 and f"{bad}:2: malformed JSON" in err
    empty = _jsonl(tmp_path / "empty.jsonl", [""])
    code, _, err = run(capsys, "run", "--model", "tiny", "--dataset", str(empty), "--out", str(tmp_path / "o"))
    assert code == 2 and "no records" in err
    assert not (tmp_path / "o").exists()
