"""The report: read a results folder, compute tables, insights and plots, then write every format at once.

:func:`build_report` does all the work in memory (it reads, validates, computes and draws); :func:`write_report`
renders the formats and only then writes them, each file atomically, so an error leaves no half-written report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorabench.errors import LorabenchError
from lorabench.report.atomic import write_bytes_atomic, write_text_atomic
from lorabench.report.inference import INFER_PLOT_NAMES, InferenceSection, build_inference, inference_plots
from lorabench.report.insights import TOPICS, Insight, compute_insights
from lorabench.report.memory import MemoryData, SizeUnit, build_memory, memory_table
from lorabench.report.plots import PLOT_NAMES, Plot, render_plots
from lorabench.report.sources import Sources, collect_records
from lorabench.report.tables import Table, to_csv, to_markdown, to_rst

if TYPE_CHECKING:
    from lorabench.cost.scenario import CostRow

__all__ = [
    "REPORT_FILES",
    "REPORT_SCHEMA",
    "Report",
    "build_report",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_rst",
    "write_report",
]

REPORT_SCHEMA = "lorabench.report"
REPORT_SCHEMA_VERSION = 1
REPORT_FILES = ("report.md", "report.rst", "report.csv", "report.json", "report.html")
TITLE = "Resource Usage and Cost Analysis"
_X_HEADER = "× vs cheapest self-hosted"
_X_LABEL = "× vs cheapest LoRA method"


@dataclass(frozen=True)
class Report:
    """Everything a report shows, computed and ready to render.

    Attributes:
        sources: The records it was made from.
        unit: Size unit (``GB`` decimal, or ``GiB``).
        created_utc: When it was built.
        cost_rows: Cost rows of every cost record.
        cost: The Fine-tuning Cost Comparison table (None without cost records).
        memory_data: Rows and cells of the memory table (None without run or estimate records).
        memory: The GPU memory table.
        insights: Sentences computed from the figures.
        plots: Drawn plots, and skipped ones with the reason.
        inference: The inference tables and lifecycle lines (None without inference records).
    """

    sources: Sources
    unit: SizeUnit
    created_utc: str
    cost_rows: tuple[CostRow, ...]
    cost: Table | None
    memory_data: MemoryData | None
    memory: Table | None
    insights: tuple[Insight, ...]
    plots: tuple[Plot, ...]
    inference: InferenceSection | None = None

    @property
    def tables(self) -> list[tuple[str, Table]]:
        """The tables present, with their section name (``cost``, ``memory``, then the inference ones)."""
        tables = [(name, t) for name, t in (("cost", self.cost), ("memory", self.memory)) if t is not None]
        return tables + (self.inference.tables if self.inference is not None else [])


def _rebased(rows: Sequence[CostRow]) -> list[CostRow]:
    """Rows of several cost records, with the multiples taken against the cheapest self-hosted row of them all."""
    hosted = [r.cost_usd for r in rows if r.kind == "self_hosted" and r.cost_usd is not None]
    cheapest = min(hosted) if hosted else None
    out = []
    for row in rows:
        x = reduction = None
        if cheapest is not None and row.cost_usd is not None and row.cost_usd > 0:
            x, reduction = row.cost_usd / cheapest, 100.0 * (1.0 - cheapest / row.cost_usd)
        out.append(row.model_copy(update={"x_vs_cheapest_self_hosted": x, "reduction_pct": reduction}))
    return out


def _cost_table(rows: Sequence[CostRow], files: int) -> Table | None:
    from lorabench.cost.table import cost_table

    if not rows:
        return None
    table = cost_table(rows)
    note = (table.note or "") + " Self-hosted rows are the LoRA methods."
    if files > 1:
        note += f" Rows come from {files} cost records; multiples are against the cheapest self-hosted row of them all."
    return dataclasses.replace(
        table, headers=[_X_LABEL if h == _X_HEADER else h for h in table.headers], note=note.strip()
    )


def build_report(results_dir: Path, unit: SizeUnit = "GB", plots: bool = True) -> Report:
    """Read ``results_dir`` and compute the whole report (nothing is written).

    Args:
        results_dir: Folder of run, estimate and cost records (searched recursively).
        unit: ``GB`` (1e9 bytes, as the FinLoRA page) or ``GiB``.
        plots: Draw the plots (a few seconds); without, each is listed as not drawn.

    Returns:
        The report, ready for :func:`write_report`.

    Raises:
        DataError: No lorabench record in the folder, or a malformed one (named).
    """
    sources = collect_records(results_dir)
    rows: list[CostRow] = []
    for row in sources.cost_rows:  # the same scenario saved twice shows once
        if all(row != seen for seen in rows):
            rows.append(row)
    if len(sources.cost_files) > 1:
        rows = _rebased(rows)
    memory = build_memory(sources)
    return Report(
        sources=sources,
        unit=unit,
        created_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        cost_rows=tuple(rows),
        cost=_cost_table(rows, len(sources.cost_files)),
        memory_data=memory,
        memory=memory_table(memory, unit) if memory is not None else None,
        insights=tuple(compute_insights(memory, rows, unit)),
        plots=tuple(
            (
                render_plots(memory, rows, sources.runs, unit)
                if plots
                else [Plot(name, name, skipped="not drawn (--no-plots)") for name in PLOT_NAMES]
            )
            + (inference_plots(sources.inferences, draw=plots) if sources.inferences else [])
        ),
        inference=build_inference(sources.inferences),
    )


def plot_path(plot: Plot, ext: str) -> str:
    """Where a plot's file goes, relative to the report folder."""
    return f"plots/{plot.name}.{ext}"


