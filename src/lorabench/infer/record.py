"""The inference record: one versioned JSON document per measured cell (variant x batch x prompt length).

Records go into the same results folder as training run records (``lorabench report`` searches it recursively and
reads both). This module is pure (no torch): the report reads records with it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lorabench.errors import MeasurementError
from lorabench.records import write_json_atomic

__all__ = [
    "INFER_SCHEMA",
    "INFER_SCHEMA_VERSION",
    "SLOWDOWN_METHOD",
    "read_infer_record",
    "record_name",
    "slowdowns",
    "summary_row",
    "write_infer_record",
]

INFER_SCHEMA = "lorabench.infer"
INFER_SCHEMA_VERSION = 1
SLOWDOWN_METHOD = (
    "(reference output tokens/s / variant output tokens/s - 1) x 100: extra time per output token against the "
    "reference variant (base; for multi also the single unmerged adapter) in the same cell"
)


_PAIRS = (
    ("unmerged", "base"),
    ("merged", "base"),
    ("multi", "base"),
    ("multi", "unmerged"),
    ("base-quant", "base"),
    ("unmerged-quant", "base-quant"),
)


def record_name(variant: str, batch: int, prompt_len: int, max_new_tokens: int) -> str:
    """File name of a cell's record, e.g. ``infer-unmerged-b4-p128-n16.json``."""
    return f"infer-{variant}-b{batch}-p{prompt_len}-n{max_new_tokens}.json"


def write_infer_record(out: Path, record: Mapping[str, Any]) -> Path:
    """Stamp schema, version and time on ``record`` and write it into ``out`` atomically.

    Returns:
        The file written.
    """
    from lorabench import __version__

    cell = record["cell"]
    stamped = {
        "schema": INFER_SCHEMA,
        "schema_version": INFER_SCHEMA_VERSION,
        "lorabench_version": __version__,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **record,
    }
    path = out / record_name(record["variant"], cell["batch_size"], cell["prompt_len"], cell["max_new_tokens"])
    write_json_atomic(path, stamped)
    return path


def read_infer_record(path: Path) -> dict[str, Any]:
    """Read one inference record.

    Raises:
        MeasurementError: Unreadable, not an inference record, or of an unknown version.
    """
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MeasurementError(f"{path}: cannot read an inference record ({exc})") from None
    if not isinstance(record, dict) or record.get("schema") != INFER_SCHEMA:
        raise MeasurementError(f"{path}: not a lorabench inference record (schema {INFER_SCHEMA!r})")
    if record.get("schema_version") != INFER_SCHEMA_VERSION:
        raise MeasurementError(f"{path}: inference record version {record.get('schema_version')!r} is not supported")
    return record


def _stat(metrics: Mapping[str, Any], name: str, stat: str) -> Any:
    value = metrics.get(name)
    return value.get(stat) if isinstance(value, Mapping) else None


def summary_row(record: Mapping[str, Any], path: str | None = None) -> dict[str, Any]:
    """One flat row of a record's headline figures (None where unknown)."""
    metrics = record.get("metrics") or {}
    cell = record.get("cell") or {}
    cost = record.get("cost") or {}
    return {
        "variant": record.get("variant"),
        "status": record.get("status"),
        "batch_size": cell.get("batch_size"),
        "prompt_len": cell.get("prompt_len"),
        "max_new_tokens": cell.get("max_new_tokens"),
        "ttft_s_p50": _stat(metrics, "ttft_s", "p50"),
        "time_per_output_token_s_mean": _stat(metrics, "time_per_output_token_s", "mean"),
        "e2e_latency_s_p50": _stat(metrics, "e2e_latency_s", "p50"),
        "e2e_latency_s_p90": _stat(metrics, "e2e_latency_s", "p90"),
        "e2e_latency_s_p99": _stat(metrics, "e2e_latency_s", "p99"),
        "output_tokens_per_s": metrics.get("output_tokens_per_s"),
        "requests_per_s": metrics.get("requests_per_s"),
        "peak_allocated_bytes": metrics.get("peak_allocated_bytes"),
        "peak_rss_bytes": metrics.get("peak_rss_bytes"),
        "energy_per_output_token_j": metrics.get("energy_per_output_token_j"),
        "cost_per_1m_output_tokens_usd": cost.get("cost_per_1m_output_tokens_usd"),
        "device": record.get("device"),
        "record": path,
    }


def slowdowns(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Slowdown % of every variant against the base (and multi against unmerged) in the same cell.

    Args:
        rows: :func:`summary_row` rows of one benchmark.

    Returns:
        ``{variant, reference, batch_size, prompt_len, max_new_tokens, slowdown_pct}`` per pair where both
        throughputs are known; :data:`SLOWDOWN_METHOD` says how.
    """
    by_cell: dict[tuple[Any, ...], dict[str, float]] = {}
    for row in rows:
        tps = row.get("output_tokens_per_s")
        if row.get("status") == "ok" and isinstance(tps, (int, float)) and tps > 0:
            key = (row.get("batch_size"), row.get("prompt_len"), row.get("max_new_tokens"), row.get("device"))
            by_cell.setdefault(key, {})[str(row.get("variant"))] = float(tps)
    out = []
    for (batch, prompt_len, new, _), variants in sorted(by_cell.items(), key=lambda kv: str(kv[0])):
        for variant, reference in _PAIRS:
            if variant in variants and reference in variants:
                out.append(
                    {
                        "variant": variant,
                        "reference": reference,
                        "batch_size": batch,
                        "prompt_len": prompt_len,
                        "max_new_tokens": new,
                        "slowdown_pct": (variants[reference] / variants[variant] - 1.0) * 100.0,
                    }
                )
    return out
