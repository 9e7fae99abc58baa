"""Atomic file writes for text and bytes: a temporary file in the same folder, fsynced, then renamed over the target.

The JSON twin is :func:`lorabench.records.write_json_atomic`; a reader never sees half a file from either.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lorabench.errors import LorabenchError

__all__ = ["write_bytes_atomic", "write_text_atomic"]


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + ``os.replace``), creating the folder.

    Raises:
        LorabenchError: The folder cannot be created or written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise LorabenchError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; a report is for sharing: keep an existing file's mode, else rw-r--r--
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise LorabenchError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically.

    Raises:
        LorabenchError: The folder cannot be created or written.
    """
    write_bytes_atomic(path, text.encode("utf-8"))
