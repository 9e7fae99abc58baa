from __future__ import annotations

import json
import re

import pytest

from lorabench import __version__
from lorabench.cli.main import app, main

COMMANDS = sorted(command.name or "" for command in app.registered_commands)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--version")
    assert (code, out.strip(), err) == (0, f"lorabench {__version__}", "")


def test_every_command_is_registered() -> None:
    assert {"estimate", "fit", "run", "sweep", "cost", "catalog", "models", "report", "infer", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_short_help_everywhere(capsys: pytest.CaptureFixture[str], command: str) -> None:
    args = [command] if command else []
    code, out, err = run(capsys, *args, "-h")
    assert code == 0, err
    assert "Usage: lorabench" in out
    long_code, long_out, _ = run(capsys, *args, "--help")
    assert long_code == 0 and long_out == out


@pytest.mark.parametrize("command", ["estimate", "fit", "cost", "catalog", "models", "run"])
def test_boolean_flags_show_as_flags(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    _, out, _ = run(capsys, command, "-h")
    assert re.search(r"--json\s+Print", out), out
    assert "<bool>" not in out
    assert "<int>" in out or command in ("catalog", "models", "cost")  # valued options keep their type


def test_tables_wrap_instead_of_truncating(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert "…" not in out
    assert all(len(line) <= 80 for line in out.splitlines())
    joined = "".join(out.split())  # a folded name reads whole again without the line breaks and borders
    assert "Llama-3.1-8B" in joined.replace("│", "")


def test_wide_tables_keep_names_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "models", "--wide")
    assert code == 0
    assert "tiny (Llama architecture, 4 layers)" in out
    assert max(len(line) for line in out.splitlines()) > 80


def test_estimate_record_keeps_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "estimate", "--model", "tiny", "--engine", "formula", "--json")
    assert code == 0
    record = json.loads(out)
    assert isinstance(record["library_warnings"], list)
    assert all(w not in err for w in record["library_warnings"])
