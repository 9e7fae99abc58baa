from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lorabench.cli.main import main
from lorabench.report.build import build_report, write_report
from tests.cli.terminal import on_a_terminal
from tests.infer.adapters import make_adapter, other_architecture_adapter


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
@pytest.mark.integration
def test_infer_done_when(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    adapter = make_adapter(tmp_path / "adapter")
    out = tmp_path / "results"
    code, stdout, _ = run(
        capsys,
        "infer",
        "--model",
        "tiny",
        "--adapter",
        str(adapter),
        "--batch-sizes",
        "1,4",
        "--prompt-lens",
        "32,128",
        "--max-new-tokens",
        "16",
        "--repeats",
        "3",
        "--cpu-threads",
        "1",
        "--out",
        str(out),
        "--json",
    )
    assert code == 0
    summary = json.loads(stdout)
    rows = summary["rows"]
    assert {r["variant"] for r in rows} == {"base", "unmerged", "merged"} and len(rows) == 12
    for row in rows:
        assert row["ttft_s_p50"] > 0 and row["time_per_output_token_s_mean"] > 0 and row["output_tokens_per_s"] > 0
    # merged and base run the same architecture: within noise (a shared 2-core CPU is noisy, so the band is wide)
    base = {(r["batch_size"], r["prompt_len"]): r["e2e_latency_s_p50"] for r in rows if r["variant"] == "base"}
    merged = {(r["batch_size"], r["prompt_len"]): r["e2e_latency_s_p50"] for r in rows if r["variant"] == "merged"}
    ratio = sum(merged.values()) / sum(base.values())
    assert 0.5 < ratio < 2.0, ratio
    report = build_report(out, plots=True)
    assert report.inference is not None and len(report.inference.cells.rows) == 12
    written = write_report(report, out / "report")
    assert (out / "report" / "plots" / "infer_latency.png").is_file()
    md = (out / "report" / "report.md").read_text()
    assert "## Inference" in md and "LoRA vs base slowdown" in md and "Adapter lifecycle" in md
    assert 'id="inference"' in (out / "report" / "report.html").read_text()
    assert written


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--batch-sizes", "0"], "--batch-sizes: 0 is not allowed"),
        (["--prompt-lens", "4096"], "exceeds tiny (Llama architecture, 4 layers)'s context of 2048 tokens"),
        (["--repeats", "0", "--max-new-tokens", "0"], "--max-new-tokens: must be >= 1 (got 0); --repeats"),
        (["--variants", "merged"], "--variants: merged need an adapter"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], expected: str
) -> None:
    code, out, err = run(capsys, "infer", "--model", "tiny", "--out", str(tmp_path / "o"), *args)
    assert code == 2 and out == ""
    assert err.startswith("lorabench: error: ") and err.count("\n") == 1 and expected in err
    assert not (tmp_path / "o").exists()


def test_adapter_for_another_architecture_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    adapter = other_architecture_adapter(tmp_path / "other")
    code, _, err = run(capsys, "infer", "--model", "tiny", "--adapter", str(adapter), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1
    assert "was not trained for tiny" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def _infer_args(tmp_path: Path, name: str, *extra: str) -> list[str]:
    """A 2-cell ``infer`` (tiny base, 2 batch sizes)."""
    args = ["infer", "--model", "tiny", "--batch-sizes", "1,2", "--prompt-lens", "8", "--max-new-tokens", "2"]
    return [*args, "--repeats", "1", "--warmup", "0", "--cpu-threads", "1", "--out", str(tmp_path / name), *extra]


def _infer_on_a_terminal(tmp_path: Path, name: str, *extra: str) -> str:
    """What a 2-cell ``infer`` in a child process draws with its stdout on a terminal."""
    command = [sys.executable, "-m", "lorabench.cli.main", *_infer_args(tmp_path, name, *extra)]
    return on_a_terminal(command, {**os.environ, "COLUMNS": "160"})


@pytest.mark.integration
def test_infer_progress_bar_on_a_terminal_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bar = _infer_on_a_terminal(tmp_path, "tty")
    assert "ETA" in bar and "2/2" in bar and "measured" in bar
    # stdout not a terminal (captured in this process, no second start-up of torch): no bar
    monkeypatch.setenv("COLUMNS", "160")
    code, out, err = run(capsys, *_infer_args(tmp_path, "pipe"))
    assert code == 0, err
    piped = out + err
    assert "ETA" not in piped and "2/2" not in piped and "measured" not in piped
    assert "records in" in piped  # the table still prints
    as_json = _infer_on_a_terminal(tmp_path, "json", "--json")
    assert "ETA" not in as_json and json.loads(as_json[as_json.index("{") :])["rows"]
