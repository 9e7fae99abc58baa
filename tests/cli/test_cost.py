from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorabench.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "finlora_seed_cost.yaml"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cost_json_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cost", str(SEED), "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert round(rows["LoRA"]["cost_usd"], 2) == 15.50
    assert rows["GPT-4o-mini"]["cost_usd"] == pytest.approx(312.0)
    for row in rows.values():
        assert set(row) >= {
            "name",
            "kind",
            "time_s",
            "gpus",
            "gpu_hours",
            "cost_usd",
            "epochs",
            "billed_tokens",
            "provenance",
        }
        assert row["kind"] in {"self_hosted", "service", "reference"}


@pytest.mark.parametrize(
    ("fmt", "needle"),
    [
        ("md", "| LoRA | 14.9h | 4×A5000 | $15.50 |"),
        ("rst", ".. list-table:: Fine-tuning Cost Comparison"),
        ("csv", "LoRA,14.9h,4×A5000,$15.50"),
    ],
)
def test_cost_formats(capsys: pytest.CaptureFixture[str], fmt: str, needle: str) -> None:
    code, out, _ = run(capsys, "cost", str(SEED), "--format", fmt)
    assert code == 0
    assert needle in out
    assert "$312.00" in out and "$78.00" in out and "$2.67M" in out


def test_cost_terminal_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cost", str(SEED))
    assert code == 0
    assert "Fine-tuning Cost Comparison" in out and "$16.54" in out


def test_catalog_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", "--json")
    assert code == 0
    payload = json.loads(out)
    assert any(s["id"] == "gpt-4o-mini" and s["prices_checked"] for s in payload["services"])
    code, out, _ = run(capsys, "catalog")
    assert "finlora-a5000" in out


@pytest.mark.parametrize(
    ("body", "args", "needle"),
    [
        ("dataset: {tokens: 10}\nepochs: 1\nservices: [gpt-9]\n", [], "unknown service 'gpt-9'"),
        ("dataset: {tokens: 10}\nself_hosted:\n  - {name: a, hours: 1, gpu: Z80}\n", [], "unknown GPU 'Z80'"),
        ("dataset: {tokens: 10}\nself_hosted:\n  - {name: a, hours: -2, gpu: A5000}\n", [], "hours"),
        ("epochs: 1\n", [], "dataset"),
        ("dataset: {tokens: 10}\n", ["--format", "pdf"], "--format"),
    ],
)
def test_cost_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, body: str, args: list[str], needle: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(body)
    code, out, err = run(capsys, "cost", str(path), *args)
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1
    assert out == ""


def test_cost_missing_scenario(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "cost", str(tmp_path / "none.yaml"))
    assert code == 2
    assert "cannot read scenario" in err


def test_bad_user_catalog(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "cat.yaml"
    bad.write_text("schema_version: 1\nprovider: p\nservices:\n  - {id: x, display_name: X, train_usd_per_mtok: 1}\n")
    code, _, err = run(capsys, "catalog", "--catalog", str(bad))
    assert code == 2
    assert "prices_checked: required" in err
