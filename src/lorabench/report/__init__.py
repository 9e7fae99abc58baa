"""Rendering records as tables (and, later, insights, plots and the HTML page)."""

from lorabench.report.tables import Table, to_csv, to_markdown, to_rst

__all__ = ["Table", "to_csv", "to_markdown", "to_rst"]
