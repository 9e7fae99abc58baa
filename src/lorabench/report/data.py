"""The report as data: CSV and JSON carry numbers with their units in the column names, never display strings.

``report.csv`` holds one block per kind of row — ``cost``, ``prices``, ``memory`` (one line per configuration and
batch size, every section), ``inference`` — each starting with its own header line whose first column is
``section``. Figures are plain numbers (``cost_usd``, ``time_s``, ``peak_allocated_bytes``), unknown ones empty;
provenance columns say where each came from (``time_kind``, ``price_refs``, ``prices_checked``, ``source_urls``,
``counter_or_engine``, ``record_files``). ``report.json`` holds the same rows under ``records`` plus the structure.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from lorabench.cost.table import cost_data_rows
from lorabench.report.document import Report, datasets, plot_path, provenance_line
from lorabench.report.memory import MemoryData
from lorabench.report.prices import PriceSource, RowSources

__all__ = ["REPORT_SCHEMA", "REPORT_SCHEMA_VERSION", "data_records", "render_csv", "render_json"]

REPORT_SCHEMA = "lorabench.report"
REPORT_SCHEMA_VERSION = 2


def _cost_records(report: Report) -> list[dict[str, Any]]:
    by_ref = {s.ref: s for s in report.price_sources}
    out = []
    for row, cited in zip(report.cost_rows, report.row_sources, strict=True):
        record = cost_data_rows([row])[0]  # the cost layer's own numeric columns; the page's citations follow
        for field in ("epochs", "billed_tokens"):  # time_kind and cost_kind come with the cost layer's columns
            prov = row.provenance.get(field)
            record[f"{field}_kind"] = None if prov is None else prov.get("kind")
        used: list[PriceSource] = [by_ref[r] for r in cited.refs]
        record["price_refs"] = " ".join(f"[{s.ref}]" for s in used) or None
        record["catalog_entries"] = " ".join(s.entry for s in used) or None
        record["prices_checked"] = " ".join(s.prices_checked or "" for s in used).strip() or None
        record["source_statuses"] = " ".join(s.status.replace(" ", "_") for s in used) or None
        record["wind_down"] = "; ".join(cited.notices) or None
        record["source_urls"] = " ".join(s.source or "" for s in used).strip() or None
        out.append(record)
    return out


def _price_records(sources: Sequence[PriceSource]) -> list[dict[str, Any]]:
    return [
        {
            "ref": s.ref,
            "entry": s.entry,
            "figure": s.what,
            "price_usd": s.price_usd,
            "price_per": s.price_per,
            "prices_checked": s.prices_checked,
            "price_status": s.status,
            "source_url": s.source,
            "secondary_source_url": s.secondary_source,
            "wind_down": s.wind_down,
            "wind_down_source_url": s.wind_down_source,
            "catalog_file": s.file,
            "used_by": "; ".join(s.fields),
        }
        for s in sources
    ]


def _settings(setting: Mapping[str, str]) -> dict[str, Any]:
    """A row's settings as values: ``seq_len`` 512, ``grad_ckpt`` true, ``devices`` 4 and ``parallelism`` ddp."""
    devices, _, parallelism = setting.get("parallel", "").partition("gpu-")
    try:
        dropout: float | None = float(setting.get("dropout", "").removeprefix("dropout"))
    except ValueError:
        dropout = None
    seq = setting.get("seq_len", "").removeprefix("seq")
    return {
        "seq_len": int(seq) if seq.isdigit() else None,
        "targets": setting.get("targets"),
        "optimizer": setting.get("optimizer"),
        "grad_ckpt": setting.get("grad_ckpt") == "ckpt" if "grad_ckpt" in setting else None,
        "dropout": dropout,
        "devices": int(devices) if devices.isdigit() else None,
        "parallelism": parallelism or None,
    }


def _memory_records(report: Report) -> list[dict[str, Any]]:
    out = []
    for section in report.sections:
        for row in section.data.rows:
            setting = dict(row.key.setting)
            for batch in sorted(row.cells):
                cell = row.cells[batch]
                out.append(
                    {
                        "memory_section": section.slug,
                        "model": row.key.model_key,
                        "model_name": row.model_name,
                        "device_class": section.device,
                        "measured_on": "; ".join(section.devices) or None,
                        "row": row.name,
                        "method": row.key.method,
                        "rank": row.key.rank,
                        "bits": row.key.bits,
                        "micro_batch": batch,
                        **_settings(setting),
                        "kind": cell.kind,
                        "peak_allocated_bytes": cell.peak_bytes,
                        "fit_bytes": cell.fit_bytes,
                        "fit_basis": cell.fit_basis,
                        "counter_or_engine": cell.source,
                        "trainable_params": row.trainable_params,
                        "weights_bytes": row.weights_bytes,
                        "base16_bytes": row.base16_bytes,
                        "weights_pct_of_base16": row.percentage,
                        "record_files": "; ".join(cell.files) or None,
                    }
                )
    return out


