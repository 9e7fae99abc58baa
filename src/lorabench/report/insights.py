"""Insights computed from the report's figures: every sentence is built from numbers, and missing numbers drop it.

Topics follow the FinLoRA resource page: quantization impact (size at 8/4-bit as a share of 16-bit, and the peak),
rank impact (the memory delta between ranks against the base size), batch-size effects (growth from the first batch
column to the second), the VRAM tiers of the GPU catalog each configuration fits, and the cost comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lorabench.report.memory import Cell, MemoryData, MemoryRow, SizeUnit, format_size, short_name
from lorabench.units import format_count

if TYPE_CHECKING:
    from lorabench.cost.scenario import CostRow

__all__ = ["TOPICS", "Insight", "VramTier", "compute_insights", "vram_tiers"]

TOPICS = {
    "quantization": "Quantization Impact",
    "rank": "LoRA Rank Impact",
    "batch": "Batch Size Effects",
    "vram": "Practical Implications: GPU Memory Tiers",
    "cost": "Cost Comparison",
}
_MARK = {"measured": "(m)", "predicted": "(p)"}


@dataclass(frozen=True)
class Insight:
    """One sentence of the insights section and the figures it was built from."""

    topic: str
    text: str
    figures: dict[str, Any] = field(default_factory=dict)
    section: str | None = None


@dataclass(frozen=True)
class VramTier:
    """GPUs of the catalog that share one memory size."""

    vram_bytes: int
    label: str
    gpus: tuple[str, ...]


def vram_tiers() -> list[VramTier]:
    """The catalog's distinct card memories, smallest first, labelled as NVIDIA names them (``24 GB``)."""
    from lorabench.hardware import gpu_catalog

    by_size: dict[int, list[str]] = {}
    for key, gpu in gpu_catalog().items():
        by_size.setdefault(gpu.vram_bytes, []).append(key)
    tiers = []
    for size in sorted(by_size):
        # datasheets say "24 GB" for 24 GiB; the H200's 141 GB is recorded in decimal bytes
        label = f"{size // 2**30} GB" if size % 2**30 == 0 else f"{size / 1e9:.0f} GB"
        tiers.append(VramTier(size, label, tuple(by_size[size])))
    return tiers


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%"


def _mark(cell: Cell, unit: SizeUnit) -> str:
    return f"{format_size(cell.peak_bytes, unit)} {_MARK.get(cell.kind, '')}".strip()


def _known(cell: Cell) -> bool:
    return cell.kind in ("measured", "predicted") and cell.peak_bytes is not None


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _models(data: MemoryData) -> list[str]:
    return list(dict.fromkeys(r.key.model_key for r in data.rows))


def _label(row: MemoryRow) -> str:
    """The row name without the model prefix (``r8-16bit``), for sentences that already name the model."""
    prefix = short_name(row.model_name) + "-"
    return row.name.removeprefix(prefix)


def _quantization(data: MemoryData, unit: SizeUnit) -> list[Insight]:
    found = []
    for model in _models(data):
        base = data.base(model)
        rows = [r for r in data.rows if r.key.model_key == model]
        name = short_name(rows[0].model_name)
        if base is not None and 16 in base.base_bytes_by_bits:
            full = base.base_bytes_by_bits[16]
            parts = [
                f"{format_size(base.base_bytes_by_bits[b], unit)} at {b}-bit ({_pct(base.base_bytes_by_bits[b], full)} "
                "of 16-bit)"
                for b in (8, 4)
                if b in base.base_bytes_by_bits
            ]
            if parts:
                found.append(
                    Insight(
                        "quantization",
                        f"{name}: as loaded, the base weights take {format_size(full, unit)} at 16-bit, "
                        f"{_join(parts)}.",
                        {"model": model, "base_bytes_by_bits": {str(b): v for b, v in base.base_bytes_by_bits.items()}},
                    )
                )
        peak = _quantization_peak(rows, data.batches, unit)
        if peak is not None:
            found.append(peak)
    return found


