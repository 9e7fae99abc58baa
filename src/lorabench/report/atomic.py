"""Atomic file writes for text and bytes, re-exported from :mod:`lorabench.records` (their one implementation).

A temporary file in the same folder, fsynced, renamed over the target, the folder fsynced: a reader never sees half
a file.
"""

from __future__ import annotations

from lorabench.records import write_bytes_atomic, write_text_atomic

__all__ = ["write_bytes_atomic", "write_text_atomic"]
