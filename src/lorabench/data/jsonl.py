"""Read JSON Lines datasets (FinLoRA's ``{"context", "target"}`` format or any chosen fields)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lorabench.errors import DataError

__all__ = ["read_jsonl"]


def read_jsonl(path: Path, fields: Sequence[str] = ("context", "target")) -> list[dict[str, str]]:
    """Read every record of a JSONL file, keeping ``fields`` (all required, all strings).

    Blank lines are skipped. The whole file is validated before anything is returned.

    Args:
        path: The JSONL file.
        fields: Keys each record must have.

    Returns:
        One dict per non-blank line, with exactly ``fields``.

    Raises:
        DataError: Missing or unreadable file, no records, or a malformed line (its number is given).
    """
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read dataset ({exc.strerror or exc})") from None
    records: list[dict[str, str]] = []
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: malformed JSON ({exc.msg} at column {exc.colno})") from None
                except (ValueError, RecursionError) as exc:  # a number too long to convert, or nesting too deep
                    reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
                    raise DataError(f"{path}:{number}: malformed JSON ({reason})") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
                missing = [f for f in fields if f not in obj]
                if missing:
                    raise DataError(
                        f"{path}:{number}: missing field(s) {', '.join(missing)} (need {', '.join(fields)})"
                    )
                wrong = [f for f in fields if not isinstance(obj[f], str)]
                if wrong:
                    raise DataError(f"{path}:{number}: field(s) {', '.join(wrong)} must be strings")
                records.append({f: obj[f] for f in fields})
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text (line {len(records) + 1} or nearby)") from None
    if not records:
        raise DataError(f"{path}: dataset has no records")
    return records