def _quantization_peak(rows: Sequence[MemoryRow], batches: Sequence[int], unit: SizeUnit) -> Insight | None:
    groups: dict[tuple[str, int, tuple[tuple[str, str], ...]], dict[int, MemoryRow]] = {}
    for row in rows:
        groups.setdefault((row.key.method, row.key.rank, row.key.setting), {})[row.key.bits] = row
    # plain LoRA first, then the highest rank, as the seed's table reads
    for (method, rank, _), by_bits in sorted(groups.items(), key=lambda g: (g[0][0] != "lora", -g[0][1])):
        for batch in batches:
            if 16 not in by_bits or not _known(by_bits[16].cell(batch)):
                continue
            full = by_bits[16].cell(batch)
            lower = [(b, by_bits[b].cell(batch)) for b in (8, 4) if b in by_bits and _known(by_bits[b].cell(batch))]
            if not lower or full.peak_bytes is None:
                continue
            parts = [f"{_mark(full, unit)} at 16-bit"] + [
                f"{_mark(c, unit)} at {b}-bit ({_pct(c.peak_bytes or 0.0, full.peak_bytes)} of 16-bit)"
                for b, c in lower
            ]
            what = f"r{rank}" if method == "lora" else f"{method} r{rank}"
            model = short_name(rows[0].model_name)
            return Insight(
                "quantization",
                f"{model}: peak memory with {what} at batch {batch} is {_join(parts)}.",
                {
                    "model": rows[0].key.model_key,
                    "method": method,
                    "rank": rank,
                    "batch": batch,
                    "peak_bytes_by_bits": {"16": full.peak_bytes, **{str(b): c.peak_bytes for b, c in lower}},
                },
            )
    return None


def _rank(data: MemoryData, unit: SizeUnit) -> list[Insight]:
    found = []
    for model in _models(data):
        rows = [r for r in data.rows if r.key.model_key == model]
        groups: dict[tuple[str, int, tuple[tuple[str, str], ...]], dict[int, MemoryRow]] = {}
        for row in rows:
            groups.setdefault((row.key.method, row.key.bits, row.key.setting), {})[row.key.rank] = row
        for method in dict.fromkeys(r.key.method for r in rows):
            deltas: list[tuple[int, int, int, int, float]] = []  # bits, batch, low rank, high rank, delta
            params: dict[int, int] = {}
            for (g_method, bits, _), by_rank in groups.items():
                if g_method != method or len(by_rank) < 2:
                    continue
                low, high = by_rank[min(by_rank)], by_rank[max(by_rank)]
                for row in (low, high):
                    if row.trainable_params is not None:
                        params[row.key.rank] = row.trainable_params
                for batch in data.batches:
                    a, b = low.cell(batch), high.cell(batch)
                    if _known(a) and _known(b) and a.kind == b.kind:
                        deltas.append(
                            (bits, batch, low.key.rank, high.key.rank, (b.peak_bytes or 0) - (a.peak_bytes or 0))
                        )
                        break
            if deltas:
                found.append(_rank_sentence(data, model, method, rows[0].model_name, deltas, params, unit))
    return found


def _rank_sentence(
    data: MemoryData,
    model: str,
    method: str,
    model_name: str,
    deltas: list[tuple[int, int, int, int, float]],
    params: dict[int, int],
    unit: SizeUnit,
) -> Insight:
    pairs = {(lo, hi) for _, _, lo, hi, _ in deltas}
    batches = {batch for _, batch, _, _, _ in deltas}
    items = []
    for bits, batch, lo, hi, delta in sorted(deltas, key=lambda d: -d[0]):
        where = f"{bits}-bit" + ("" if len(batches) == 1 else f", batch {batch}")
        items.append(
            f"{format_size(delta, unit, signed=True)} at {where}" + ("" if len(pairs) == 1 else f" (r{lo}→r{hi})")
        )
    (lo, hi) = min(pairs)
    lead = f"going from r{lo} to r{hi}" if len(pairs) == 1 else "going from the lowest to the highest rank"
    what = "" if method == "lora" else f" ({method})"
    text = f"{short_name(model_name)}{what}: {lead} changes peak memory by {_join(items)}"
    text += f" (batch {next(iter(batches))})" if len(batches) == 1 else ""
    figures: dict[str, Any] = {
        "model": model,
        "method": method,
        "deltas": [{"bits": b, "batch": n, "ranks": [lo_, hi_], "delta_bytes": d} for b, n, lo_, hi_, d in deltas],
    }
    base = data.base(model)
    largest = max(abs(d[4]) for d in deltas)
    if base is not None and base.base_bytes_by_bits.get(16):
        full = base.base_bytes_by_bits[16]
        share = f"{100.0 * largest / full:.2f}%"
        text += f"; the largest change is {share} of the {format_size(full, unit)} 16-bit base weights"
        figures["largest_delta_pct_of_base"] = 100.0 * largest / full
    text += "."
    if len(pairs) == 1 and lo in params and hi in params:
        text += f" The adapter grows from {format_count(params[lo])} to {format_count(params[hi])} trainable parameters"
        if base is not None and base.base_params:
            text += f", against {format_count(base.base_params)} base parameters"
        text += "."
        figures["trainable_params"] = {str(lo): params[lo], str(hi): params[hi]}
    return Insight("rank", text, figures)