def data_records(report: Report) -> dict[str, list[dict[str, Any]]]:
    """The report's rows as plain records per block (``cost``, ``prices``, ``memory``, ``inference``)."""
    blocks = {
        "cost": _cost_records(report),
        "prices": _price_records(report.price_sources),
        "memory": _memory_records(report),
        "inference": [dataclasses.asdict(r) for r in report.sources.inferences],
    }
    return {name: rows for name, rows in blocks.items() if rows}


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return value


def render_csv(report: Report) -> str:
    """Every block of :func:`data_records`, each under its own header line (first column ``section``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for name, rows in data_records(report).items():
        columns = list(dict.fromkeys(k for row in rows for k in row))
        writer.writerow(["section", *columns])
        for row in rows:
            writer.writerow([name, *(_csv_value(row.get(c)) for c in columns)])
    return buffer.getvalue()


def _memory_json(data: MemoryData) -> dict[str, Any]:
    return {
        "batches": list(data.batches),
        "other_batches": list(data.other_batches),
        "varying_settings": list(data.varying),
        "shared_settings": dict(data.shared),
        "counters": list(data.counters),
        "engines": list(data.engines),
        "bases": [
            {
                "name": b.name,
                "model": b.model_key,
                "base_params": b.base_params,
                "base_bytes_by_bits": {str(k): v for k, v in b.base_bytes_by_bits.items()},
            }
            for b in data.bases
        ],
        "rows": [
            {
                "name": r.name,
                "model": r.key.model_key,
                "model_name": r.model_name,
                "method": r.key.method,
                "rank": r.key.rank,
                "bits": r.key.bits,
                "setting": dict(r.key.setting),
                "trainable_params": r.trainable_params,
                "weights_bytes": r.weights_bytes,
                "base16_bytes": r.base16_bytes,
                "percentage": r.percentage,
                "failed_runs": list(r.failed_runs),
                "cells": [dataclasses.asdict(r.cells[b]) for b in sorted(r.cells)],
            }
            for r in data.rows
        ],
    }


def _row_sources_json(cited: RowSources) -> dict[str, Any]:
    return {field: value for field, value in cited.items}


def render_json(report: Report) -> str:
    """The report as one versioned JSON document: every row as numbers, sources, insights, plots and provenance."""
    from lorabench import __version__

    src = report.sources
    payload = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "lorabench_version": __version__,
        "created_utc": report.created_utc,
        "unit": {"GB": "GB = 1e9 bytes", "GiB": "GiB = 2**30 bytes"}[report.unit],
        "marks": {"(m)": "measured (run record)", "(p)": "predicted (estimate record)", "n/a": "unknown"},
        "provenance": {
            "results_dir": src.results_dir,
            "summary": provenance_line(report),
            "run_records": [r.path for r in src.runs],
            "estimate_records": [e.path for e in src.estimates],
            "cost_records": list(src.cost_files),
            "inference_records": [r.path for r in src.inferences],
            "ignored_json_files": src.ignored,
            "datasets": datasets(report),
        },
        "records": data_records(report),
        "tables": {name: {"title": t.title, "headers": list(t.headers), "note": t.note} for name, t in report.tables},
        "cost_rows": [
            r.model_dump(mode="json") | {"sources": _row_sources_json(c)}
            for r, c in zip(report.cost_rows, report.row_sources, strict=True)
        ],
        "price_sources": _price_records(report.price_sources),
        "memory_sections": [
            {
                "slug": s.slug,
                "title": s.title,
                "model": s.model_key,
                "device_class": s.device,
                "devices": list(s.devices),
                "measured_where": s.where,
                "memory": _memory_json(s.data),
            }
            for s in report.sections
        ],
        "insights": [dataclasses.asdict(i) for i in report.insights],
        "inference": {
            "cells": [dataclasses.asdict(r) for r in src.inferences],
            "lifecycle": list(report.inference.lifecycle_lines),
        }
        if report.inference is not None
        else None,
        "plots": [
            {
                "name": p.name,
                "title": p.title,
                "section": p.section,
                "caption": p.caption,
                "png": plot_path(p, "png") if p.png else None,
                "svg": plot_path(p, "svg") if p.svg else None,
                "skipped": p.skipped,
            }
            for p in report.plots
        ],
    }
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"
