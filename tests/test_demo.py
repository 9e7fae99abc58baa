from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lorabench.cli.main import main

FILES = ("report.md", "report.rst", "report.csv", "report.json", "report.html")
ROWS = ("LoRA", "QLoRA", "DoRA", "rsLoRA", "GPT-4o-mini", "BloombergGPT")


def _table(markdown: str, title: str) -> list[list[str]]:
    """The body rows of the Markdown table that follows ``**title**``."""
    lines = markdown[markdown.index(f"**{title}**") :].splitlines()[2:]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.slow
@pytest.mark.integration
def test_demo_writes_the_seed_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--steps", "3", "--engine", "formula"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "report:" in printed
    report = out / "report"
    for name in FILES:
        assert (report / name).stat().st_size > 0, name
    assert list((report / "plots").glob("*.png")) and list((report / "plots").glob("*.svg"))
    markdown = (report / "report.md").read_text("utf-8")

    cost = _table(markdown, "Fine-tuning Cost Comparison")
    names = [row[0] for row in cost]
    for wanted in ROWS:
        assert any(name.startswith(wanted) for name in names), wanted
    for row in cost:  # every cost figure says where it comes from: a kind, or a numbered catalog source
        for part in row[-1].split("; winding down:")[0].split("; "):
            figure, _, where = part.partition(": ")
            assert re.fullmatch(r"[a-z_ ]+", figure), row  # time, cost, epochs, tokens, fit, ...
            assert where in ("predicted", "measured", "input", "rule") or re.fullmatch(r"\[\d+\]", where), row
    prices = _table(markdown, "Price sources")
    assert prices and all(re.search(r"\d{4}-\d{2}-\d{2}", row[4]) and "https://" in row[6] for row in prices)

    memory = _table(markdown, "GPU Memory Usage for Fine-tuning")  # the seed's table: Llama-3.1-8B on GPU only
    labels = [row[0] for row in memory]
    assert not [label for label in labels if label.startswith("tiny")]
    for rank in (8, 4):
        for bits in (16, 8, 4):
            assert f"Llama-3.1-8B-r{rank}-{bits}bit" in labels
    for row in memory:
        for cell in row[2:4]:  # batch columns: a figure is measured (m) or predicted (p); else n/a or -
            if re.search(r"\d", cell):
                assert cell.endswith(("(m)", "(p)")), row
            else:
                assert cell in ("n/a", "-"), row
    # the five measured methods on tiny are in their own CPU table, measured, and get no GPU tiers
    measured = _table(markdown, "CPU Memory Usage for Fine-tuning")
    assert len(measured) == 5 and all(row[0].startswith("tiny") and row[2].endswith("(m)") for row in measured)
    assert not re.search(r"tiny\S* needs .* cards", markdown)

    record = json.loads((report / "report.json").read_text("utf-8"))
    assert record["schema"].startswith("lorabench.report")
    assert "$" not in (report / "report.csv").read_text("utf-8")
    assert len(list((out / "runs").glob("*/result.json"))) == 5
    assert len(list((out / "estimates").glob("*.json"))) == 12


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--steps", "2"], "--steps: must be >= 3"), (["--engine", "magic"], "--engine: must be simulate or formula")],
)
def test_demo_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and err.count("\n") == 1
    assert not out.exists()
