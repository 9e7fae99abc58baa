"""``lorabench report RESULTS_DIR``: the resource page (tables, insights, plots, HTML) from a folder of records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["report_command"]


def report_command(
    results_dir: Annotated[
        Path,
        typer.Argument(help="Folder of run records (result.json), estimate and cost records; searched recursively."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default: RESULTS_DIR/report).")
    ] = None,
    gib: Annotated[bool, typer.Option("--gib", help="Sizes in GiB (2^30 bytes) instead of GB (1e9 bytes).")] = False,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the plots (matplotlib).")] = True,
) -> None:
    """Write the cost and GPU memory tables, insights and plots as Markdown, RST, CSV, JSON and one HTML page."""
    from lorabench.report.build import build_report, write_report

    report = build_report(results_dir, unit="GiB" if gib else "GB", plots=plots)
    target = out if out is not None else results_dir / "report"
    written = write_report(report, target)
    src = report.sources
    typer.echo(
        f"read {len(src.runs)} run, {len(src.estimates)} estimate and {len(src.cost_files)} cost record(s) "
        f"from {results_dir}"
    )
    if report.sections:
        typer.echo("memory sections: " + "; ".join(f"{s.title} ({s.where})" for s in report.sections))
    tables = ", ".join(f"{name} ({len(t.rows)} rows)" for name, t in report.tables) or "none"
    drawn = [p.name for p in report.plots if p.png]
    typer.echo(f"tables: {tables}; insights: {len(report.insights)}; plots: {', '.join(drawn) or 'none'}")
    for plot in report.plots:
        if plot.skipped:
            typer.echo(f"plot {plot.name} skipped: {plot.skipped}")
    typer.echo(f"wrote {len(written)} files to {target}; open {target / 'report.html'}")
