"""Find the records a report is made from: run records, estimate records and saved cost tables.

A results folder is searched recursively for ``*.json`` files. Four kinds are recognised by their ``schema``:
``lorabench.run`` (a measured run's ``result.json``), ``lorabench.estimate`` (what ``lorabench estimate --json``
writes), ``lorabench.cost`` (a cost comparison saved with :func:`cost_record`) and ``lorabench.infer`` (one cell
of ``lorabench infer``). Anything else — other JSON,
files that are not JSON — is ignored. A recognised record that is malformed, or of a version this lorabench does
not read, is an error naming the file: silently skipping it would drop figures from the report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lorabench.errors import DataError
from lorabench.report.infer_records import INFER_SCHEMA, INFER_SCHEMA_VERSION, InferRecord, parse_infer_record
from lorabench.spec import RunSpec

if TYPE_CHECKING:
    from lorabench.cost.scenario import CostRow

__all__ = [
    "COST_SCHEMA",
    "COST_SCHEMA_VERSION",
    "EstimateRecord",
    "RunRecord",
    "Sources",
    "collect_records",
    "cost_record",
]

COST_SCHEMA = "lorabench.cost"
COST_SCHEMA_VERSION = 1
_RUN_SCHEMA = "lorabench.run"  # lorabench.measure.record.RUN_SCHEMA (not imported: it pulls in torch)
_ESTIMATE_SCHEMA = "lorabench.estimate"
_VERSIONS = {_RUN_SCHEMA: 1, _ESTIMATE_SCHEMA: 1, COST_SCHEMA: COST_SCHEMA_VERSION, INFER_SCHEMA: INFER_SCHEMA_VERSION}
_MAX_JSON_BYTES = 64 * 2**20  # records are small; a bigger .json is somebody else's data


@dataclass(frozen=True)
class RunRecord:
    """The figures of one measured run that the report uses.

    Attributes:
        path: The record file.
        spec: The run's spec.
        model_key: Catalog key (or the spec's model string).
        model_name: The model's display name.
        status: ``ok``, ``oom`` or ``failed``.
        trainable_params: Counted trainable parameters (None when the run died before counting).
        peak_allocated_bytes: Measured peak of allocated bytes per device.
        peak_reserved_bytes: Measured peak of reserved bytes per device (allocator cache included).
        peak_counter: The counter ``peak_allocated_bytes`` came from.
        device: ``cuda`` or ``cpu``.
        device_name: What the run's environment names the device (``NVIDIA H200``, ``AMD EPYC``), if recorded.
        wall_time_s: Wall clock of the measured steps.
        gpu_hours: Wall time x GPUs (None on CPU).
        cost_usd: Priced GPU-hours, when the run priced itself.
        tokens_per_s_nonpad: Non-padded tokens per second, all ranks together.
        world_size: Number of processes.
        dataset: The dataset the run trained on.
    """

    path: str
    spec: RunSpec
    model_key: str
    model_name: str
    status: str
    trainable_params: int | None
    peak_allocated_bytes: float | None
    peak_reserved_bytes: float | None
    peak_counter: str | None
    device: str | None
    wall_time_s: float | None
    gpu_hours: float | None
    cost_usd: float | None
    tokens_per_s_nonpad: float | None
    world_size: int
    dataset: str | None
    device_name: str | None = None


@dataclass(frozen=True)
class EstimateRecord:
    """The figures of one estimate record that the report uses.

    Attributes:
        path: The record file.
        spec: The spec it predicts.
        model_key: Catalog key (or the spec's model string).
        model_name: The model's display name.
        base_params: Parameters of the base model.
        trainable_params: Adapter parameters.
        weights_bytes: Weights as loaded at the spec's bits, adapter included.
        base_bytes_by_bits: Base weights (no adapter) as loaded at 16, 8 and 4 bits, where known.
        adapter_bytes: Adapter weights.
        peak_allocated_bytes: Predicted peak of allocated bytes per device (None before the memory engine).
        breakdown: Predicted bytes per component at the peak.
        device_total_bytes: Predicted peak plus allocator slack and CUDA context.
        engine: The engine that predicted the peak (``simulate`` or ``formula``).
        predicted_time_s: Predicted training time.
    """

    path: str
    spec: RunSpec
    model_key: str
    model_name: str
    base_params: int | None
    trainable_params: int | None
    weights_bytes: float | None
    base_bytes_by_bits: dict[int, float]
    adapter_bytes: float | None
    peak_allocated_bytes: float | None
    breakdown: dict[str, float]
    device_total_bytes: float | None
    engine: str | None
    predicted_time_s: float | None


@dataclass(frozen=True)
class Sources:
    """Every recognised record under a results folder.

    Attributes:
        results_dir: The folder searched.
        runs: Run records, in path order.
        estimates: Estimate records, in path order.
        cost_rows: Rows of every cost record, in path order.
        cost_files: The cost record files.
        inferences: Inference records (``lorabench.infer``, one measured cell each), in path order.
        ignored: How many ``*.json`` files were not lorabench records.
        files: Every record file used, in path order.
    """

    results_dir: str
    runs: tuple[RunRecord, ...] = ()
    estimates: tuple[EstimateRecord, ...] = ()
    cost_rows: tuple[CostRow, ...] = ()
    cost_files: tuple[str, ...] = ()
    inferences: tuple[InferRecord, ...] = ()
    ignored: int = 0
    files: tuple[str, ...] = ()


def cost_record(rows: Sequence[CostRow]) -> dict[str, Any]:
    """The JSON document that saves a cost comparison for a later report.

    Args:
        rows: Rows as :func:`lorabench.cost.evaluate` returns them.

    Returns:
        ``{"schema": "lorabench.cost", "schema_version": 1, "created_utc": ..., "rows": [...]}``; write it with
        :func:`lorabench.records.write_json_atomic`.
    """
    from lorabench import __version__

    return {
        "schema": COST_SCHEMA,
        "schema_version": COST_SCHEMA_VERSION,
        "lorabench_version": __version__,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "rows": [row.model_dump(mode="json") for row in rows],
    }


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e300:  # NaN, inf, huge
        raise DataError(f"{where}: expected a non-negative number or null (got {value!r})")
    return float(value)


def _count(value: Any, where: str) -> int | None:
    number = _number(value, where)
    return None if number is None else int(number)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DataError(f"{where}: expected an object (got {type(value).__name__})")
    return value


def _spec(record: Mapping[str, Any], file: str) -> RunSpec:
    try:
        return RunSpec.model_validate(record.get("spec"))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "spec"
        raise DataError(f"{file}: spec: {loc}: {first.get('msg', 'invalid')}") from None


def _model(record: Mapping[str, Any], spec: RunSpec, file: str) -> tuple[str, str]:
    model = _mapping(record.get("model"), f"{file}: model")
    key = model.get("key") or spec.model
    name = model.get("display_name") or key
    return str(key), str(name)


def _run(record: Mapping[str, Any], file: str) -> RunRecord:
    spec = _spec(record, file)
    key, name = _model(record, spec, file)
    status = record.get("status")
    if status not in ("ok", "oom", "failed"):
        raise DataError(f"{file}: status: expected ok, oom or failed (got {status!r})")
    metrics = _mapping(record.get("metrics"), f"{file}: metrics")
    counters = _mapping(metrics.get("counters"), f"{file}: metrics.counters")
    options = _mapping(record.get("options"), f"{file}: options")
    data = _mapping(record.get("data"), f"{file}: data")
    dataset = data.get("dataset", options.get("dataset"))
    counter = counters.get("peak_allocated_bytes")
    names = _mapping(record.get("environment"), f"{file}: environment").get("device_names")
    device_name = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else None
    return RunRecord(
        path=file,
        spec=spec,
        model_key=key,
        model_name=name,
        status=str(status),
        trainable_params=_count(record.get("trainable_params"), f"{file}: trainable_params"),
        peak_allocated_bytes=_number(metrics.get("peak_allocated_bytes"), f"{file}: metrics.peak_allocated_bytes"),
        peak_reserved_bytes=_number(metrics.get("peak_reserved_bytes"), f"{file}: metrics.peak_reserved_bytes"),
        peak_counter=None if counter is None else str(counter),
        device=None if metrics.get("device") is None else str(metrics.get("device")),
        wall_time_s=_number(metrics.get("wall_time_s"), f"{file}: metrics.wall_time_s"),
        gpu_hours=_number(metrics.get("gpu_hours"), f"{file}: metrics.gpu_hours"),
        cost_usd=_number(metrics.get("cost_usd"), f"{file}: metrics.cost_usd"),
        tokens_per_s_nonpad=_number(metrics.get("tokens_per_s_nonpad"), f"{file}: metrics.tokens_per_s_nonpad"),
        world_size=_count(record.get("world_size"), f"{file}: world_size") or 1,
        dataset=None if dataset is None else str(dataset),
        device_name=device_name,
    )


def _base_bytes_by_bits(record: Mapping[str, Any], file: str) -> dict[int, float]:
    """Base weights at each bits: the record's total at those bits less the adapter, or its components' sum."""
    by_bits = _mapping(record.get("weights_bytes_by_bits"), f"{file}: weights_bytes_by_bits")
    adapter = _number(record.get("adapter_bytes"), f"{file}: adapter_bytes")
    found: dict[int, float] = {}
    for bits in (16, 8, 4):
        total = _number(by_bits.get(str(bits)), f"{file}: weights_bytes_by_bits.{bits}")
        if total is not None and adapter is not None:
            found[bits] = total - adapter
    if found:
        return found
    components = record.get("components")
    if isinstance(components, list) and components:
        for bits in (16, 8, 4):
            sizes = [_mapping(c, f"{file}: components").get("bytes_by_bits", {}) for c in components]
            values = [_number(_mapping(s, f"{file}: components").get(str(bits)), f"{file}: components") for s in sizes]
            if all(v is not None for v in values):
                found[bits] = sum(v for v in values if v is not None)
    return found


def _estimate(record: Mapping[str, Any], file: str) -> EstimateRecord:
    spec = _spec(record, file)
    key, name = _model(record, spec, file)
    raw_breakdown = _mapping(record.get("breakdown"), f"{file}: breakdown")
    breakdown = {str(k): _number(v, f"{file}: breakdown.{k}") for k, v in raw_breakdown.items()}
    engine = record.get("engine")
    return EstimateRecord(
        path=file,
        spec=spec,
        model_key=key,
        model_name=name,
        base_params=_count(record.get("base_params"), f"{file}: base_params"),
        trainable_params=_count(record.get("trainable_params"), f"{file}: trainable_params"),
        weights_bytes=_number(record.get("weights_bytes"), f"{file}: weights_bytes"),
        base_bytes_by_bits=_base_bytes_by_bits(record, file),
        adapter_bytes=_number(record.get("adapter_bytes"), f"{file}: adapter_bytes"),
        peak_allocated_bytes=_number(record.get("peak_allocated_bytes"), f"{file}: peak_allocated_bytes"),
        breakdown={k: v for k, v in breakdown.items() if v is not None},
        device_total_bytes=_number(record.get("device_total_bytes"), f"{file}: device_total_bytes"),
        engine=None if engine is None else str(engine),
        predicted_time_s=_number(record.get("predicted_time_s"), f"{file}: predicted_time_s"),
    )


def _cost_rows(record: Mapping[str, Any], file: str) -> list[CostRow]:
    from lorabench.cost.scenario import CostRow

    rows = record.get("rows")
    if not isinstance(rows, list):
        raise DataError(f"{file}: rows: expected a list of cost rows")
    parsed = []
    for index, row in enumerate(rows):
        try:
            parsed.append(CostRow.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            raise DataError(f"{file}: rows[{index}]: {loc}: {first.get('msg', 'invalid')}") from None
    return parsed


def _load(path: Path) -> Any:
    try:
        if path.stat().st_size > _MAX_JSON_BYTES:
            return None
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError: also bad UTF-8
        return None  # not readable JSON: not a lorabench record


def _json_files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):  # does not follow symlinked folders (no loops)
        dirs.sort()
        found += [Path(folder) / name for name in sorted(files) if name.endswith(".json")]
    return found


def collect_records(results_dir: Path) -> Sources:
    """Read every lorabench record under ``results_dir``.

    Args:
        results_dir: A folder of results (searched recursively).

    Returns:
        The run, estimate and cost records found.

    Raises:
        DataError: The folder does not exist, is not a folder, holds no lorabench record, or holds a recognised
            record that is malformed or of an unsupported version (the file is named).
    """
    if not results_dir.is_dir():
        what = "is not a folder" if results_dir.exists() else "does not exist"
        raise DataError(f"{results_dir}: {what}; give the folder that holds the lorabench records")
    runs: list[RunRecord] = []
    estimates: list[EstimateRecord] = []
    cost_rows: list[CostRow] = []
    cost_files: list[str] = []
    inferences: list[InferRecord] = []
    used: list[str] = []
    ignored = 0
    for path in _json_files(results_dir):
        record = _load(path)
        schema = record.get("schema") if isinstance(record, dict) else None
        if schema not in _VERSIONS or not isinstance(record, dict):
            ignored += 1
            continue
        file = str(path)
        if record.get("schema_version") != _VERSIONS[schema]:
            version = record.get("schema_version")
            raise DataError(f"{file}: {schema} record version {version!r} is not supported by this lorabench")
        if schema == _RUN_SCHEMA:
            runs.append(_run(record, file))
        elif schema == _ESTIMATE_SCHEMA:
            estimates.append(_estimate(record, file))
        elif schema == INFER_SCHEMA:
            inferences.append(parse_infer_record(record, file))
        else:
            cost_rows += _cost_rows(record, file)
            cost_files.append(file)
        used.append(file)
    if not used:
        raise DataError(
            f"no lorabench records in {results_dir} (looked for result.json run records, estimate, cost and "
            "inference records)"
        )
    return Sources(
        results_dir=str(results_dir),
        runs=tuple(runs),
        estimates=tuple(estimates),
        cost_rows=tuple(cost_rows),
        cost_files=tuple(cost_files),
        inferences=tuple(inferences),
        ignored=ignored,
        files=tuple(used),
    )