def provenance_line(report: Report) -> str:
    """``Generated by lorabench 0.1.0 on ... from 12 records in DIR (...)``."""
    from lorabench import __version__

    src = report.sources
    statuses = {s: sum(1 for r in src.runs if r.status == s) for s in ("ok", "oom", "failed")}
    runs = ", ".join(f"{n} {s}" for s, n in statuses.items() if n)
    parts = [
        f"{len(src.runs)} run record{'s' if len(src.runs) != 1 else ''}" + (f" ({runs})" if runs else ""),
        f"{len(src.estimates)} estimate record{'s' if len(src.estimates) != 1 else ''}",
        f"{len(src.cost_files)} cost record{'s' if len(src.cost_files) != 1 else ''}",
    ]
    if src.inferences:
        parts.append(f"{len(src.inferences)} inference record{'s' if len(src.inferences) != 1 else ''}")
    ignored = f"; {src.ignored} other JSON file{'s' if src.ignored != 1 else ''} ignored" if src.ignored else ""
    return (
        f"Generated by lorabench {__version__} on {report.created_utc} from {', '.join(parts)} "
        f"in {src.results_dir}{ignored}."
    )


def datasets(report: Report) -> list[str]:
    """The datasets the measured runs trained on."""
    return sorted({r.dataset for r in report.sources.runs if r.dataset})


def insights_by_topic(report: Report) -> list[tuple[str, list[Insight]]]:
    """Insights grouped under their topic titles, in the report's order."""
    groups = [(title, [i for i in report.insights if i.topic == topic]) for topic, title in TOPICS.items()]
    return [(title, items) for title, items in groups if items]


def _plots_md(report: Report, names: Sequence[str]) -> list[str]:
    return [f"![{p.title}]({plot_path(p, 'png')})\n" for p in report.plots if p.name in names and p.png]


def _skipped(report: Report) -> list[str]:
    return [f"{p.title}: skipped ({p.skipped})" for p in report.plots if p.skipped]


def _lifecycle_lines(report: Report) -> list[str]:
    lines = list(report.inference.lifecycle_lines) if report.inference is not None else []
    return [f"- {line}" for line in lines] + ([""] if lines else [])