def _batch(data: MemoryData, unit: SizeUnit) -> list[Insight]:
    if len(data.batches) < 2:
        return []
    b1, b2 = data.batches[0], data.batches[-1]
    found = []
    for model in _models(data):
        growth = []
        for row in (r for r in data.rows if r.key.model_key == model):
            a, b = row.cell(b1), row.cell(b2)
            if _known(a) and _known(b) and a.kind == b.kind and a.peak_bytes:
                delta = (b.peak_bytes or 0.0) - a.peak_bytes
                growth.append((row, a, b, delta, 100.0 * delta / a.peak_bytes))
        if not growth:
            continue
        name = short_name(growth[0][0].model_name)
        top = max(growth, key=lambda g: g[3])
        row, a, b, delta, pct = top
        if len(growth) == 1:
            text = (
                f"{name}: from batch {b1} to batch {b2}, peak memory of {_label(row)} grows by "
                f"{format_size(delta, unit, signed=True)} ({pct:+.1f}%), {_mark(a, unit)} → {_mark(b, unit)}."
            )
        else:
            low = min(growth, key=lambda g: g[3])
            text = (
                f"{name}: from batch {b1} to batch {b2}, peak memory grows by {format_size(low[3], unit, signed=True)} "
                f"to {format_size(delta, unit, signed=True)} ({min(g[4] for g in growth):+.1f}% to "
                f"{max(g[4] for g in growth):+.1f}%) across {len(growth)} configurations; most for {_label(row)} "
                f"({_mark(a, unit)} → {_mark(b, unit)})."
            )
        figures = {
            "model": model,
            "batches": [b1, b2],
            "growth": [{"row": g[0].name, "delta_bytes": g[3], "delta_pct": g[4]} for g in growth],
        }
        found.append(Insight("batch", text, figures))
    return found


def _vram(data: MemoryData, unit: SizeUnit) -> list[Insight]:
    tiers = vram_tiers()
    if not tiers:
        return []
    found = []
    for row in data.rows:
        cells = [row.cell(b) for b in data.batches]
        sized = [c for c in cells if _known(c) and c.fit_bytes is not None]
        ooms = [c.batch for c in cells if c.kind == "oom"]
        if not sized:
            continue
        need = max(sized, key=lambda c: c.fit_bytes or 0.0)
        need_bytes = need.fit_bytes or 0.0
        fits = [t for t in tiers if need_bytes <= t.vram_bytes]
        head = f"{row.name} needs {format_size(need_bytes, unit)} at batch {need.batch} ({need.fit_basis or 'peak'})"
        if not fits:
            largest = tiers[-1]
            text = f"{head}: more than one card of any catalog tier holds (largest {largest.label}, {largest.gpus[0]})"
        else:
            first = fits[0]
            smaller = [t.label for t in tiers if t not in fits]
            text = f"{head}: fits {first.label} cards ({', '.join(first.gpus[:3])})"
            text += " and every larger tier" if len(fits) > 1 else ""
            text += f", not {_join(smaller).replace(' and ', ' or ')}" if smaller else ""
        if ooms:
            text += f"; a run at batch {_join([str(b) for b in ooms])} ran out of memory (m)"
        found.append(
            Insight(
                "vram",
                text + ".",
                {
                    "row": row.name,
                    "need_bytes": need_bytes,
                    "basis": need.fit_basis,
                    "batch": need.batch,
                    "fits": [t.label for t in fits],
                },
            )
        )
    if found:
        gib = next((t for t in tiers if t.vram_bytes % 2**30 == 0), None)
        if gib is not None:
            found.append(
                Insight(
                    "vram",
                    f'Tiers are the GPU catalog\'s card memories as NVIDIA names them: a "{gib.label}" card holds '
                    f"{gib.vram_bytes // 2**30} GiB = {format_size(gib.vram_bytes, 'GB')}; fits are decided in bytes, "
                    "on the figure named in each line.",
                    {"tiers": {t.label: t.vram_bytes for t in tiers}},
                )
            )
    return found


