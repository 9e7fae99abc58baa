from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lorabench.cli import main as cli
from lorabench.cli.report import report_command

from . import synthetic as syn


@pytest.fixture(autouse=True)
def report_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Until cli/main.py wires ``report``, add it for these tests only."""
    names = {c.name for c in cli.app.registered_commands}
    if "report" not in names:
        monkeypatch.setattr(cli.app, "registered_commands", list(cli.app.registered_commands))
        cli.app.command("report")(report_command)
    yield


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_writes_into_the_default_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    syn.write(tmp_path, "e.json", syn.estimate(peak=31e9, breakdown=syn.split(31e9, 16)))
    code, out, err = run(capsys, "report", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "report" / "report.html").is_file()
    assert "read 0 run, 1 estimate and 0 cost record(s)" in out
    assert "memory sections: Llama-3.1-8B on GPU (predicted for a CUDA GPU by lorabench estimate)" in out
    assert "plot cost skipped: no cost rows with a known cost" in out
    # a second report over the same folder ignores the first one's report.json
    code, out, err = run(capsys, "report", str(tmp_path), "--out", str(tmp_path / "again"), "--gib")
    assert code == 0, err
    assert "GiB (p)" in (tmp_path / "again" / "report.md").read_text("utf-8")


def test_empty_or_foreign_folder_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "report", str(tmp_path))
    assert code == 2 and out == ""
    assert err == (
        f"lorabench: error: no lorabench records in {tmp_path} "
        "(looked for result.json run records, estimate, cost and inference records)\n"
    )
    syn.write(tmp_path, "other.json", {"schema": "something.else"})
    code, _, err = run(capsys, "report", str(tmp_path / "other.json"))
    assert code == 2 and "is not a folder" in err
    assert not (tmp_path / "report").exists()
