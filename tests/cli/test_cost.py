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


def test_cost_csv_holds_numbers_with_units_and_provenance(capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import io

    code, out, _ = run(capsys, "cost", str(SEED), "--format", "csv")
    assert code == 0
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(out))}
    assert "$" not in out and "×" not in out  # no display strings
    lora = rows["LoRA"]
    assert float(lora["cost_usd"]) == pytest.approx(15.496)
    assert float(lora["time_s"]) == pytest.approx(14.9 * 3600)
    assert float(lora["gpu_hours"]) == pytest.approx(59.6)
    assert lora["time_kind"] == "input" and lora["price_entry"] == ""
    gpt = rows["GPT-4o-mini"]
    assert float(gpt["cost_usd"]) == pytest.approx(312.0) and gpt["time_s"] == ""  # unknown is empty, not 0
    assert int(gpt["billed_tokens"]) == 104_000_000
    assert gpt["price_entry"] == "gpt-4o-mini" and gpt["price_status"] == "unconfirmed"
    assert gpt["price_source"].startswith("https://") and gpt["secondary_source"].startswith("https://")
    assert gpt["job_creation_ends"] == "2027-01-06"
    assert {"peak_allocated_bytes", "device_total_bytes", "fits"} <= set(lora)


def test_cost_shows_a_row_that_does_not_fit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "dataset: {tokens: 26000000}\nepochs: 4\nself_hosted:\n"
        "  - {name: on 4090, spec: {model: llama-3.1-8b, bits: 16, micro_batch: 4, seq_len: 512}, gpu: RTX4090}\n"
        "  - {name: on A100, spec: {model: llama-3.1-8b, bits: 4, micro_batch: 4, seq_len: 512}, gpu: A100-80GB}\n"
    )
    code, out, _ = run(capsys, "cost", str(scenario), "--format", "md")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("| on 4090"))
    assert "does not fit (39.6 > 25.8 GB)" in line and "1.0×" not in line
    assert "1.0×" in next(x for x in out.splitlines() if x.startswith("| on A100"))


def test_catalog_stale_lists_old_entries(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import datetime as dt

    today = dt.datetime.now(dt.timezone.utc).date()
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "schema_version: 1\nprovider: me\ngpu_rates:\n"
        f'  - {{id: fresh, gpu: A5000, usd_per_gpu_hour: 0.3, prices_checked: "{today.isoformat()}", source: "https://x.org"}}\n'
        '  - {id: ancient, gpu: A5000, usd_per_gpu_hour: 0.3, prices_checked: "2020-01-01", source: "https://x.org",'
        ' price_status: unconfirmed, secondary_source: "a forum post"}\n'
    )
    code, out, _ = run(capsys, "catalog", "--catalog", str(mine), "--stale", "30", "--json")
    assert code == 0
    payload = json.loads(out)
    ids = [e["id"] for e in payload["entries"]]
    assert ids[0] == "ancient" and "fresh" not in ids
    assert payload["entries"][0]["age_days"] == (today - dt.date(2020, 1, 1)).days
    assert payload["entries"][0]["price_status"] == "unconfirmed"
    assert all(e["age_days"] > 30 for e in payload["entries"])
    assert "mistral-nemo" in ids  # checked 2024-12-22
    code, out, _ = run(capsys, "catalog", "--catalog", str(mine), "--stale", "30", "--wide")
    assert code == 0 and "ancient" in out and "fresh" not in out and "a forum post" in out


def test_catalog_never_shows_an_unconfirmed_price_as_checked(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", "--wide")
    assert code == 0
    line = next(x for x in out.splitlines() if "mistral-nemo" in x)
    assert "unconfirmed (seen 2024-12-22" in line
    assert "gpt-4o-mini: being wound down: job creation ends 2027-01-06" in out
    assert "up to 16B" in out
