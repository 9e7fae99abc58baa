"""Versioned JSON records, written atomically.

Every record carries ``schema`` and ``schema_version`` so readers can refuse what they do
not understand. Writes go to a temporary file in the same folder, are flushed and fsynced,
then renamed over the target: a reader never sees half a record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lorabench.errors import LorabenchError

__all__ = ["write_json_atomic"]


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically (temp file + rename).

    Raises:
        LorabenchError: The folder cannot be created or written.
    """
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise LorabenchError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
