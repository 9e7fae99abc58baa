"""Combine per-rank tracker metrics into run-level figures (shared by the runner and the Trainer callback)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lorabench.measure.trackers import RankCounts, combine_ranks

__all__ = ["combine_ranks_metrics", "gather_metrics"]


def gather_metrics(metrics: dict[str, Any], world: int) -> list[dict[str, Any]]:
    """Every rank's metrics on every rank (all_gather_object); just ``[metrics]`` without distribution."""
    if world == 1 or not torch.distributed.is_initialized():
        return [metrics]
    gathered: list[Any] = [None] * world
    torch.distributed.all_gather_object(gathered, metrics)
    return [g for g in gathered if isinstance(g, dict)]


def _max(values: Sequence[Any]) -> Any:
    known = [v for v in values if v is not None]
    return max(known) if known and len(known) == len(values) else None


def combine_ranks_metrics(per_rank: list[dict[str, Any]], usd_per_gpu_hour: float | None) -> dict[str, Any]:
    """Run-level metrics: peaks are the max over ranks (per device), throughput sums ranks, energy sums GPUs."""
    if not per_rank or not per_rank[0]:
        return {}
    first = per_rank[0]
    world = len(per_rank)
    combined: dict[str, Any] = {
        "device": first.get("device"),
        "wall_time_s": _max([m.get("wall_time_s") for m in per_rank]),
        "step_times_s": first.get("step_times_s"),
        "steps": first.get("steps"),
        "warmup_steps": first.get("warmup_steps"),
        "world_size": world,
        "padded_tokens": sum(m.get("padded_tokens") or 0 for m in per_rank),
        "nonpad_tokens": sum(m.get("nonpad_tokens") or 0 for m in per_rank),
        "samples": sum(m.get("samples") or 0 for m in per_rank),
    }
    counts = [m.get("rank_counts") for m in per_rank]
    if all(isinstance(c, dict) for c in counts):
        rates = combine_ranks([RankCounts(**c) for c in counts if isinstance(c, dict)])
        combined.update(
            tokens_per_s_padded=rates.tokens_per_s_padded,
            tokens_per_s_nonpad=rates.tokens_per_s_nonpad,
            samples_per_s=rates.samples_per_s,
            throughput_method=rates.method,
        )
    else:
        combined.update(tokens_per_s_padded=None, tokens_per_s_nonpad=None, samples_per_s=None, throughput_method=None)
    for name in ("peak_allocated_bytes", "peak_reserved_bytes", "nvml_peak_used_bytes", "peak_rss_bytes"):
        combined[name] = _max([m.get(name) for m in per_rank])
    energies = [m.get("energy_j") for m in per_rank]
    combined["energy_j"] = None if any(e is None for e in energies) else sum(energies)
    combined["energy_method"] = first.get("energy_method")
    combined["counters"] = dict(first.get("counters") or {})
    combined["counters"].update(
        {
            k: f"max over {world} ranks of {v}"
            for k, v in combined["counters"].items()
            if "peak" in k and v and world > 1
        }
    )
    combined["unavailable"] = first.get("unavailable")
    wall = combined["wall_time_s"]
    on_gpu = combined["device"] == "cuda"
    combined["gpu_hours"] = wall / 3600 * world if on_gpu and wall is not None else None
    combined["device_hours"] = wall / 3600 * world if wall is not None else None
    combined.update(_cost(combined, usd_per_gpu_hour, on_gpu))
    return combined


def _cost(metrics: dict[str, Any], usd_per_gpu_hour: float | None, on_gpu: bool) -> dict[str, Any]:
    hours = metrics.get("device_hours")
    if hours is None:
        return {"cost_usd": None, "cost_provenance": None}
    if usd_per_gpu_hour is not None:
        what = "GPU-hours" if on_gpu else "process-hours (CPU run)"
        return {
            "cost_usd": hours * usd_per_gpu_hour,
            "cost_provenance": {"kind": "input", "usd_per_gpu_hour": usd_per_gpu_hour, "hours": what},
        }
    if not on_gpu:
        return {"cost_usd": None, "cost_provenance": None}
    from lorabench.cost import packaged_catalog
    from lorabench.errors import CatalogError
    from lorabench.hardware import resolve_gpu

    try:
        gpu = resolve_gpu(torch.cuda.get_device_name())
        rates = packaged_catalog().rates_for_gpu(gpu.key)
    except CatalogError:
        return {"cost_usd": None, "cost_provenance": {"kind": "unknown", "reason": "GPU not in the catalog"}}
    if not rates:
        return {"cost_usd": None, "cost_provenance": {"kind": "unknown", "reason": f"no rental rate for {gpu.key}"}}
    rate = rates[0]
    return {
        "cost_usd": hours * rate.usd_per_gpu_hour,
        "cost_provenance": {
            "kind": "catalog",
            "entry": rate.id,
            "usd_per_gpu_hour": rate.usd_per_gpu_hour,
            "prices_checked": rate.prices_checked.isoformat(),
            "source": rate.source,
            "chosen_as": "cheapest on-demand rate for this GPU in the catalog",
        },
    }
