"""Turn cost rows into the seed's "Fine-tuning Cost Comparison" table (display formatting only)."""

from __future__ import annotations

from collections.abc import Sequence

from lorabench.cost.scenario import CostRow
from lorabench.report.tables import Table
from lorabench.units import NA

__all__ = ["cost_table", "format_duration", "format_usd"]

HEADERS = (
    "Models",
    "Time",
    "GPUs",
    "Est. Cost (USD)",
    "× vs cheapest self-hosted",
    "% reduction",
)


def format_duration(seconds: float | None) -> str:
    """``14.9h`` below two days, ``2.2 days`` below ten, ``53 days`` above; None gives ``n/a``."""
    if seconds is None:
        return NA
    hours = seconds / 3600
    if hours >= 240:
        return f"{hours / 24:.0f} days"
    if hours >= 48:
        return f"{hours / 24:.1f} days"
    return f"{hours:.1f}h"


def format_usd(value: float | None) -> str:
    """``$15.50``, ``$2.67M``; None gives ``n/a``."""
    if value is None:
        return NA
    if value >= 1e6:
        return f"${value / 1e6:.2f}M"
    return f"${value:,.2f}"


def _percent(value: float) -> str:
    # never round a 99.9994% saving up to "100.0%"
    return f"{value:.1f}%" if value < 99.95 else f"{value:.4f}%"


def _provenance_tag(row: CostRow) -> str:
    kinds = sorted({p.get("kind", "?") for p in row.provenance.values()})
    return "/".join(kinds)


def cost_table(rows: Sequence[CostRow], with_provenance: bool = True) -> Table:
    """The comparison as a :class:`~lorabench.report.tables.Table`, one line per row."""
    headers = [*HEADERS, "Provenance"] if with_provenance else list(HEADERS)
    body = []
    for row in rows:
        cells = [
            row.name,
            format_duration(row.time_s),
            f"{row.gpus}×{row.gpu}" if row.gpus and row.gpu else NA,
            format_usd(row.cost_usd),
            NA if row.x_vs_cheapest_self_hosted is None else f"{row.x_vs_cheapest_self_hosted:,.1f}×",
            NA if row.reduction_pct is None else _percent(row.reduction_pct),
        ]
        if with_provenance:
            cells.append(_provenance_tag(row))
        body.append(cells)
    return Table(
        title="Fine-tuning Cost Comparison",
        headers=headers,
        rows=body,
        note="Time: wall clock. Cost: GPU-hours × rate (self-hosted, references) or billed tokens × price (services). "
        "× vs cheapest: cost ÷ the cheapest self-hosted row; % reduction: how much less that row costs. "
        "Provenance of every figure (input, measured, catalog entry with date and source) is in --json.",
    )
