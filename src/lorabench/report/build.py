"""The report: read a results folder, compute tables, insights and plots, then write every format at once.

:func:`build_report` does all the work in memory (it reads, validates, computes and draws); :func:`write_report`
renders the formats and only then writes them, each file atomically, so an error leaves no half-written report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lorabench.errors import LorabenchError
from lorabench.report.atomic import write_bytes_atomic, write_text_atomic
from lorabench.report.costs import prices_table, report_cost_table
from lorabench.report.data import REPORT_SCHEMA, REPORT_SCHEMA_VERSION, render_csv, render_json
from lorabench.report.document import Report, plot_path
from lorabench.report.html import render_html
from lorabench.report.inference import INFER_PLOT_NAMES, build_inference, inference_plots
from lorabench.report.insights import compute_insights
from lorabench.report.memory import SizeUnit
from lorabench.report.plots import PLOT_NAMES, Plot, render_plots
from lorabench.report.prices import collect_price_sources
from lorabench.report.sections import build_sections
from lorabench.report.sources import collect_records
from lorabench.report.text import render_markdown, render_rst

if TYPE_CHECKING:
    from lorabench.cost.scenario import CostRow

__all__ = [
    "REPORT_FILES",
    "REPORT_SCHEMA",
    "REPORT_SCHEMA_VERSION",
    "Report",
    "build_report",
    "render_csv",
    "render_html",
    "render_json",
    "render_markdown",
    "render_rst",
    "write_report",
]

REPORT_FILES = ("report.md", "report.rst", "report.csv", "report.json", "report.html")


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
    price_sources, row_sources = collect_price_sources(rows)
    sections = build_sections(sources, unit)
    insights = [
        dataclasses.replace(insight, section=section.slug)
        for section in sections
        for insight in compute_insights(section.data, [], unit, gpu=section.device == "GPU")
    ]
    insights += compute_insights(None, rows, unit)
    drawn = (
        render_plots(sections, rows, sources.runs, unit)
        if plots
        else [Plot(name, name, skipped="not drawn (--no-plots)") for name in PLOT_NAMES]
    )
    return Report(
        sources=sources,
        unit=unit,
        created_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        cost_rows=tuple(rows),
        cost=report_cost_table(rows, row_sources, len(sources.cost_files)),
        price_sources=tuple(price_sources),
        row_sources=tuple(row_sources),
        prices=prices_table(price_sources),
        sections=tuple(sections),
        insights=tuple(insights),
        plots=tuple(drawn + (inference_plots(sources.inferences, draw=plots) if sources.inferences else [])),
        inference=build_inference(sources.inferences),
    )


def _is_ours(name: str) -> bool:
    """A plot file name lorabench writes (``memory.png``, ``memory-<section>.svg``, ``cost.png``, ...)."""
    stem = name.rsplit(".", 1)[0]
    return any(stem == n or stem.startswith(f"{n}-") for n in (*PLOT_NAMES, *INFER_PLOT_NAMES))


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
    folder = out / "plots"
    for stale in sorted(folder.iterdir()) if folder.is_dir() else []:
        ours = stale.suffix in (".png", ".svg") and _is_ours(stale.name)
        if ours and f"plots/{stale.name}" not in blobs and stale.is_file():
            try:
                stale.unlink()
            except OSError as exc:
                raise LorabenchError(f"{stale}: cannot remove a stale plot ({exc.strerror or exc})") from None
    for rel, text in texts.items():
        write_text_atomic(out / rel, text)
        written.append(out / rel)
    return written
