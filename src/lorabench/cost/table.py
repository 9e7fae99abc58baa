"""Turn cost rows into the seed's "Fine-tuning Cost Comparison" table (display formatting only)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from lorabench.cost.scenario import CostRow
from lorabench.report.tables import Table
from lorabench.units import NA

__all__ = ["CSV_COLUMNS", "cost_csv", "cost_data_rows", "cost_table", "format_duration", "format_usd"]

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


def _cost_cell(row: CostRow) -> str:
    if row.fits is False:
        total, vram = row.device_total_bytes or 0, row.gpu_memory_bytes or 0
        return f"does not fit ({total / 1e9:.1f} > {vram / 1e9:.1f} GB)"
    cell = format_usd(row.cost_usd)
    if row.cost_usd is not None and row.price_status == "unconfirmed":
        cell += " (unconfirmed price)"
    return cell


def _name_cell(row: CostRow) -> str:
    if row.job_creation_ends is not None:
        return f"{row.name} (job creation ends {row.job_creation_ends})"
    return row.name


def cost_table(rows: Sequence[CostRow], with_provenance: bool = True) -> Table:
    """The comparison as a :class:`~lorabench.report.tables.Table`, one line per row."""
    headers = [*HEADERS, "Provenance"] if with_provenance else list(HEADERS)
    body = []
    for row in rows:
        cells = [
            _name_cell(row),
            format_duration(row.time_s),
            f"{row.gpus}×{row.gpu}" if row.gpus and row.gpu else NA,
            _cost_cell(row),
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
        "× vs cheapest: cost ÷ the cheapest self-hosted row that fits; % reduction: how much less that row costs. "
        "A predicted row that does not fit its GPU's memory (device total per GPU) has no time or cost. "
        "Provenance of every figure (input, measured, catalog entry with date and source) is in --json and CSV.",
    )


CSV_COLUMNS = (
    "name",
    "kind",
    "fits",
    "gpu",
    "gpus",
    "time_s",
    "gpu_hours",
    "cost_usd",
    "epochs",
    "billed_tokens",
    "x_vs_cheapest_self_hosted",
    "reduction_pct",
    "device_total_bytes",
    "gpu_memory_bytes",
    "peak_allocated_bytes",
    "time_kind",
    "cost_kind",
    "price_entry",
    "price_status",
    "prices_checked",
    "price_source",
    "secondary_source",
    "job_creation_ends",
    "note",
)


def cost_data_rows(rows: Sequence[CostRow]) -> list[dict[str, Any]]:
    """One flat record per row, numbers only (no display strings).

    Units are in the column names (``time_s``, ``cost_usd``, ``..._bytes``), None is unknown, and the provenance
    of time and price (kind, catalog entry, status, date, source) has its own columns.
    """
    out = []
    for row in rows:
        time_prov = row.provenance.get("time_s", {})
        cost_prov = row.provenance.get("cost_usd", {})
        catalog = cost_prov.get("kind") == "catalog"
        out.append(
            {
                "name": row.name,
                "kind": row.kind,
                "fits": row.fits,
                "gpu": row.gpu,
                "gpus": row.gpus,
                "time_s": row.time_s,
                "gpu_hours": row.gpu_hours,
                "cost_usd": row.cost_usd,
                "epochs": row.epochs,
                "billed_tokens": row.billed_tokens,
                "x_vs_cheapest_self_hosted": row.x_vs_cheapest_self_hosted,
                "reduction_pct": row.reduction_pct,
                "device_total_bytes": row.device_total_bytes,
                "gpu_memory_bytes": row.gpu_memory_bytes,
                "peak_allocated_bytes": row.peak_allocated_bytes,
                "time_kind": time_prov.get("kind"),
                "cost_kind": cost_prov.get("kind"),
                "price_entry": cost_prov.get("entry") if catalog else None,
                "price_status": row.price_status,
                # an unconfirmed price's date is when it was seen on a secondary source, not a confirmation
                "prices_checked": cost_prov.get("prices_checked") if catalog else None,
                "price_source": cost_prov.get("source") if catalog else None,
                "secondary_source": cost_prov.get("secondary_source") if catalog else None,
                "job_creation_ends": row.job_creation_ends,
                "note": row.note,
            }
        )
    return out


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value


def cost_csv(rows: Sequence[CostRow]) -> str:
    """The comparison as CSV of numbers (see :data:`CSV_COLUMNS`; empty cell = unknown)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in cost_data_rows(rows):
        writer.writerow([_csv_value(record[c]) for c in CSV_COLUMNS])
    return buffer.getvalue()
