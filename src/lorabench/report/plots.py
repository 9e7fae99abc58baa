"""The report's plots, drawn with matplotlib's object API on the Agg canvas (no display, no pyplot state).

Four plots, each as PNG and SVG bytes: peak memory per configuration stacked by component, cost comparison on a
log scale, time and GPU-hours per method, and throughput against batch size. A plot without data is skipped with
the reason, which the report prints; without matplotlib every plot is skipped with an install hint.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lorabench.report.memory import MemoryData, SizeUnit, config_key
from lorabench.report.sources import RunRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lorabench.cost.scenario import CostRow

__all__ = ["PLOT_NAMES", "Plot", "render_plots"]

PLOT_NAMES = ("memory", "cost", "time", "throughput")
COMPONENTS = ("weights", "quant_constants", "adapter", "gradients", "optimizer_state", "activations", "temporaries")
_MAX_BARS = 80
_KIND_COLOURS = {"self_hosted": "#2a9d8f", "service": "#e76f51", "reference": "#6d597a"}
_DIVISOR = {"GB": 1e9, "GiB": float(2**30)}


@dataclass(frozen=True)
class Plot:
    """One plot: PNG and SVG bytes, or why it was skipped."""

    name: str
    title: str
    png: bytes | None = None
    svg: bytes | None = None
    skipped: str | None = None


def _encode(fig: Figure) -> tuple[bytes, bytes]:
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    fig.savefig(svg, format="svg", metadata={"Date": None})
    return png.getvalue(), svg.getvalue()


def _usd_tick(value: float, _: object = None) -> str:
    """Compact dollar ticks for the log axis (plain text: mathtext is off)."""
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= divisor:
            return f"${value / divisor:g}{suffix}"
    return f"${value:g}"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _memory(memory: MemoryData | None, unit: SizeUnit) -> Plot:
    title = f"Peak memory per configuration ({unit})"
    bars = []
    if memory is not None:
        for row in memory.rows:
            for batch in memory.batches:
                cell = row.cell(batch)
                if cell.kind in ("measured", "predicted") and cell.peak_bytes is not None:
                    mark = "(m)" if cell.kind == "measured" else "(p)"
                    bars.append((f"{row.name} · batch {batch} {mark}", cell))
    if not bars:
        return Plot("memory", title, skipped="no measured or predicted peak memory in the records")
    bars = bars[:_MAX_BARS]
    fig = _figure(9.0, max(2.5, 0.32 * len(bars) + 1.4))
    ax = fig.add_subplot()
    colours = {c: f"C{i}" for i, c in enumerate((*COMPONENTS, "other"))}
    used: set[str] = set()
    for y, (_, cell) in enumerate(reversed(bars)):
        total = (cell.peak_bytes or 0.0) / _DIVISOR[unit]
        if cell.kind == "predicted" and cell.breakdown:
            left = 0.0
            parts = [(c, cell.breakdown.get(c, 0.0)) for c in COMPONENTS]
            parts += [(c, v) for c, v in cell.breakdown.items() if c not in COMPONENTS]
            for component, value in parts:
                width = value / _DIVISOR[unit]
                if width <= 0:
                    continue
                colour = colours.get(component, colours["other"])
                label = component if component not in used else None
                ax.barh(y, width, left=left, color=colour, label=label)
                used.add(component)
                left += width
        else:
            label = "measured peak (no breakdown)" if cell.kind == "measured" else "predicted peak (no breakdown)"
            hatch = "//" if cell.kind == "measured" else ".."
            ax.barh(y, total, color="#bbbbbb", hatch=hatch, edgecolor="#555555", label=None if label in used else label)
            used.add(label)
        ax.text(total, y, f" {total:,.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(bars)), [label for label, _ in reversed(bars)], fontsize=8)
    ax.set_xlabel(f"peak allocated per device ({unit})")
    ax.set_title(title)
    ax.margins(x=0.12)
    fig.legend(fontsize=8, loc="outside lower center", ncols=4)
    png, svg = _encode(fig)
    return Plot("memory", title, png, svg)


def _cost(rows: Sequence[CostRow]) -> Plot:
    from lorabench.cost.table import format_usd

    title = "Fine-tuning cost (USD, log scale)"
    known = [r for r in rows if r.cost_usd is not None and r.cost_usd > 0]
    if not known:
        return Plot("cost", title, skipped="no cost rows with a known cost")
    fig = _figure(9.0, max(2.5, 0.4 * len(known) + 1.4))
    ax = fig.add_subplot()
    used: set[str] = set()
    for y, row in enumerate(reversed(known)):
        label = row.kind.replace("_", "-")
        ax.barh(y, row.cost_usd or 0.0, color=_KIND_COLOURS.get(row.kind, "C0"), label=None if label in used else label)
        used.add(label)
        ax.text(row.cost_usd or 0.0, y, f" {format_usd(row.cost_usd)}", va="center", fontsize=8)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(_usd_tick))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(range(len(known)), [r.name for r in reversed(known)], fontsize=8)
    ax.set_xlabel("estimated cost (USD, log scale)")
    ax.set_title(title)
    ax.margins(x=0.15)
    fig.legend(fontsize=8, loc="outside lower center", ncols=3)
    png, svg = _encode(fig)
    return Plot("cost", title, png, svg)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _time_unit(seconds: Sequence[float]) -> tuple[str, float]:
    top = max(seconds) if seconds else 0.0
    if top < 120:
        return "s", 1.0
    if top < 2 * 3600:
        return "min", 60.0
    return "h", 3600.0


def _time(rows: Sequence[CostRow], runs: Sequence[RunRecord], names: dict[str, str]) -> Plot:
    title = "Time and GPU-hours per method"
    items: list[tuple[str, float | None, float | None]] = [
        (r.name, r.time_s, r.gpu_hours) for r in rows if r.kind == "self_hosted" and (r.time_s or r.gpu_hours)
    ]
    source = "cost records (self-hosted rows)"
    if not items:
        grouped: dict[str, list[RunRecord]] = {}
        for run in runs:
            if run.status == "ok" and (run.wall_time_s or run.gpu_hours):
                label = f"{names.get(run.path, run.model_name)} · batch {run.spec.micro_batch}"
                grouped.setdefault(label, []).append(run)
        items = [
            (label, _mean([r.wall_time_s for r in group]), _mean([r.gpu_hours for r in group]))
            for label, group in grouped.items()
        ]
        source = "run records (measured steps, mean over repeats)"
    if not items:
        return Plot("time", title, skipped="no self-hosted cost rows or run records with a time")
    items = items[:_MAX_BARS]
    with_hours = any(h is not None for _, _, h in items)
    fig = _figure(9.0 if with_hours else 6.0, max(2.5, 0.4 * len(items) + 1.4))
    axes = fig.subplots(1, 2 if with_hours else 1, sharey=True, squeeze=False)[0]
    unit, divisor = _time_unit([t for _, t, _ in items if t is not None])
    labels = [name for name, _, _ in reversed(items)]
    times = [(t or 0.0) / divisor for _, t, _ in reversed(items)]
    axes[0].barh(range(len(items)), times, color="#457b9d")
    axes[0].set_yticks(range(len(items)), labels, fontsize=8)
    axes[0].set_xlabel(f"wall time ({unit})")
    for y, value in enumerate(times):
        axes[0].text(value, y, f" {value:,.1f}", va="center", fontsize=8)
    axes[0].margins(x=0.2)
    if with_hours:
        hours = [h or 0.0 for _, _, h in reversed(items)]
        axes[1].barh(range(len(items)), hours, color="#f4a261")
        axes[1].set_xlabel("GPU-hours")
        for y, value in enumerate(hours):
            axes[1].text(value, y, f" {value:,.1f}", va="center", fontsize=8)
        axes[1].margins(x=0.2)
    fig.suptitle(f"{title} — from {source}")
    png, svg = _encode(fig)
    return Plot("time", title, png, svg)


def _throughput(runs: Sequence[RunRecord], names: dict[str, str]) -> Plot:
    title = "Throughput vs batch size (non-padded tokens/s)"
    series: dict[str, dict[int, list[float]]] = {}
    for run in runs:
        if run.status == "ok" and run.tokens_per_s_nonpad is not None:
            name = names.get(run.path, run.model_name)
            series.setdefault(name, {}).setdefault(run.spec.micro_batch, []).append(run.tokens_per_s_nonpad)
    if not series:
        return Plot("throughput", title, skipped="no run records with a measured throughput")
    fig = _figure(9.0, 4.5)
    ax = fig.add_subplot()
    batches: set[int] = set()
    for name, points in sorted(series.items()):
        xs = sorted(points)
        batches.update(xs)
        ax.plot(xs, [sum(points[x]) / len(points[x]) for x in xs], marker="o", label=name)
    ax.set_xticks(sorted(batches))
    ax.set_xlabel("micro batch per device")
    ax.set_ylabel("non-padded tokens/s (all ranks, mean over repeats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    png, svg = _encode(fig)
    return Plot("throughput", title, png, svg)


def render_plots(
    memory: MemoryData | None, cost_rows: Sequence[CostRow], runs: Sequence[RunRecord], unit: SizeUnit = "GB"
) -> list[Plot]:
    """Draw every plot the records support, in :data:`PLOT_NAMES` order.

    Args:
        memory: The memory table's data.
        cost_rows: Cost rows.
        runs: Run records.
        unit: Size unit of the memory plot.

    Returns:
        One :class:`Plot` per name: drawn, or skipped with the reason.
    """
    try:
        from matplotlib import rc_context
    except ImportError:
        why = "matplotlib is not installed (pip install matplotlib)"
        return [Plot(name, name, skipped=why) for name in PLOT_NAMES]
    names: dict[str, str] = {}
    if memory is not None:
        by_key = {row.key: row.name for row in memory.rows}
        for run in runs:
            name = by_key.get(config_key(run.spec, run.model_key))
            if name is not None:
                names[run.path] = name
    # names come from records: never parse "$...$" in them as mathtext (slow, and a bad formula fails the draw);
    # a fixed hash salt keeps SVG ids stable, so the same records give the same files
    with rc_context({"text.parse_math": False, "svg.hashsalt": "lorabench"}):
        return [_memory(memory, unit), _cost(cost_rows), _time(cost_rows, runs, names), _throughput(runs, names)]
