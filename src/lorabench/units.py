"""Display helpers: figures keep their units in their names; only display converts them.

Sizes display in decimal gigabytes (1 GB = 1e9 bytes), as the FinLoRA resource page does;
``GiB`` (2**30 bytes) is available and always labelled. Unknown values display as ``n/a``.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["NA", "format_bytes", "format_count"]

NA = "n/a"
_DIVISORS = {"GB": 1e9, "GiB": float(2**30), "MB": 1e6, "MiB": float(2**20)}


def format_bytes(value: int | float | None, unit: Literal["GB", "GiB", "MB", "MiB"] = "GB", digits: int = 2) -> str:
    """Format a byte count, e.g. ``16.06 GB``; None gives ``n/a``."""
    if value is None:
        return NA
    return f"{value / _DIVISORS[unit]:,.{digits}f} {unit}"


def format_count(value: int | None) -> str:
    """Format a parameter count as the seed does: ``8.03B``, ``4.72M``, ``43.0K``; None gives ``n/a``."""
    if value is None:
        return NA
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= divisor:
            return f"{value / divisor:.2f}{suffix}"
    return str(value)
