"""The page's cost tables: the seed's comparison (with a Sources column) and the Price sources table under it.

The comparison's figures are formatted by :func:`lorabench.cost.table.cost_table`; the page replaces its
"% reduction" with a column that says in words what the percentage is (how much the cheapest LoRA method saves
against that row) and cites, per row, the catalog entries its figures came from ([1], [2], ... in Price sources).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lorabench.report.prices import PriceSource, RowSources
from lorabench.report.tables import Table
from lorabench.units import NA

if TYPE_CHECKING:
    from lorabench.cost.scenario import CostRow

__all__ = [
    "SAVING_HEADER",
    "X_LABEL",
    "price_text",
    "prices_table",
    "report_cost_table",
    "saving_text",
    "status_text",
]

X_LABEL = "× vs cheapest LoRA method"
SAVING_HEADER = "Saving with cheapest LoRA method"
_X_HEADER = "× vs cheapest self-hosted"
_REDUCTION_HEADER = "% reduction"


def saving_text(row: CostRow) -> str:
    """What choosing the cheapest self-hosted row instead of this one saves: ``94.8%``, ``cheapest``, ``none``.

    A saving that would round up to 100% keeps its digits (``99.9997%``).
    """
    pct = row.reduction_pct
    if pct is None:
        return NA
    x = row.x_vs_cheapest_self_hosted
    if row.kind == "self_hosted" and x is not None and x <= 1.0 + 1e-12:
        return "cheapest"
    if pct < 0:
        return f"none (this row costs {100.0 * (1.0 - 1.0 / (1.0 - pct / 100.0)):.1f}% less)"
    return f"{pct:.1f}%" if pct < 99.95 else f"{pct:.4f}%"


def report_cost_table(rows: Sequence[CostRow], row_sources: Sequence[RowSources], files: int) -> Table | None:
    """The Fine-tuning Cost Comparison as the page shows it (None without rows)."""
    from lorabench.cost.table import cost_table

    if not rows:
        return None
    table = cost_table(rows, with_provenance=False)
    headers = [X_LABEL if h == _X_HEADER else SAVING_HEADER if h == _REDUCTION_HEADER else h for h in table.headers]
    saving = headers.index(SAVING_HEADER) if SAVING_HEADER in headers else None
    body = []
    for row, cells, cited in zip(rows, table.rows, row_sources, strict=True):
        out = list(cells)
        if saving is not None:
            out[saving] = saving_text(row)
        text = cited.display()
        for notice in cited.notices:
            text += f"; winding down: {notice}"
        body.append([*out, text])
    note = (
        "Time: wall clock. Cost: GPU-hours × rate (self-hosted, references) or billed tokens × price (services). "
        f"{X_LABEL}: cost ÷ the cheapest self-hosted (LoRA) row. {SAVING_HEADER}: how much less the cheapest "
        "LoRA method costs than that row (a saving that would round to 100% keeps its digits). "
        "Sources: where each figure came from — input (the scenario), measured, predicted, rule (a provider's "
        "published default), or [n], a catalog price listed with its date and URL under Price sources."
    )
    if files > 1:
        note += f" Rows come from {files} cost records; multiples are against the cheapest self-hosted row of them all."
    return dataclasses.replace(table, headers=[*headers, "Sources"], rows=body, note=note)


def price_text(source: PriceSource) -> str:
    """``$0.26 per GPU-hour``, ``$3.00 per 1M training tokens``, ``$2.67M``; ``- (time only)``."""
    from lorabench.cost.table import format_usd

    if source.price_usd is None:
        return "- (time only)"
    if source.price_per == "job":
        return format_usd(source.price_usd)
    return f"{format_usd(source.price_usd)} per {source.price_per}"


def status_text(source: PriceSource) -> str:
    """``confirmed``, ``unconfirmed (read on URL)``, or ``not stated``."""
    if source.status == "unconfirmed" and source.secondary_source:
        return f"unconfirmed (read on {source.secondary_source})"
    return source.status


def prices_table(sources: Sequence[PriceSource]) -> Table | None:
    """Price sources: every catalog entry the cost figures came from, with its price, date, status and URL."""
    if not sources:
        return None
    rows = [
        [
            f"[{s.ref}]",
            s.entry,
            s.what,
            price_text(s),
            s.checked_display,
            status_text(s),
            s.source or NA,
            s.wind_down or "-",
        ]
        for s in sources
    ]
    return Table(
        title="Price sources",
        headers=["Ref", "Catalog entry", "Figure", "Price", "Checked", "Status", "Source", "Notice"],
        rows=rows,
        note=(
            "Checked: the catalog's prices_checked date. Status: confirmed = read on a copy of the provider's own "
            "page on that date; unconfirmed = read only on a secondary source (its date is when it was seen there, "
            "not a confirmation); not stated = the catalog entry does not say. Prices move: re-check any entry "
            "before signing off a budget (lorabench catalog lists them)."
        ),
    )
