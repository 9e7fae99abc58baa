"""The report's plots, drawn with matplotlib's object API on the Agg canvas (no display, no pyplot state).

Each as PNG and SVG bytes, with a caption that says what was measured where: per memory section (model and device
class) peak memory per configuration stacked by component and throughput against batch size; once, the cost
comparison (dots on a log scale: a log axis has no zero for a bar to start from) and time and GPU-hours per method.
Bars start at zero; a throughput axis starts at zero; repeats give error bars (one standard deviation). A plot
without data is skipped with the reason, which the report prints; without matplotlib every plot is skipped with an
install hint.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lorabench.report.memory import MemoryData, SizeUnit, config_key
from lorabench.report.sections import MemorySection, device_class
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
    caption: str | None = None
    section: str | None = None


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


def _memory(memory: MemoryData | None, unit: SizeUnit, section: MemorySection | None = None) -> Plot:
    name = f"memory-{section.slug}" if section is not None else "memory"
    title = "Peak memory per configuration" + (f": {section.title}" if section is not None else f" ({unit})")
    bars = []
    if memory is not None:
        for row in memory.rows:
            for batch in memory.batches:
                cell = row.cell(batch)
                if cell.kind in ("measured", "predicted") and cell.peak_bytes is not None:
                    mark = "(m)" if cell.kind == "measured" else "(p)"
                    bars.append((f"{row.name} · batch {batch} {mark}", cell))
    if not bars:
        return Plot(name, title, skipped="no measured or predicted peak memory in the records", section=_slug(section))
    bars = bars[:_MAX_BARS]
    # a section of small figures (a test model on the CPU) is drawn in MB, not as slivers of a GB
    shown: str = unit
    divisor = _DIVISOR[unit]
    if max((c.peak_bytes or 0.0) for _, c in bars) < _DIVISOR[unit]:
        shown, divisor = {"GB": ("MB", 1e6), "GiB": ("MiB", float(2**20))}[unit]
    fig = _figure(9.0, max(2.5, 0.32 * len(bars) + 1.4))
    ax = fig.add_subplot()
    colours = {c: f"C{i}" for i, c in enumerate((*COMPONENTS, "other"))}
    used: set[str] = set()
    for y, (_, cell) in enumerate(reversed(bars)):
        total = (cell.peak_bytes or 0.0) / divisor
        if cell.kind == "predicted" and cell.breakdown:
            left = 0.0
            parts = [(c, cell.breakdown.get(c, 0.0)) for c in COMPONENTS]
            parts += [(c, v) for c, v in cell.breakdown.items() if c not in COMPONENTS]
            for component, value in parts:
                width = value / divisor
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
    ax.set_xlabel(f"peak allocated per device ({shown})")
    ax.set_xlim(left=0)
    ax.set_title(title)
    ax.margins(x=0.12)
    fig.legend(fontsize=8, loc="outside lower center", ncols=4)
    png, svg = _encode(fig)
    caption = "Peak allocated bytes per device, bars from zero"
    if section is not None:
        caption += f"; {section.where}"
    if memory is not None and memory.counters:
        caption += f"; (m) counter: {'; '.join(memory.counters)}"
    if memory is not None and memory.engines:
        caption += f"; (p) engine: {', '.join(memory.engines)}, coloured by component at the peak"
    return Plot(name, title, png, svg, caption=caption + ".", section=_slug(section))


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
        colour = _KIND_COLOURS.get(row.kind, "C0")
        ax.plot([row.cost_usd or 0.0], [y], "o", color=colour, markersize=7, label=None if label in used else label)
        used.add(label)
        ax.text(row.cost_usd or 0.0, y, f"  {format_usd(row.cost_usd)}", va="center", fontsize=8)
    ax.grid(axis="x", which="major", alpha=0.3)
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
    kinds = sorted({p.get("kind", "?") for r in known for p in r.provenance.values()})
    caption = (
        "Estimated cost per row of the cost table, as dots on a log axis (a log axis has no zero, so no bars); "
        f"figures from {', '.join(kinds)} (see the table's Sources column and Price sources)."
    )
    return Plot("cost", title, png, svg, caption=caption)


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


def _spread(values: Sequence[float | None]) -> float | None:
    """One sample standard deviation over repeats (None with fewer than two)."""
    known = [v for v in values if v is not None]
    return statistics.stdev(known) if len(known) >= 2 else None


def _time(rows: Sequence[CostRow], runs: Sequence[RunRecord], names: dict[str, str]) -> Plot:
    title = "Time and GPU-hours per method"
    items: list[tuple[str, float | None, float | None]] = [
        (r.name, r.time_s, r.gpu_hours) for r in rows if r.kind == "self_hosted" and (r.time_s or r.gpu_hours)
    ]
    errors: list[float | None] = [None for _ in items]
    kinds = sorted({str((r.provenance.get("time_s") or {}).get("kind", "?")) for r in rows if r.kind == "self_hosted"})
    source = "cost records (self-hosted rows)"
    caption = (
        f"Wall clock of the whole job per self-hosted row of the cost table (time: {', '.join(kinds)}); bars from zero."
    )
    if not items:
        grouped: dict[str, list[RunRecord]] = {}
        for run in runs:
            if run.status == "ok" and (run.wall_time_s or run.gpu_hours):
                where = device_class(run)
                label = f"{names.get(run.path, run.model_name)} · batch {run.spec.micro_batch} · {where}"
                grouped.setdefault(label, []).append(run)
        items = [
            (label, _mean([r.wall_time_s for r in group]), _mean([r.gpu_hours for r in group]))
            for label, group in grouped.items()
        ]
        errors = [_spread([r.wall_time_s for r in group]) for group in grouped.values()]
        source = "run records (measured steps, mean over repeats)"
        caption = (
            "Wall clock of the measured steps of each run (not a whole job), mean over repeats, error bars one "
            "standard deviation where a configuration was repeated; the device class is in each label."
        )
    if not items:
        return Plot("time", title, skipped="no self-hosted cost rows or run records with a time")
    items = items[:_MAX_BARS]
    with_hours = any(h is not None for _, _, h in items)
    fig = _figure(9.0 if with_hours else 6.0, max(2.5, 0.4 * len(items) + 1.4))
    axes = fig.subplots(1, 2 if with_hours else 1, sharey=True, squeeze=False)[0]
    unit, divisor = _time_unit([t for _, t, _ in items if t is not None])
    labels = [name for name, _, _ in reversed(items)]
    times = [(t or 0.0) / divisor for _, t, _ in reversed(items)]
    xerr = [(e or 0.0) / divisor for e in reversed(errors)]
    axes[0].barh(range(len(items)), times, color="#457b9d", xerr=xerr if any(xerr) else None, capsize=3)
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
    for ax in axes:
        ax.set_xlim(left=0)
    fig.suptitle(f"{title} — from {source}")
    png, svg = _encode(fig)
    return Plot("time", title, png, svg, caption=caption)


def _throughput(section: MemorySection, names: dict[str, str]) -> Plot:
    name = f"throughput-{section.slug}"
    title = f"Throughput vs batch size (non-padded tokens/s): {section.title}"
    series: dict[str, dict[int, list[float]]] = {}
    for run in section.runs:
        if run.status == "ok" and run.tokens_per_s_nonpad is not None:
            label = names.get(run.path, run.model_name)
            series.setdefault(label, {}).setdefault(run.spec.micro_batch, []).append(run.tokens_per_s_nonpad)
    if not series:
        return Plot(name, title, skipped="no run records with a measured throughput", section=section.slug)
    if len({b for points in series.values() for b in points}) == 1:
        return _throughput_bars(section, series, name, title)
    fig = _figure(9.0, 4.5)
    ax = fig.add_subplot()
    batches: set[int] = set()
    repeated = False
    for label, points in sorted(series.items()):
        xs = sorted(points)
        batches.update(xs)
        means = [statistics.fmean(points[x]) for x in xs]
        errs = [statistics.stdev(points[x]) if len(points[x]) >= 2 else 0.0 for x in xs]
        repeated = repeated or any(errs)
        ax.errorbar(xs, means, yerr=errs if any(errs) else None, marker="o", capsize=3, label=label)
    ax.set_xticks(sorted(batches))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("micro batch per device")
    ax.set_ylabel("non-padded tokens/s (all ranks)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    png, svg = _encode(fig)
    caption = (
        f"Non-padded tokens per second of the measured steps, {section.measured_where}; y axis from zero; "
        "mean over repeats"
        + (", error bars one standard deviation." if repeated else " (no configuration was repeated: no error bars).")
    )
    return Plot(name, title, png, svg, caption=caption, section=section.slug)


def _throughput_bars(section: MemorySection, series: dict[str, dict[int, list[float]]], name: str, title: str) -> Plot:
    """One batch size only: a bar per configuration (from zero), error bars where it was repeated."""
    batch = next(b for points in series.values() for b in points)
    items = sorted((label, points[batch]) for label, points in series.items())
    fig = _figure(9.0, max(2.5, 0.4 * len(items) + 1.4))
    ax = fig.add_subplot()
    means = [statistics.fmean(values) for _, values in reversed(items)]
    errs = [statistics.stdev(values) if len(values) >= 2 else 0.0 for _, values in reversed(items)]
    ax.barh(range(len(items)), means, xerr=errs if any(errs) else None, capsize=3, color="#457b9d")
    for y, value in enumerate(means):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    ax.set_yticks(range(len(items)), [label for label, _ in reversed(items)], fontsize=8)
    ax.set_xlim(left=0)
    ax.margins(x=0.15)
    ax.set_xlabel(f"non-padded tokens/s (all ranks), micro batch {batch}")
    title = title.replace("vs batch size ", "")
    ax.set_title(title)
    png, svg = _encode(fig)
    caption = (
        f"Non-padded tokens per second of the measured steps at micro batch {batch} (the only batch size measured), "
        f"{section.measured_where}; bars from zero; mean over repeats"
        + (", error bars one standard deviation." if any(errs) else " (no configuration was repeated: no error bars).")
    )
    return Plot(name, title, png, svg, caption=caption, section=section.slug)


def _slug(section: MemorySection | None) -> str | None:
    return section.slug if section is not None else None


def render_plots(
    sections: Sequence[MemorySection], cost_rows: Sequence[CostRow], runs: Sequence[RunRecord], unit: SizeUnit = "GB"
) -> list[Plot]:
    """Draw every plot the records support: memory and throughput per section, then cost and time.

    Args:
        sections: The memory sections (model x device class).
        cost_rows: Cost rows.
        runs: Run records.
        unit: Size unit of the memory plots.

    Returns:
        Drawn plots, or skipped ones with the reason (``memory`` and ``throughput`` once each when no section
        has data for them).
    """
    try:
        from matplotlib import rc_context
    except ImportError:
        why = "matplotlib is not installed (pip install matplotlib)"
        return [Plot(name, name, skipped=why) for name in PLOT_NAMES]
    names: dict[str, str] = {}
    for section in sections:
        by_key = {row.key: row.name for row in section.data.rows}
        for run in section.runs:
            name = by_key.get(config_key(run.spec, run.model_key))
            if name is not None:
                names[run.path] = name
    # names come from records: never parse "$...$" in them as mathtext (slow, and a bad formula fails the draw);
    # a fixed hash salt keeps SVG ids stable, so the same records give the same files
    with rc_context({"text.parse_math": False, "svg.hashsalt": "lorabench"}):
        memory = [p for p in (_memory(s.data, unit, s) for s in sections) if p.png]
        throughput = [p for p in (_throughput(s, names) for s in sections) if p.png]
        return [
            *(memory or [_memory(None, unit)]),
            _cost(cost_rows),
            _time(cost_rows, runs, names),
            *(
                throughput
                or [
                    Plot(
                        "throughput",
                        "Throughput vs batch size (non-padded tokens/s)",
                        skipped="no run records with a measured throughput",
                    )
                ]
            ),
        ]