def render_markdown(report: Report) -> str:
    """The report as Markdown (GitHub-flavoured tables, plots as image links)."""
    out = [f"# {TITLE}", "", f"*{provenance_line(report)}*", ""]
    out += ["## Fine-tuning Costs", ""]
    out += [to_markdown(report.cost)] if report.cost else ["No cost records (lorabench.cost) in the results.", ""]
    out += _plots_md(report, ("cost", "time"))
    out += ["## GPU Memory Requirements", ""]
    out += [to_markdown(report.memory)] if report.memory else ["No run or estimate records in the results.", ""]
    out += _plots_md(report, ("memory", "throughput"))
    if report.inference is not None:
        out += ["## Inference", ""]
        out += [to_markdown(table) for _, table in report.inference.tables]
        out += _lifecycle_lines(report)
        out += _plots_md(report, INFER_PLOT_NAMES)
    out += ["## Insights", ""]
    if not report.insights:
        out += ["The records hold too few figures for any insight.", ""]
    for title, items in insights_by_topic(report):
        out += [f"**{title}:**", ""] + [f"- {i.text}" for i in items] + [""]
    skipped = _skipped(report)
    if skipped:
        out += ["## Plots skipped", ""] + [f"- {s}" for s in skipped] + [""]
    if datasets(report):
        out += ["## Datasets", ""] + [f"- {d}" for d in datasets(report)] + [""]
    return "\n".join(out).rstrip() + "\n"


def _rst_heading(text: str, char: str) -> list[str]:
    return [text, char * max(len(text), 4), ""]


def render_rst(report: Report) -> str:
    """The report as reStructuredText, tables as Sphinx list-tables like the FinLoRA resource page."""
    out = [*_rst_heading(TITLE, "~"), f"*{provenance_line(report)}*", ""]
    out += _rst_heading("Fine-tuning Costs", "-")
    if report.cost:
        widths = [25, 12, 14, 14, 14, 12, 14][: len(report.cost.headers)]
        out += [to_rst(report.cost, widths)]
    else:
        out += ["No cost records (lorabench.cost) in the results.", ""]
    out += _rst_images(report, ("cost", "time"))
    out += _rst_heading("GPU Memory Requirements", "-")
    if report.memory:
        widths = [30, 15, *(15 for _ in report.memory.headers[2:-2]), 15, 15]
        out += [to_rst(report.memory, widths)]
    else:
        out += ["No run or estimate records in the results.", ""]
    out += _rst_images(report, ("memory", "throughput"))
    if report.inference is not None:
        out += _rst_heading("Inference", "-")
        out += [to_rst(table) for _, table in report.inference.tables]
        out += _lifecycle_lines(report)
        out += _rst_images(report, INFER_PLOT_NAMES)
    out += _rst_heading("Insights", "-")
    if not report.insights:
        out += ["The records hold too few figures for any insight.", ""]
    for title, items in insights_by_topic(report):
        out += [f"**{title}:**", ""] + [f"- {i.text}" for i in items] + [""]
    skipped = _skipped(report)
    if skipped:
        out += _rst_heading("Plots skipped", "-") + [f"- {s}" for s in skipped] + [""]
    if datasets(report):
        out += _rst_heading("Datasets", "-") + [f"- ``{d}``" for d in datasets(report)] + [""]
    return "\n".join(out).rstrip() + "\n"


def _rst_images(report: Report, names: Sequence[str]) -> list[str]:
    out = []
    for plot in report.plots:
        if plot.name in names and plot.png:
            out += [f".. image:: {plot_path(plot, 'png')}", f"   :alt: {plot.title}", ""]
    return out


def render_csv(report: Report) -> str:
    """Both tables in one CSV: each block's header and rows start with a ``section`` column (cost, memory)."""
    blocks = []
    for name, table in report.tables:
        blocks.append(to_csv(Table(table.title, ["section", *table.headers], [[name, *row] for row in table.rows])))
    return "".join(blocks)


