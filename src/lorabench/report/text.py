"""The report as Markdown and as reStructuredText (Sphinx list-tables, like the FinLoRA resource page).

Layout, as the seed's page: Fine-tuning Costs (the comparison, then its Price sources), GPU Memory Requirements
(one sub-section per model and device class, each saying what was measured where), Inference, Insights (grouped
the same way), then skipped plots and datasets.
"""

from __future__ import annotations

from collections.abc import Sequence

from lorabench.report.document import (
    TITLE,
    Report,
    datasets,
    insight_groups,
    plot_path,
    provenance_line,
    skipped_plots,
)
from lorabench.report.inference import INFER_PLOT_NAMES
from lorabench.report.plots import Plot
from lorabench.report.tables import to_markdown, to_rst

__all__ = ["render_markdown", "render_rst"]

NO_COST = "No cost records (lorabench.cost) in the results."
NO_MEMORY = "No run or estimate records in the results."
NO_INSIGHTS = "The records hold too few figures for any insight."


def _md_plots(plots: Sequence[Plot]) -> list[str]:
    out = []
    for plot in plots:
        out += [f"![{plot.title}]({plot_path(plot, 'png')})", ""]
        if plot.caption:
            out += [f"*{plot.caption}*", ""]
    return out


def _lifecycle(report: Report) -> list[str]:
    lines = report.inference.lifecycle_lines if report.inference is not None else ()
    return [f"- {line}" for line in lines] + ([""] if lines else [])


def render_markdown(report: Report) -> str:
    """The report as Markdown (GitHub-flavoured tables, plots as image links with their captions)."""
    out = [f"# {TITLE}", "", f"*{provenance_line(report)}*", ""]
    out += ["## Fine-tuning Costs", ""]
    out += [to_markdown(report.cost)] if report.cost else [NO_COST, ""]
    if report.prices:
        out += [to_markdown(report.prices)]
    out += _md_plots(report.section_plots(None, ("cost", "time")))
    out += ["## GPU Memory Requirements", ""]
    if not report.sections:
        out += [NO_MEMORY, ""]
    for section in report.sections:
        out += [f"### {section.title}", "", f"*{section.where_sentence}*", ""]
        out += [to_markdown(section.table)]
        out += _md_plots(report.section_plots(section.slug))
    if report.inference is not None:
        out += ["## Inference", ""]
        out += [to_markdown(table) for _, table in report.inference.tables]
        out += _lifecycle(report)
        out += _md_plots(report.section_plots(None, INFER_PLOT_NAMES))
    out += ["## Insights", ""]
    groups = insight_groups(report)
    if not groups:
        out += [NO_INSIGHTS, ""]
    for heading, topics in groups:
        out += [f"### {heading}", ""]
        for title, items in topics:
            out += [f"**{title}:**", ""] + [f"- {i.text}" for i in items] + [""]
    skipped = skipped_plots(report)
    if skipped:
        out += ["## Plots skipped", ""] + [f"- {s}" for s in skipped] + [""]
    if datasets(report):
        out += ["## Datasets", ""] + [f"- {d}" for d in datasets(report)] + [""]
    return "\n".join(out).rstrip() + "\n"


def _rst_heading(text: str, char: str) -> list[str]:
    return [text, char * max(len(text), 4), ""]


def _rst_plots(plots: Sequence[Plot]) -> list[str]:
    out = []
    for plot in plots:
        out += [f".. figure:: {plot_path(plot, 'png')}", f"   :alt: {plot.title}", ""]
        if plot.caption:
            out += [f"   {plot.caption}", ""]
    return out


def render_rst(report: Report) -> str:
    """The report as reStructuredText, tables as Sphinx list-tables like the FinLoRA resource page."""
    out = [*_rst_heading(TITLE, "~"), f"*{provenance_line(report)}*", ""]
    out += _rst_heading("Fine-tuning Costs", "-")
    if report.cost:
        widths = [25, 12, 14, 14, 14, 14, 20][: len(report.cost.headers)]
        widths += [15] * (len(report.cost.headers) - len(widths))
        out += [to_rst(report.cost, widths)]
    else:
        out += [NO_COST, ""]
    if report.prices:
        out += [to_rst(report.prices)]
    out += _rst_plots(report.section_plots(None, ("cost", "time")))
    out += _rst_heading("GPU Memory Requirements", "-")
    if not report.sections:
        out += [NO_MEMORY, ""]
    for section in report.sections:
        out += [*_rst_heading(section.title, "^"), f"*{section.where_sentence}*", ""]
        widths = [30, *(15 for _ in section.table.headers[1:])]
        out += [to_rst(section.table, widths)]
        out += _rst_plots(report.section_plots(section.slug))
    if report.inference is not None:
        out += _rst_heading("Inference", "-")
        out += [to_rst(table) for _, table in report.inference.tables]
        out += _lifecycle(report)
        out += _rst_plots(report.section_plots(None, INFER_PLOT_NAMES))
    out += _rst_heading("Insights", "-")
    groups = insight_groups(report)
    if not groups:
        out += [NO_INSIGHTS, ""]
    for heading, topics in groups:
        out += _rst_heading(heading, "^")
        for title, items in topics:
            out += [f"**{title}:**", ""] + [f"- {i.text}" for i in items] + [""]
    skipped = skipped_plots(report)
    if skipped:
        out += _rst_heading("Plots skipped", "-") + [f"- {s}" for s in skipped] + [""]
    if datasets(report):
        out += _rst_heading("Datasets", "-") + [f"- ``{d}``" for d in datasets(report)] + [""]
    return "\n".join(out).rstrip() + "\n"
