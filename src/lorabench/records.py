"""Versioned JSON records, and the one atomic file write every writer in lorabench goes through.

Every record carries ``schema`` and ``schema_version`` so readers can refuse what they do
not understand. Writes go to a temporary file in the same folder, are flushed and fsynced,
renamed over the target, and the folder is fsynced so the rename itself survives a power cut:
a reader (or a process that resumes after a crash) never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lorabench.errors import LorabenchError

__all__ = ["write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def _write_error(error: type[LorabenchError], exc: OSError) -> type[LorabenchError]:
    # Disk full, quota, read-only, size limit, I/O: the machine's fault, not the input's (exit 74, not 2).
    from lorabench.errors import EnvironmentFailure, is_environment_failure

    return EnvironmentFailure if is_environment_failure(exc) else error


def _fsync_folder(folder: Path) -> None:
    # A rename is only durable once the directory entry is on disk; some platforms cannot open a folder.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(
    path: Path, data: bytes, *, what: str = "file", error: type[LorabenchError] = LorabenchError
) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + ``os.replace`` + folder fsync).

    The folder is created if needed. An existing file keeps its permissions; a new one gets rw-r--r--.

    Args:
        path: The file to write.
        data: Its whole content.
        what: What the file is, for the error message (``dataset``, ``record`` ...).
        error: The LorabenchError subclass raised when the write fails.

    Raises:
        LorabenchError: The folder cannot be created or written (as ``error``).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(error, exc)(f"{path}: cannot write {what} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; results are for sharing: keep an existing file's mode, else rw-r--r--
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(error, exc)(f"{path}: cannot write {what} ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_text_atomic(
    path: Path, text: str, *, what: str = "file", error: type[LorabenchError] = LorabenchError
) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`write_bytes_atomic`).

    Raises:
        LorabenchError: The folder cannot be created or written (as ``error``).
    """
    write_bytes_atomic(path, text.encode("utf-8"), what=what, error=error)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically (see :func:`write_bytes_atomic`).

    Raises:
        LorabenchError: The folder cannot be created or written.
    """
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"
    write_text_atomic(path, text)