def _cost(rows: Sequence[CostRow]) -> list[Insight]:
    from lorabench.cost.table import format_usd

    hosted = [r for r in rows if r.kind == "self_hosted" and r.cost_usd is not None]
    if not hosted:
        return []
    cheap = min(hosted, key=lambda r: r.cost_usd or 0.0)
    dear = max(hosted, key=lambda r: r.cost_usd or 0.0)
    if cheap is dear:
        text = f"Self-hosted {cheap.name} costs {format_usd(cheap.cost_usd)}"
    else:
        text = (
            f"Self-hosted runs cost {format_usd(cheap.cost_usd)} ({cheap.name}) to {format_usd(dear.cost_usd)} "
            f"({dear.name})"
        )
    hours = [r.gpu_hours for r in hosted if r.gpu_hours is not None]
    if hours:
        span = f"{min(hours):,.1f}" if min(hours) == max(hours) else f"{min(hours):,.1f}-{max(hours):,.1f}"
        text += f", for {span} GPU-hours"
    others = [
        r
        for r in rows
        if r.kind != "self_hosted" and r.cost_usd is not None and r.x_vs_cheapest_self_hosted is not None
    ]
    if others:
        text += "; " + _join(
            [
                f"{r.name} costs {r.x_vs_cheapest_self_hosted:,.1f}× the cheapest ({format_usd(r.cost_usd)})"
                for r in others
            ]
        )
    unknown = [r.name for r in rows if r.cost_usd is None]
    text += "." + (f" No cost is known for {_join(unknown)}." if unknown else "")
    return [
        Insight(
            "cost",
            text,
            {
                "cheapest": cheap.name,
                "cheapest_usd": cheap.cost_usd,
                "multiples": {r.name: r.x_vs_cheapest_self_hosted for r in others},
            },
        )
    ]


_PREDICTED = " (predicted)"


def _gap_reasons(row: CostRow, twin: CostRow) -> str:
    """What is known about a predicted row's gap to its published twin: the twin's own note, then the prediction's."""
    time_prov = row.provenance.get("time_s") or {}
    reasons = [twin.note] if twin.note else []
    if time_prov.get("bits") == 8:
        reasons.append("the prediction takes bitsandbytes' LLM.int8 8-bit path, the slowest the fitting runs measured")
    if "EXTRAPOLATED" in str(time_prov.get("provenance", "")):
        reasons.append(
            f"the time engine was fitted on another GPU than the {row.gpu or 'target GPU'}; its 80% band there "
            "comes from its errors on published runs of other GPUs"
        )
    return "; ".join(reasons) or "nothing more is known about the difference"


def _predicted_vs_published(rows: Sequence[CostRow]) -> list[Insight]:
    """Where a predicted self-hosted row has a published-hours twin (``NAME (predicted)`` / ``NAME (...)``)."""
    found: list[Insight] = []
    for row in rows:
        if row.kind != "self_hosted" or not row.name.endswith(_PREDICTED) or row.time_s is None:
            continue
        base = row.name.removesuffix(_PREDICTED)
        twins = [
            r
            for r in rows
            if r is not row and r.kind == "self_hosted" and r.name.startswith(base + " (") and r.time_s is not None
        ]
        band = (row.provenance.get("time_s") or {}).get("interval_s")
        for twin in twins:
            published = twin.time_s or 0.0
            low, high = band if isinstance(band, list) and len(band) == 2 else (row.time_s, row.time_s)
            inside = low <= published <= high
            text = (
                f"{base}: predicted {row.time_s / 3600:,.1f} h (80% band {low / 3600:,.1f}-{high / 3600:,.1f} h) "
                f"against {twin.name.removeprefix(base).strip(' ()')} {published / 3600:,.1f} h"
            )
            text += " (inside the band)." if inside else f" ({published / row.time_s:.2f}x): {_gap_reasons(row, twin)}."
            found.append(
                Insight(
                    "cost",
                    text,
                    {"predicted_s": row.time_s, "interval_s": [low, high], "published_s": published},
                )
            )
    return found


def compute_insights(
    memory: MemoryData | None, cost_rows: Sequence[CostRow], unit: SizeUnit = "GB", gpu: bool = True
) -> list[Insight]:
    """Every insight the figures support, in the seed's order (quantization, rank, batch, VRAM, cost).

    Args:
        memory: The memory table's data (None when there is none).
        cost_rows: Cost rows, multiples already set.
        unit: Display unit for sizes.
        gpu: The memory figures are GPU figures; CPU ones get no GPU memory tiers (a CPU allocator's peak says
            nothing about which card a run fits).

    Returns:
        Insights; a topic whose figures are missing contributes none.
    """
    found: list[Insight] = []
    if memory is not None:
        found += _quantization(memory, unit) + _rank(memory, unit) + _batch(memory, unit)
        found += _vram(memory, unit) if gpu else []
    return found + _cost(cost_rows) + _predicted_vs_published(cost_rows)
