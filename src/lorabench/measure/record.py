"""The run record: one versioned JSON document per measured run, written atomically."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from lorabench.errors import MeasurementError
from lorabench.records import write_json_atomic

__all__ = ["RECORD_NAME", "RUN_SCHEMA", "RUN_SCHEMA_VERSION", "device_class", "read_run_record", "write_run_record"]

RUN_SCHEMA = "lorabench.run"
RUN_SCHEMA_VERSION = 1
RECORD_NAME = "result.json"


def write_run_record(out: Path, record: dict[str, Any]) -> Path:
    """Stamp schema, version and time on ``record`` and write it to ``out/result.json`` atomically."""
    stamped = {
        "schema": RUN_SCHEMA,
        "schema_version": RUN_SCHEMA_VERSION,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **record,
    }
    path = out / RECORD_NAME
    write_json_atomic(path, stamped)
    return path


def read_run_record(path: Path) -> dict[str, Any]:
    """Read a run record from a file or a run folder.

    Raises:
        MeasurementError: Missing, unreadable, or not a lorabench run record of a known version.
    """
    file = path / RECORD_NAME if path.is_dir() else path
    try:
        record = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: also bad UTF-8 and malformed JSON
        raise MeasurementError(f"{file}: cannot read a run record ({exc})") from None
    if not isinstance(record, dict) or record.get("schema") != RUN_SCHEMA:
        raise MeasurementError(f"{file}: not a lorabench run record (schema {RUN_SCHEMA!r})")
    if record.get("schema_version") != RUN_SCHEMA_VERSION:
        raise MeasurementError(f"{file}: run record version {record.get('schema_version')!r} is not supported")
    return record


def device_class(record: dict[str, Any]) -> str:
    """The GPU (or CPU) a record was measured on, the key ``lorabench report`` groups rows by.

    The device name the run saw (``environment.device_names[0]``, e.g. ``NVIDIA A100-SXM4-80GB``), else the Ray
    accelerator type of the node it ran on (``placement.accelerator_type``), else ``unknown device``.
    """
    placement = record.get("placement") or {}
    names = (record.get("environment") or {}).get("device_names") or []
    return str((names[0] if names else None) or placement.get("accelerator_type") or "unknown device")
