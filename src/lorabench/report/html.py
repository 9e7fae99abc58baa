"""The report as one self-contained HTML page: inline CSS, plots embedded as base64 PNG, no script, no fetch.

Every value from the records (model names, dataset strings, notes, insights) goes through :func:`html.escape`, and a
Content-Security-Policy forbids scripts and any resource that is not embedded, so a hostile string in a record can
neither run nor load anything.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from html import escape

from lorabench.report.costs import price_text, status_text
from lorabench.report.document import (
    TITLE,
    Report,
    datasets,
    insight_groups,
    provenance_line,
)
from lorabench.report.inference import INFER_PLOT_NAMES
from lorabench.report.plots import Plot
from lorabench.report.prices import safe_url
from lorabench.report.tables import Table

__all__ = ["CSP", "render_html"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2433;
       background: #fff; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.8rem; margin-bottom: 0.2rem; }
h2 { margin-top: 2.2rem; border-bottom: 2px solid #e3e7ef; padding-bottom: 0.3rem; }
h3 { margin-bottom: 0.3rem; }
.meta, .note { color: #5a6473; font-size: 0.9rem; }
table { border-collapse: collapse; width: 100%; margin: 0.8rem 0 0.4rem; font-size: 0.92rem; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.4rem; }
th, td { border: 1px solid #d5dae3; padding: 5px 9px; text-align: right; white-space: nowrap; }
th { background: #f1f4f9; white-space: normal; vertical-align: bottom; }
th:first-child, td:first-child { text-align: left; white-space: normal; }
tbody tr:nth-child(even) { background: #fafbfd; }
td.measured { color: #14532d; font-weight: 600; }
td.predicted { color: #1e3a8a; }
td.unknown { color: #8a93a3; }
td.unconfirmed { color: #9a3412; font-weight: 600; }
td.notice { color: #9a3412; white-space: normal; text-align: left; min-width: 6em; }
td.wrap { white-space: normal; text-align: left; overflow-wrap: anywhere; min-width: 9em; }
#prices-table { font-size: 0.84rem; }
#prices-table td { text-align: left; white-space: normal; overflow-wrap: anywhere; }
td.url { white-space: normal; text-align: left; overflow-wrap: anywhere; min-width: 12em; }
p.where { color: #34495e; font-style: italic; margin-top: 0; }
a { color: #1d4ed8; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7ef; }
figcaption { color: #5a6473; font-size: 0.85rem; }
ul.insights li { margin-bottom: 0.35rem; }
code { background: #f1f4f9; padding: 1px 4px; border-radius: 3px; }
"""


def _cell_class(text: str) -> str:
    if text.endswith("(m)"):
        return ' class="measured"'
    if text.endswith("(p)"):
        return ' class="predicted"'
    if text == "n/a":
        return ' class="unknown"'
    return ""


def _sources_cell(text: str) -> str:
    """A cost row's Sources cell, each ``[n]`` a link to its line of Price sources."""
    return re.sub(r"\[(\d+)\]", r'<a href="#price-\1">[\1]</a>', escape(text))


def _table(table: Table, table_id: str, sources_column: bool = False) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    last = len(table.headers) - 1

    def cell(index: int, text: str) -> str:
        if sources_column and index == last:
            return f'<td class="wrap">{_sources_cell(text)}</td>'
        return f"<td{_cell_class(text)}>{escape(text)}</td>"

    body = "".join("<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>\n" for row in table.rows)
    note = f'<p class="note">{escape(table.note)}</p>\n' if table.note else ""
    return (
        f'<table id="{table_id}">\n<caption>{escape(table.title)}</caption>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n{note}"
    )


def _link(url: str | None) -> str:
    """A link to an http(s) URL (escaped; it opens nothing by itself: the policy forbids fetches, not navigation)."""
    safe = safe_url(url)
    if safe is None:
        return escape(url or "n/a")
    return f'<a href="{escape(safe)}" rel="noopener noreferrer">{escape(safe)}</a>'


