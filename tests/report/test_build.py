from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from lorabench.errors import LorabenchError
from lorabench.report import build as build_module
from lorabench.report import build_report, write_report
from lorabench.report.html import CSP

from . import synthetic as syn

FILES = ("report.md", "report.rst", "report.csv", "report.json", "report.html")
PLOTS = ("memory", "cost", "time", "throughput")


def test_every_format_and_plot_is_written(written: Path) -> None:
    for name in FILES:
        assert (written / name).stat().st_size > 0
        assert (written / name).stat().st_mode & 0o777 == 0o644
    for name in PLOTS:
        assert (written / "plots" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert b"<svg" in (written / "plots" / f"{name}.svg").read_bytes()[:2000]
    assert not list(written.rglob("*.tmp"))


def test_markdown_holds_both_tables_marks_and_insights(written: Path) -> None:
    md = (written / "report.md").read_text("utf-8")
    assert "| Models | Time | GPUs | Est. Cost (USD) | × vs cheapest LoRA method |" in md
    assert "| QLoRA | 14.1h | 4×A5000 | $14.66 | 1.0× |" in md
    assert "| Models | Parameters | GPU Memory (Batch=4) | GPU Memory (Batch=8) | Model Size | Percentage |" in md
    assert "| Llama-3.1-8B-r8-4bit | 4.72M | 8.26 GB (p) | 8.65 GB (p) | 5.72 GB | 35.6% |" in md
    assert "| Llama-3.1-8B-r8-16bit | 4.72M | 30.91 GB (m) | 30.91 GB (m) | 16.08 GB | 100.1% |" in md
    assert "(m) measured in a lorabench run (counter: torch.cuda.max_memory_allocated" in md
    assert "(p) predicted by lorabench estimate (engine: simulate)" in md
    assert "GB = 10^9 bytes" in md
    assert "**Batch Size Effects:**" in md and "![Peak memory per configuration (GB)](plots/memory.png)" in md


def test_rst_uses_sphinx_list_tables(written: Path) -> None:
    rst = (written / "report.rst").read_text("utf-8")
    assert ".. list-table:: Fine-tuning Cost Comparison" in rst
    assert ".. list-table:: GPU Memory Usage for Fine-tuning\n   :header-rows: 1\n   :widths: 30 15 15 15 15 15" in rst
    assert "   * - Llama-3.1-8B-r8-8bit\n     - 4.72M\n     - 11.41 GB (p)" in rst
    assert ".. image:: plots/cost.png" in rst


def test_csv_has_both_tables_with_a_section_column(written: Path) -> None:
    rows = list(csv.reader(io.StringIO((written / "report.csv").read_text("utf-8"))))
    assert rows[0][:3] == ["section", "Models", "Time"]
    sections = [r[0] for r in rows]
    assert sections.count("cost") == 8 and sections.count("memory") == 8
    memory_header = rows[sections.index("memory") - 1]
    assert memory_header[:3] == ["section", "Models", "Parameters"]
    assert ["memory", "Llama-3.1-8B-r4-4bit", "2.36M", "8.25 GB (p)", "8.61 GB (p)", "5.71 GB", "35.6%"] in rows


def test_json_holds_rows_insights_and_provenance(written: Path) -> None:
    doc = json.loads((written / "report.json").read_text("utf-8"))
    assert (doc["schema"], doc["schema_version"]) == ("lorabench.report", 1)
    assert len(doc["provenance"]["run_records"]) == 6 and len(doc["provenance"]["estimate_records"]) == 12
    assert doc["provenance"]["datasets"] == ["synthetic:sentiment"]
    assert set(doc["tables"]) == {"cost", "memory"}
    row = next(r for r in doc["memory"]["rows"] if r["name"] == "Llama-3.1-8B-r8-4bit")
    cell = row["cells"][0]
    assert (cell["kind"], cell["batch"], cell["peak_bytes"], cell["source"]) == ("predicted", 4, 8.26e9, "simulate")
    assert cell["breakdown"]["weights"] == syn.BASE_BYTES[4]
    assert len(doc["cost_rows"]) == 8 and doc["cost_rows"][0]["provenance"]
    assert {i["topic"] for i in doc["insights"]} == {"quantization", "rank", "batch", "vram", "cost"}
    assert all(i["figures"] for i in doc["insights"])
    assert [p["png"] for p in doc["plots"]] == [f"plots/{n}.png" for n in PLOTS]


def test_html_is_self_contained(written: Path) -> None:
    page = (written / "report.html").read_text("utf-8")
    assert f'content="{CSP}"' in page
    assert page.count('<img src="data:image/png;base64,') == 4
    assert 'id="cost-table"' in page and 'id="memory-table"' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert '<td class="measured">30.91 GB (m)</td>' in page


def test_html_escapes_every_record_string(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    syn.write(tmp_path, "e.json", syn.estimate(display_name=evil + "-8B", peak=9e9))
    syn.write(tmp_path, "r/result.json", syn.run(display_name=evil, peak=1e9, dataset='<img src=x onerror="alert(2)">'))
    rows = syn.cost_rows()
    rows[0] = rows[0].model_copy(update={"name": "</td><script>alert(3)</script>"})
    syn.write(tmp_path, "c.json", syn.cost(rows))
    write_report(build_report(tmp_path), tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text("utf-8")
    assert "<script" not in page and "<img src=x" not in page and "</td><script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;-8B-r8-16bit" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert "&lt;/td&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in page


def test_plots_without_data_are_skipped_said_and_cleared(written: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(written, out)
    assert (out / "plots" / "throughput.png").is_file()
    syn.write(tmp_path / "thin", "e.json", syn.estimate())  # weights only: no peak, no runs, no cost
    report = build_report(tmp_path / "thin")
    assert {p.name: p.skipped for p in report.plots} == {
        "memory": "no measured or predicted peak memory in the records",
        "cost": "no cost rows with a known cost",
        "time": "no self-hosted cost rows or run records with a time",
        "throughput": "no run records with a measured throughput",
    }
    write_report(report, out)
    assert not list((out / "plots").iterdir())  # no stale plot from the earlier report
    md = (out / "report.md").read_text("utf-8")
    assert "## Plots skipped" in md and "no cost rows with a known cost" in md
    assert "No cost records (lorabench.cost) in the results." in md
    assert "Plots skipped" in (out / "report.html").read_text("utf-8")


def test_nothing_is_written_when_rendering_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    syn.write(tmp_path / "results", "e.json", syn.estimate(peak=31e9))
    report = build_report(tmp_path / "results")
    assert report.plots[0].png is not None

    def broken(_: object) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(build_module, "render_json", broken)
    with pytest.raises(RuntimeError, match="renderer bug"):
        write_report(report, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_is_one_clear_error(tmp_path: Path) -> None:
    syn.write(tmp_path / "results", "e.json", syn.estimate(peak=9e9))
    out = tmp_path / "out"
    out.mkdir()
    (out / "plots").write_text("a file where the plots folder goes", "utf-8")
    with pytest.raises(LorabenchError, match="cannot write"):
        write_report(build_report(tmp_path / "results"), out)
    assert not (out / "report.md").exists()


def test_no_plots_option_lists_them_as_not_drawn(tmp_path: Path) -> None:
    syn.write(tmp_path / "results", "e.json", syn.estimate(peak=31e9))
    report = build_report(tmp_path / "results", plots=False)
    assert {p.skipped for p in report.plots} == {"not drawn (--no-plots)"}
    write_report(report, tmp_path / "out")
    assert not (tmp_path / "out" / "plots").exists()


def test_several_cost_records_are_rebased_together(tmp_path: Path) -> None:
    rows = syn.cost_rows()
    hosted = [r for r in rows if r.kind == "self_hosted"]
    syn.write(tmp_path, "a.json", syn.cost(rows[:4]))  # references + LoRA
    cheap = hosted[0].model_copy(update={"name": "LoRA on spot", "cost_usd": 5.0})
    syn.write(tmp_path, "b.json", syn.cost([cheap]))
    report = build_report(tmp_path, plots=False)
    assert report.cost is not None
    by_name = {r[0]: r for r in report.cost.rows}
    assert by_name["LoRA"][4] == "3.1×"  # $15.50 / $5.00
    assert "Rows come from 2 cost records" in (report.cost.note or "")
