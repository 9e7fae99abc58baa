"""Inference records (``lorabench.infer``) as the report reads them: one measured cell each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lorabench.errors import DataError

__all__ = ["INFER_SCHEMA", "INFER_SCHEMA_VERSION", "InferRecord", "parse_infer_record"]

INFER_SCHEMA = "lorabench.infer"  # lorabench.infer.record.INFER_SCHEMA (not imported: keep the report light)
INFER_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class InferRecord:
    """The figures of one inference cell that the report uses (None where unknown).

    Attributes:
        path: The record file.
        model_key: Catalog key of the base.
        model_name: Display name of the base.
        variant: ``base``, ``unmerged``, ``merged``, ``multi``, ``base-quant`` or ``unmerged-quant``.
        status: ``ok``, ``oom`` or ``failed``.
        device: ``cuda`` or ``cpu``.
        batch_size: Requests per generation.
        prompt_len: Prompt tokens.
        max_new_tokens: Output tokens per request.
        ttft_s_p50: Median time to first token.
        time_per_output_token_s: Mean decode step time.
        e2e_latency_s_p50: Median end-to-end latency (p90, p99 beside it).
        e2e_latency_s_p90: 90th percentile.
        e2e_latency_s_p99: 99th percentile.
        output_tokens_per_s: Output tokens per second over the timed repeats.
        requests_per_s: Requests per second.
        peak_allocated_bytes: Peak memory (see ``peak_counter``).
        peak_counter: The counter of ``peak_allocated_bytes``.
        energy_per_output_token_j: NVML energy per output token (GPU only).
        cost_per_1m_output_tokens_usd: Serving cost per 1M output tokens.
        usd_per_gpu_hour: The rate it was priced at.
        rate_source: Where the rate came from (catalog entry, date and URL; or input).
        adapter_sha256: The adapter served (None for the base variants).
        training_cost_usd: Training cost from the run record of the adapter, when known.
        training_record: That run record's path.
        training_device: Where the adapter was trained.
    """

    path: str
    model_key: str
    model_name: str
    variant: str
    status: str
    device: str | None
    batch_size: int
    prompt_len: int
    max_new_tokens: int
    ttft_s_p50: float | None
    time_per_output_token_s: float | None
    e2e_latency_s_p50: float | None
    e2e_latency_s_p90: float | None
    e2e_latency_s_p99: float | None
    output_tokens_per_s: float | None
    requests_per_s: float | None
    peak_allocated_bytes: float | None
    peak_counter: str | None
    energy_per_output_token_j: float | None
    cost_per_1m_output_tokens_usd: float | None
    usd_per_gpu_hour: float | None
    rate_source: str | None
    adapter_sha256: str | None
    training_cost_usd: float | None
    training_record: str | None
    training_device: str | None


def _map(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DataError(f"{where}: expected an object (got {type(value).__name__})")
    return value


def _num(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise DataError(f"{where}: expected a non-negative number or null (got {value!r})")
    return float(value)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{where}: expected a positive integer (got {value!r})")
    return value


def _rate_source(provenance: Mapping[str, Any]) -> str | None:
    kind = provenance.get("kind")
    if kind == "catalog":
        return f"{provenance.get('entry')} ({provenance.get('prices_checked')}, {provenance.get('source')})"
    if kind == "input":
        return "--usd-per-gpu-hour"
    return None


def parse_infer_record(record: Mapping[str, Any], file: str) -> InferRecord:
    """Read the report's figures from one inference record.

    Raises:
        DataError: A field the report needs is missing or malformed (the file and field are named).
    """
    status = record.get("status")
    if status not in ("ok", "oom", "failed"):
        raise DataError(f"{file}: status: expected ok, oom or failed (got {status!r})")
    variant = record.get("variant")
    if not isinstance(variant, str) or not variant:
        raise DataError(f"{file}: variant: expected a name (got {variant!r})")
    model = _map(record.get("model"), f"{file}: model")
    cell = _map(record.get("cell"), f"{file}: cell")
    metrics = _map(record.get("metrics"), f"{file}: metrics")
    cost = _map(record.get("cost"), f"{file}: cost")
    adapter = _map(record.get("adapter"), f"{file}: adapter")
    training = _map(adapter.get("training"), f"{file}: adapter.training")

    def stat(name: str, key: str) -> float | None:
        return _num(_map(metrics.get(name), f"{file}: metrics.{name}").get(key), f"{file}: metrics.{name}.{key}")

    counter = _map(metrics.get("counters"), f"{file}: metrics.counters").get("peak_allocated_bytes")
    return InferRecord(
        path=file,
        model_key=str(model.get("key") or "?"),
        model_name=str(model.get("display_name") or model.get("key") or "?"),
        variant=variant,
        status=str(status),
        device=None if record.get("device") is None else str(record.get("device")),
        batch_size=_int(cell.get("batch_size"), f"{file}: cell.batch_size"),
        prompt_len=_int(cell.get("prompt_len"), f"{file}: cell.prompt_len"),
        max_new_tokens=_int(cell.get("max_new_tokens"), f"{file}: cell.max_new_tokens"),
        ttft_s_p50=stat("ttft_s", "p50"),
        time_per_output_token_s=stat("time_per_output_token_s", "mean"),
        e2e_latency_s_p50=stat("e2e_latency_s", "p50"),
        e2e_latency_s_p90=stat("e2e_latency_s", "p90"),
        e2e_latency_s_p99=stat("e2e_latency_s", "p99"),
        output_tokens_per_s=_num(metrics.get("output_tokens_per_s"), f"{file}: metrics.output_tokens_per_s"),
        requests_per_s=_num(metrics.get("requests_per_s"), f"{file}: metrics.requests_per_s"),
        peak_allocated_bytes=_num(metrics.get("peak_allocated_bytes"), f"{file}: metrics.peak_allocated_bytes"),
        peak_counter=None if counter is None else str(counter),
        energy_per_output_token_j=_num(
            metrics.get("energy_per_output_token_j"), f"{file}: metrics.energy_per_output_token_j"
        ),
        cost_per_1m_output_tokens_usd=_num(
            cost.get("cost_per_1m_output_tokens_usd"), f"{file}: cost.cost_per_1m_output_tokens_usd"
        ),
        usd_per_gpu_hour=_num(cost.get("usd_per_gpu_hour"), f"{file}: cost.usd_per_gpu_hour"),
        rate_source=_rate_source(_map(cost.get("provenance"), f"{file}: cost.provenance")),
        adapter_sha256=None if adapter.get("sha256") is None else str(adapter.get("sha256")),
        training_cost_usd=_num(training.get("cost_usd"), f"{file}: adapter.training.cost_usd"),
        training_record=None if training.get("record") is None else str(training.get("record")),
        training_device=None if training.get("device") is None else str(training.get("device")),
    )
