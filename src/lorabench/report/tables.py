"""Plain tables in Markdown, reStructuredText list-table (Sphinx, as FinLoRA's docs use) and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Table", "to_csv", "to_markdown", "to_rst"]


@dataclass(frozen=True)
class Table:
    """A titled table of already formatted cells, with an optional note under it."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    note: str | None = None


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    """Render as a GitHub-flavoured Markdown table under a bold title."""
    lines = [f"**{table.title}**", "", "| " + " | ".join(_md_cell(h) for h in table.headers) + " |"]
    lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"*{table.note}*"]
    return "\n".join(lines) + "\n"


def to_rst(table: Table, widths: Sequence[int] | None = None) -> str:
    """Render as a Sphinx ``list-table`` directive, like the FinLoRA resource page."""
    lines = [f".. list-table:: {table.title}", "   :header-rows: 1"]
    if widths:
        lines.append("   :widths: " + " ".join(str(w) for w in widths))
    lines.append("")
    for row in [table.headers, *table.rows]:
        for i, cell in enumerate(row):
            lines.append(("   * - " if i == 0 else "     - ") + (str(cell).replace("\n", " ") or "-"))
    if table.note:
        lines += ["", f"*{table.note}*"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """Render as CSV (header row first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.headers)
    writer.writerows(table.rows)
    return buffer.getvalue()