def _memory_json(data: MemoryData) -> dict[str, Any]:
    return {
        "batches": list(data.batches),
        "other_batches": list(data.other_batches),
        "counters": list(data.counters),
        "engines": list(data.engines),
        "bases": [
            {
                "name": b.name,
                "model": b.model_key,
                "base_params": b.base_params,
                "base_bytes_by_bits": {str(k): v for k, v in b.base_bytes_by_bits.items()},
            }
            for b in data.bases
        ],
        "rows": [
            {
                "name": r.name,
                "model": r.key.model_key,
                "model_name": r.model_name,
                "method": r.key.method,
                "rank": r.key.rank,
                "bits": r.key.bits,
                "setting": dict(r.key.setting),
                "trainable_params": r.trainable_params,
                "weights_bytes": r.weights_bytes,
                "base16_bytes": r.base16_bytes,
                "percentage": r.percentage,
                "failed_runs": list(r.failed_runs),
                "cells": [dataclasses.asdict(r.cells[b]) for b in sorted(r.cells)],
            }
            for r in data.rows
        ],
    }


def render_json(report: Report) -> str:
    """The report as one versioned JSON document: tables, every row and cell, insights, plots and provenance."""
    from lorabench import __version__

    src = report.sources
    payload = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "lorabench_version": __version__,
        "created_utc": report.created_utc,
        "unit": {"GB": "GB = 1e9 bytes", "GiB": "GiB = 2**30 bytes"}[report.unit],
        "marks": {"(m)": "measured (run record)", "(p)": "predicted (estimate record)", "n/a": "unknown"},
        "provenance": {
            "results_dir": src.results_dir,
            "summary": provenance_line(report),
            "run_records": [r.path for r in src.runs],
            "estimate_records": [e.path for e in src.estimates],
            "cost_records": list(src.cost_files),
            "inference_records": [r.path for r in src.inferences],
            "ignored_json_files": src.ignored,
            "datasets": datasets(report),
        },
        "tables": {
            name: {"title": t.title, "headers": list(t.headers), "rows": [list(r) for r in t.rows], "note": t.note}
            for name, t in report.tables
        },
        "cost_rows": [r.model_dump(mode="json") for r in report.cost_rows],
        "memory": _memory_json(report.memory_data) if report.memory_data is not None else None,
        "insights": [dataclasses.asdict(i) for i in report.insights],
        "inference": {
            "cells": [dataclasses.asdict(r) for r in src.inferences],
            "lifecycle": list(report.inference.lifecycle_lines),
        }
        if report.inference is not None
        else None,
        "plots": [
            {
                "name": p.name,
                "title": p.title,
                "png": plot_path(p, "png") if p.png else None,
                "svg": plot_path(p, "svg") if p.svg else None,
                "skipped": p.skipped,
            }
            for p in report.plots
        ],
    }
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"


def write_report(report: Report, out: Path) -> list[Path]:
    """Render every format, then write them (and the plots) into ``out``, each file atomically.

    Plot files of a plot skipped this time are removed, so the folder never shows a stale plot.

    Args:
        report: A built report.
        out: The output folder (created).

    Returns:
        The files written.

    Raises:
        LorabenchError: The folder cannot be created or written.
    """
    from lorabench.report.html import render_html

    texts = {
        "report.md": render_markdown(report),
        "report.rst": render_rst(report),
        "report.csv": render_csv(report),
        "report.json": render_json(report),
        "report.html": render_html(report),
    }
    blobs: dict[str, bytes] = {}
    for plot in report.plots:
        if plot.png is not None and plot.svg is not None:
            blobs[plot_path(plot, "png")] = plot.png
            blobs[plot_path(plot, "svg")] = plot.svg
    written = []
    for rel, data in blobs.items():
        write_bytes_atomic(out / rel, data)
        written.append(out / rel)
    for name in (*PLOT_NAMES, *INFER_PLOT_NAMES):
        for ext in ("png", "svg"):
            stale = out / "plots" / f"{name}.{ext}"
            if f"plots/{name}.{ext}" not in blobs and stale.is_file():
                try:
                    stale.unlink()
                except OSError as exc:
                    raise LorabenchError(f"{stale}: cannot remove a stale plot ({exc.strerror or exc})") from None
    for rel, text in texts.items():
        write_text_atomic(out / rel, text)
        written.append(out / rel)
    return written