def _prices(report: Report) -> str:
    """The Price sources table: the date and URL of every catalog price, unconfirmed ones and wind-downs marked."""
    if report.prices is None:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in report.prices.headers)
    rows = []
    for s in report.price_sources:
        status = status_text(s)
        status_cell = escape(status) if s.status != "unconfirmed" else escape("unconfirmed")
        if s.status == "unconfirmed" and s.secondary_source:
            status_cell += f" (read on {_link(s.secondary_source)})"
        notice = escape(s.wind_down) if s.wind_down else "-"
        if s.wind_down and s.wind_down_source:
            notice += f" ({_link(s.wind_down_source)})"
        rows.append(
            f'<tr id="price-{s.ref}"><td>[{s.ref}]</td><td>{escape(s.entry)}</td><td>{escape(s.what)}</td>'
            f"<td>{escape(price_text(s))}</td><td>{escape(s.checked_display)}</td>"
            f'<td class="{"unconfirmed" if s.status == "unconfirmed" else "wrap"}">{status_cell}</td>'
            f'<td class="url">{_link(s.source)}</td><td class="notice">{notice}</td></tr>\n'
        )
    note = f'<p class="note">{escape(report.prices.note)}</p>\n' if report.prices.note else ""
    return (
        f'<table id="prices-table">\n<caption>{escape(report.prices.title)}</caption>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{''.join(rows)}</tbody>\n</table>\n{note}"
    )


def _figures(plots: Sequence[Plot]) -> str:
    out = []
    for plot in plots:
        data = base64.b64encode(plot.png or b"").decode("ascii")
        caption = escape(plot.title) + (f" — {escape(plot.caption)}" if plot.caption else "")
        out.append(
            f'<figure id="plot-{escape(plot.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(plot.title)}"><figcaption>{caption}</figcaption></figure>\n'
        )
    return "".join(out)


def _inference(report: Report) -> str:
    if report.inference is None:
        return ""
    parts = ['<section id="inference">\n<h2>Inference</h2>\n']
    parts += [_table(table, f"{name.replace('_', '-')}-table") for name, table in report.inference.tables]
    if report.inference.lifecycle_lines:
        parts.append('<ul class="lifecycle">\n')
        parts += [f"<li>{escape(line)}</li>\n" for line in report.inference.lifecycle_lines]
        parts.append("</ul>\n")
    parts += [_figures(report.section_plots(None, INFER_PLOT_NAMES)), "</section>\n"]
    return "".join(parts)


def _memory(report: Report) -> str:
    parts = ['<section id="memory">\n<h2>GPU Memory Requirements</h2>\n']
    if not report.sections:
        parts.append("<p>No run or estimate records in the results.</p>\n")
    for index, section in enumerate(report.sections):
        table_id = "memory-table" if index == 0 else f"memory-table-{escape(section.slug)}"
        parts += [
            f'<section id="memory-{escape(section.slug)}" class="memory-section">\n',
            f"<h3>{escape(section.title)}</h3>\n",
            f'<p class="where">{escape(section.where_sentence)}</p>\n',
            _table(section.table, table_id),
            _figures(report.section_plots(section.slug)),
            "</section>\n",
        ]
    parts.append("</section>\n")
    return "".join(parts)


def render_html(report: Report) -> str:
    """The whole report as one HTML page with nothing external: styles inline, plots as data URIs."""
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{escape(TITLE)} — lorabench</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n",
        f'<h1>{escape(TITLE)}</h1>\n<p class="meta">{escape(provenance_line(report))}</p>\n',
        '<section id="costs">\n<h2>Fine-tuning Costs</h2>\n',
        _table(report.cost, "cost-table", sources_column=True)
        if report.cost
        else "<p>No cost records (lorabench.cost) in the results.</p>\n",
        _prices(report),
        _figures(report.section_plots(None, ("cost", "time"))),
        "</section>\n",
        _memory(report),
        _inference(report),
        '<section id="insights">\n<h2>Insights</h2>\n',
    ]
    groups = insight_groups(report)
    if not groups:
        parts.append("<p>The records hold too few figures for any insight.</p>\n")
    for heading, topics in groups:
        parts.append(f"<h3>{escape(heading)}</h3>\n")
        for title, items in topics:
            parts.append(f'<h4>{escape(title)}</h4>\n<ul class="insights">\n')
            parts += [f"<li>{escape(i.text)}</li>\n" for i in items]
            parts.append("</ul>\n")
    parts.append("</section>\n")
    skipped = [p for p in report.plots if p.skipped]
    if skipped:
        parts.append('<section id="plots-skipped">\n<h2>Plots skipped</h2>\n<ul>\n')
        parts += [f"<li>{escape(p.title)}: {escape(p.skipped or '')}</li>\n" for p in skipped]
        parts.append("</ul>\n</section>\n")
    names = datasets(report)
    if names:
        parts.append('<section id="datasets">\n<h2>Datasets</h2>\n<ul>\n')
        parts += [f"<li><code>{escape(d)}</code></li>\n" for d in names]
        parts.append("</ul>\n</section>\n")
    parts.append("</main>\n</body>\n</html>\n")
    return "".join(parts)
