from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from lorabench.errors import LorabenchError
from lorabench.report import build as build_module
from lorabench.report import build_report, write_report
from lorabench.report.html import CSP

from . import synthetic as syn

FILES = ("report.md", "report.rst", "report.csv", "report.json", "report.html")
PLOTS = (
    "memory-llama-3.1-8b-gpu",
    "memory-tiny-cpu",
    "cost",
    "time",
    "throughput-llama-3.1-8b-gpu",
    "throughput-tiny-cpu",
)


def csv_blocks(text: str) -> dict[str, list[dict[str, str]]]:
    """report.csv's blocks: each header line starts with ``section``."""
    blocks: dict[str, list[dict[str, str]]] = {}
    header: list[str] = []
    for line in csv.reader(io.StringIO(text)):
        if line[0] == "section":
            header = line
            continue
        blocks.setdefault(line[0], []).append(dict(zip(header, line, strict=True)))
    return blocks


def test_every_format_and_plot_is_written(written: Path) -> None:
    for name in FILES:
        assert (written / name).stat().st_size > 0
        assert (written / name).stat().st_mode & 0o777 == 0o644
    for name in PLOTS:
        assert (written / "plots" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert b"<svg" in (written / "plots" / f"{name}.svg").read_bytes()[:2000]
    assert not list(written.rglob("*.tmp"))


def test_markdown_holds_the_tables_marks_sources_and_insights(written: Path) -> None:
    md = (written / "report.md").read_text("utf-8")
    assert (
        "| Models | Time | GPUs | Est. Cost (USD) | × vs cheapest LoRA method | Saving with cheapest LoRA method "
        "| Sources |" in md
    )
    assert "| QLoRA | 14.1h | 4×A5000 | $14.66 | 1.0× | cheapest | time: input; cost: input |" in md
    rows = {line.split(" | ")[0].removeprefix("| "): line.strip("|").split(" | ") for line in md.splitlines()}
    # the catalog may mark a name or price (a wind-down, an unconfirmed price): the figures and sources are these
    mini = next(cells for name, cells in rows.items() if name.startswith("GPT-4o-mini") and "default" not in name)
    assert [c.strip() for c in mini[4:6]] == ["21.3×", "95.3%"]
    assert mini[6].strip().startswith("epochs: input; cost: [4]; tokens: input")
    bloomberg = rows["BloombergGPT"]
    assert [c.strip() for c in bloomberg[4:]] == ["181,924.5×", "99.9995%", "time: [1]; cost: [2]"]
    # every catalog price with its date, status and URL
    assert "| [4] | gpt-4o-mini | fine-tuning price | $3.00 per 1M training tokens | " in md
    assert "| [2] | aws-p4d-a100-40gb | GPU rate | $4.10 per GPU-hour | " in md
    for ref in range(1, 5):
        line = next(line for line in md.splitlines() if line.startswith(f"| [{ref}] |"))
        assert re.search(r"\| (seen )?\d{4}-\d{2}-\d{2}( \(unconfirmed\))? \|", line), line
        assert re.search(r"\| (confirmed|unconfirmed.*|not stated) \| https://\S+ \|", line), line
    # the seed's table, for the seed's matrix, in its own GPU section; tiny on the CPU apart
    gpu = md[md.index("### Llama-3.1-8B on GPU") : md.index("### tiny on CPU")]
    assert "| Models | Parameters | GPU Memory (Batch=4) | GPU Memory (Batch=8) | Model Size | Percentage |" in gpu
    assert "| Llama-3.1-8B-r8-4bit | 4.72M | 8.26 GB (p) | 8.65 GB (p) | 5.72 GB | 35.6% |" in gpu
    assert "| Llama-3.1-8B-r8-16bit | 4.72M | 30.91 GB (m) | 30.91 GB (m) | 16.08 GB | 100.1% |" in gpu
    assert "tiny" not in gpu
    assert "*Measured on GPU (NVIDIA H200) in 4 run records; predicted for a CUDA GPU by lorabench estimate.*" in gpu
    assert "Every row: targets q_proj+k_proj+v_proj, sequence length 512" in gpu
    assert "(m) measured on a GPU in a lorabench run (counter: torch.cuda.max_memory_allocated" in gpu
    assert "(p) predicted for a CUDA device by lorabench estimate (engine: simulate)" in gpu
    cpu = md[md.index("### tiny on CPU") : md.index("## Insights")]
    assert "**CPU Memory Usage for Fine-tuning**" in cpu and "| Memory (Batch=4) | Memory (Batch=8) |" in cpu
    assert "| tiny-r8-16bit | 40.96K | 77.46 MB (m) | 154.91 MB (m) | n/a | n/a |" in cpu
    assert "GB (p)" not in cpu and "*Measured on CPU (AMD EPYC) in 2 run records.*" in cpu
    assert "GB = 10^9 bytes" in md
    assert "**Batch Size Effects:**" in md
    assert "![Peak memory per configuration: Llama-3.1-8B on GPU](plots/memory-llama-3.1-8b-gpu.png)" in md
    assert "y axis from zero" in cpu


def test_cpu_rows_get_no_gpu_tiers(written: Path) -> None:
    md = (written / "report.md").read_text("utf-8")
    insights = md[md.index("## Insights") :]
    tiny = insights[insights.index("### tiny on CPU") : insights.index("### Cost")]
    assert "Practical Implications" not in tiny and "cards" not in tiny and "tiny" in tiny
    doc = json.loads((written / "report.json").read_text("utf-8"))
    assert not [i for i in doc["insights"] if i["section"] == "tiny-cpu" and i["topic"] == "vram"]
    assert [i for i in doc["insights"] if i["section"] == "llama-3.1-8b-gpu" and i["topic"] == "vram"]


def test_rst_uses_sphinx_list_tables(written: Path) -> None:
    rst = (written / "report.rst").read_text("utf-8")
    assert ".. list-table:: Fine-tuning Cost Comparison" in rst
    assert ".. list-table:: Price sources" in rst
    assert ".. list-table:: GPU Memory Usage for Fine-tuning\n   :header-rows: 1\n   :widths: 30 15 15 15 15 15" in rst
    assert "   * - Llama-3.1-8B-r8-8bit\n     - 4.72M\n     - 11.41 GB (p)" in rst
    assert ".. figure:: plots/cost.png" in rst and "   Estimated cost per row of the cost table" in rst


def test_csv_holds_numbers_with_units_and_provenance(written: Path) -> None:
    text = (written / "report.csv").read_text("utf-8")
    assert "$" not in text and " GB" not in text and "(p)" not in text
    blocks = csv_blocks(text)
    assert set(blocks) == {"cost", "prices", "memory"}
    assert len(blocks["cost"]) == 8
    qlora = next(r for r in blocks["cost"] if r["name"] == "QLoRA")
    assert float(qlora["cost_usd"]) == pytest.approx(14.664)
    assert float(qlora["time_s"]) == pytest.approx(14.1 * 3600)
    assert float(qlora["gpu_hours"]) == pytest.approx(56.4)
    assert (qlora["time_kind"], qlora["cost_kind"], qlora["price_refs"]) == ("input", "input", "")
    mini = next(r for r in blocks["cost"] if r["name"].startswith("GPT-4o-mini") and "default" not in r["name"])
    assert mini["time_s"] == ""  # unknown is empty, never 0
    assert mini["catalog_entries"] == "gpt-4o-mini" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", mini["prices_checked"])
    assert mini["source_urls"] == "https://platform.openai.com/docs/pricing"
    assert int(mini["billed_tokens"]) > 0 and float(mini["reduction_pct"]) == pytest.approx(95.3, abs=0.05)
    price = next(r for r in blocks["prices"] if r["entry"] == "gpt-4o-mini")
    assert (float(price["price_usd"]), price["price_per"]) == (3.0, "1M training tokens")
    assert price["prices_checked"] == mini["prices_checked"] and price["price_status"] in (
        "confirmed",
        "unconfirmed",
        "not stated",
    )
    cells = {(r["row"], int(r["micro_batch"])): r for r in blocks["memory"]}
    cell = cells[("Llama-3.1-8B-r4-4bit", 8)]
    assert float(cell["peak_allocated_bytes"]) == 8.61e9 and cell["kind"] == "predicted"
    assert (cell["counter_or_engine"], cell["device_class"], int(cell["seq_len"]), int(cell["rank"])) == (
        "simulate",
        "GPU",
        512,
        4,
    )
    tiny = cells[("tiny-r8-16bit", 4)]
    assert (tiny["device_class"], tiny["measured_on"], tiny["kind"]) == ("CPU", "AMD EPYC", "measured")
    assert float(tiny["peak_allocated_bytes"]) == 77_456_904


def test_json_holds_rows_sources_insights_and_provenance(written: Path) -> None:
    doc = json.loads((written / "report.json").read_text("utf-8"))
    assert (doc["schema"], doc["schema_version"]) == ("lorabench.report", 2)
    assert len(doc["provenance"]["run_records"]) == 6 and len(doc["provenance"]["estimate_records"]) == 12
    assert doc["provenance"]["datasets"] == ["synthetic:sentiment"]
    assert set(doc["tables"]) == {"cost", "prices", "memory:llama-3.1-8b-gpu", "memory:tiny-cpu"}
    assert "rows" not in doc["tables"]["cost"]  # display strings stay on the page
    assert doc["records"]["cost"][0]["cost_usd"] == pytest.approx(2_667_740.16)
    section = next(s for s in doc["memory_sections"] if s["slug"] == "llama-3.1-8b-gpu")
    row = next(r for r in section["memory"]["rows"] if r["name"] == "Llama-3.1-8B-r8-4bit")
    cell = row["cells"][0]
    assert (cell["kind"], cell["batch"], cell["peak_bytes"], cell["source"]) == ("predicted", 4, 8.26e9, "simulate")
    assert cell["breakdown"]["weights"] == syn.BASE_BYTES[4]
    assert len(doc["cost_rows"]) == 8 and doc["cost_rows"][0]["provenance"]
    assert doc["cost_rows"][0]["sources"] == {"time_s": 1, "cost_usd": 2}
    mini = next(s for s in doc["price_sources"] if s["entry"] == "gpt-4o-mini")
    assert mini["source_url"] == "https://platform.openai.com/docs/pricing"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", mini["prices_checked"])
    assert {i["topic"] for i in doc["insights"]} == {"quantization", "rank", "batch", "vram", "cost"}
    assert all(i["figures"] for i in doc["insights"])
    assert [p["png"] for p in doc["plots"]] == [f"plots/{n}.png" for n in PLOTS]
    assert all(p["caption"] for p in doc["plots"])


def test_html_is_self_contained_and_shows_its_sources(written: Path) -> None:
    page = (written / "report.html").read_text("utf-8")
    assert f'content="{CSP}"' in page
    assert page.count('<img src="data:image/png;base64,') == len(PLOTS)
    assert 'id="cost-table"' in page and 'id="memory-table"' in page and 'id="prices-table"' in page
    assert "<script" not in page and 'src="http' not in page
    assert '<td class="measured">30.91 GB (m)</td>' in page
    assert '<a href="https://platform.openai.com/docs/pricing" rel="noopener noreferrer">' in page
    assert '<a href="#price-4">[4]</a>' in page and '<tr id="price-4">' in page
    assert len(re.findall(r'<tr id="price-\d+">(?:<td>[^<]*</td>){4}<td>(?:seen )?\d{4}-\d{2}-\d{2}', page)) == 4


def test_repeats_give_error_bars_and_one_batch_size_gives_bars(tmp_path: Path) -> None:
    for repeat, tps in enumerate((300.0, 340.0)):
        record = syn.run(model="tiny", display_name="tiny", peak=4e7, tokens_per_s=tps, device="cpu")
        syn.write(tmp_path, f"runs/tiny-{repeat}/result.json", record)
    record = syn.run(model="tiny", display_name="tiny", rank=4, peak=3e7, tokens_per_s=500.0, device="cpu")
    syn.write(tmp_path, "runs/tiny-r4/result.json", record)
    report = build_report(tmp_path)
    plots = {p.name: p for p in report.plots}
    throughput = plots["throughput-tiny-cpu"]
    assert throughput.png is not None and throughput.caption is not None
    assert "at micro batch 4 (the only batch size measured)" in throughput.caption
    assert "bars from zero" in throughput.caption and "error bars one standard deviation" in throughput.caption
    assert "measured on CPU (AMD EPYC) in 3 run records" in throughput.caption
    assert plots["memory-tiny-cpu"].svg is not None and b"(MB)" in plots["memory-tiny-cpu"].svg  # not GB slivers
    assert [s.title for s in report.sections] == ["tiny on CPU"]


def test_runs_of_one_model_on_two_gpu_types_get_a_section_each(tmp_path: Path) -> None:
    # a heterogeneous sweep (e.g. the Ray backend pinning configurations to A100 and RTX 4090 nodes)
    for gpu, peak in (("NVIDIA A100-SXM4-80GB", 2.0e10), ("NVIDIA GeForce RTX 4090", 1.9e10)):
        record = syn.run(peak=peak)
        record["environment"]["device_names"] = [gpu]
        syn.write(tmp_path, f"runs/{gpu.split()[-1]}/result.json", record)
    report = build_report(tmp_path)
    titles = [s.title for s in report.sections]
    assert titles == ["Llama-3.1-8B on NVIDIA A100-SXM4-80GB", "Llama-3.1-8B on NVIDIA GeForce RTX 4090"]
    assert len({s.slug for s in report.sections}) == 2
    assert all(len(s.runs) == 1 for s in report.sections)


def test_the_renderers_do_not_import_the_builder() -> None:
    from lorabench.report import data, html, text

    for module in (html, text, data):
        source = Path(module.__file__ or "").read_text("utf-8")
        assert "report.build" not in source and "from lorabench.report import" not in source, module.__name__


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
    assert (out / "plots" / "throughput-tiny-cpu.png").is_file()
    (out / "plots" / "mine.png").write_bytes(b"a user's file, not a lorabench plot")
    syn.write(tmp_path / "thin", "e.json", syn.estimate())  # weights only: no peak, no runs, no cost
    report = build_report(tmp_path / "thin")
    assert {p.name: p.skipped for p in report.plots if p.skipped} == {
        "memory": "no measured or predicted peak memory in the records",
        "cost": "no cost rows with a known cost",
        "time": "no self-hosted cost rows or run records with a time",
        "throughput": "no run records with a measured throughput",
    }
    write_report(report, out)
    assert [p.name for p in (out / "plots").iterdir()] == ["mine.png"]  # no stale plot from the earlier report
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
