"""The report layer: the FinLoRA resource page regenerated from records — tables, insights, plots and HTML.

``tables`` (Markdown, Sphinx list-table, CSV) loads eagerly: the cost layer renders with it. The rest loads on
first use, so importing :mod:`lorabench.report` stays light (no matplotlib) and the cost layer, which the report
reads, can import the tables without a cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lorabench.report.tables import Table, to_csv, to_markdown, to_rst

if TYPE_CHECKING:
    from lorabench.report.atomic import write_bytes_atomic, write_text_atomic
    from lorabench.report.build import Report, build_report, write_report
    from lorabench.report.insights import Insight, compute_insights
    from lorabench.report.sources import COST_SCHEMA, COST_SCHEMA_VERSION, Sources, collect_records, cost_record

__all__ = [
    "COST_SCHEMA",
    "COST_SCHEMA_VERSION",
    "Insight",
    "Report",
    "Sources",
    "Table",
    "build_report",
    "collect_records",
    "compute_insights",
    "cost_record",
    "to_csv",
    "to_markdown",
    "to_rst",
    "write_bytes_atomic",
    "write_report",
    "write_text_atomic",
]

_LAZY = {
    "COST_SCHEMA": "sources",
    "COST_SCHEMA_VERSION": "sources",
    "Sources": "sources",
    "collect_records": "sources",
    "cost_record": "sources",
    "Report": "build",
    "build_report": "build",
    "write_report": "build",
    "Insight": "insights",
    "compute_insights": "insights",
    "write_bytes_atomic": "atomic",
    "write_text_atomic": "atomic",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
