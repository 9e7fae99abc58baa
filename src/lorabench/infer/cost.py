"""Serving cost: the GPU's hourly rate (given, or the price catalog's) over measured output tokens per second.

``cost_per_1m_output_tokens_usd = usd_per_gpu_hour / 3600 / output_tokens_per_s * 1e6``: the GPU time of whole
requests (prefill included) is charged to their output tokens, for one GPU busy with this cell's workload. Without
a rate (a CPU run and no ``--usd-per-gpu-hour``, or a GPU the catalog does not price) the cost is unknown: None.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COST_METHOD", "api_inference_prices", "cost_per_mtok", "serving_rate"]

COST_METHOD = (
    "usd_per_gpu_hour / 3600 / output_tokens_per_s x 1e6: one GPU busy with this cell's requests, prefill time "
    "charged to the output tokens"
)


def serving_rate(usd_per_gpu_hour: float | None, device_name: str | None) -> dict[str, Any]:
    """The hourly rate that prices a cell, with its provenance.

    Args:
        usd_per_gpu_hour: A rate the user gave (wins).
        device_name: ``torch.cuda.get_device_name()`` on a GPU; None on CPU.

    Returns:
        ``{"usd_per_gpu_hour": float | None, "provenance": {...}}``; the provenance says where the rate came from
        (``input`` or ``catalog`` with entry, date and source) or why there is none (``unknown``).
    """
    if usd_per_gpu_hour is not None:
        hours = "GPU-hours" if device_name else "process-hours (CPU run)"
        return {"usd_per_gpu_hour": usd_per_gpu_hour, "provenance": {"kind": "input", "hours": hours}}
    if device_name is None:
        return {
            "usd_per_gpu_hour": None,
            "provenance": {"kind": "unknown", "reason": "CPU run: no GPU rate applies (pass --usd-per-gpu-hour)"},
        }
    from lorabench.cost import packaged_catalog
    from lorabench.errors import CatalogError
    from lorabench.hardware import resolve_gpu

    try:
        gpu = resolve_gpu(device_name)
        rates = packaged_catalog().rates_for_gpu(gpu.key)
    except CatalogError:
        return {"usd_per_gpu_hour": None, "provenance": {"kind": "unknown", "reason": f"{device_name} not in catalog"}}
    if not rates:
        return {"usd_per_gpu_hour": None, "provenance": {"kind": "unknown", "reason": f"no rental rate for {gpu.key}"}}
    rate = rates[0]
    return {
        "usd_per_gpu_hour": rate.usd_per_gpu_hour,
        "provenance": {
            "kind": "catalog",
            "entry": rate.id,
            "gpu": gpu.key,
            "prices_checked": rate.prices_checked.isoformat(),
            "source": rate.source,
            "chosen_as": "cheapest on-demand rate for this GPU in the catalog",
        },
    }


def cost_per_mtok(usd_per_gpu_hour: float | None, output_tokens_per_s: float | None) -> float | None:
    """USD per 1M output tokens; None when the rate or the throughput is unknown (or the throughput is 0)."""
    if usd_per_gpu_hour is None or not output_tokens_per_s:
        return None
    return usd_per_gpu_hour / 3600.0 / output_tokens_per_s * 1e6


def api_inference_prices() -> list[dict[str, Any]]:
    """Per-token inference prices of fine-tuned models from the price catalog, where it records them.

    A service entry contributes when it carries ``infer_output_usd_per_mtok`` (and optionally
    ``infer_input_usd_per_mtok``); every price keeps its ``prices_checked`` date and ``source``.

    Returns:
        One dict per priced service; empty when the catalog records no inference prices.
    """
    from lorabench.cost import packaged_catalog

    prices = []
    for service in packaged_catalog().services.values():
        output = getattr(service, "infer_output_usd_per_mtok", None)
        if output is None:
            continue
        prices.append(
            {
                "service": service.id,
                "display_name": service.display_name,
                "input_usd_per_mtok": getattr(service, "infer_input_usd_per_mtok", None),
                "output_usd_per_mtok": output,
                "prices_checked": service.prices_checked.isoformat(),
                "source": service.infer_source or service.source,
            }
        )
    return prices
