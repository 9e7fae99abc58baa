"""The report's inference section: latency and throughput per cell, LoRA-vs-base slowdown, the adapter lifecycle.

Built from ``lorabench.infer`` records: a table of every measured cell, the slowdown of each adapter variant against
the base in the same cell, an "adapter lifecycle" table (training cost from the adapter's run record beside its
serving cost per 1M output tokens, and the price catalog's per-token prices for fine-tuned API models where it has
any), and two plots: latency against prompt length and throughput against batch size, per variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lorabench.report.infer_records import InferRecord
from lorabench.report.plots import Plot, _encode, _figure
from lorabench.report.tables import Table
from lorabench.units import NA, format_bytes

__all__ = ["INFER_PLOT_NAMES", "InferenceSection", "build_inference", "inference_plots"]

INFER_PLOT_NAMES = ("infer_latency", "infer_throughput")
_NO_API_PRICES = "none in the price catalog"


@dataclass(frozen=True)
class InferenceSection:
    """The inference tables and the lifecycle sentences."""

    cells: Table
    slowdown: Table | None
    lifecycle: Table | None
    lifecycle_lines: tuple[str, ...]

    @property
    def tables(self) -> list[tuple[str, Table]]:
        """The tables present, with their section names."""
        named = (("inference", self.cells), ("inference_slowdown", self.slowdown), ("lifecycle", self.lifecycle))
        return [(name, t) for name, t in named if t is not None]


def _f(value: float | None, fmt: str, scale: float = 1.0) -> str:
    return NA if value is None else format(value * scale, fmt)


def _usd(value: float | None) -> str:
    return NA if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _row(r: InferRecord) -> list[str]:
    head = [r.model_name, r.variant, r.device or NA, str(r.batch_size), str(r.prompt_len), str(r.max_new_tokens)]
    if r.status != "ok":
        return head + [r.status] * 8
    e2e = "/".join(_f(v, ".1f", 1e3) for v in (r.e2e_latency_s_p50, r.e2e_latency_s_p90, r.e2e_latency_s_p99))
    return [
        *head,
        _f(r.ttft_s_p50, ".1f", 1e3),
        _f(r.time_per_output_token_s, ".2f", 1e3),
        e2e,
        _f(r.output_tokens_per_s, ",.1f"),
        _f(r.requests_per_s, ",.2f"),
        format_bytes(r.peak_allocated_bytes, "MB"),
        _f(r.energy_per_output_token_j, ".4f"),
        _usd(r.cost_per_1m_output_tokens_usd),
    ]


def _order(r: InferRecord) -> tuple[Any, ...]:
    from lorabench.infer.options import VARIANTS

    rank = VARIANTS.index(r.variant) if r.variant in VARIANTS else len(VARIANTS)
    return (r.model_key, r.device or "", rank, r.variant, r.batch_size, r.prompt_len, r.max_new_tokens)


def _cells(records: Sequence[InferRecord]) -> Table:
    counters = sorted({r.peak_counter for r in records if r.peak_counter})
    note = (
        "Measured (lorabench infer): greedy decoding of exactly max_new_tokens per request after untimed warm-up runs; "
        "TTFT = prefill forward + first token; ms/token = mean decode step; e2e percentiles over the timed repeats; "
        "$/1M out = GPU rate / 3600 / output tokens/s x 1e6. Peak memory counter(s): "
        + ("; ".join(counters) if counters else NA)
        + "."
    )
    headers = [
        "Model",
        "Variant",
        "Device",
        "Batch",
        "Prompt",
        "New",
        "TTFT p50 (ms)",
        "ms / output token",
        "e2e p50/p90/p99 (ms)",
        "Output tokens/s",
        "Requests/s",
        "Peak memory",
        "J / output token",
        "$ / 1M output tokens",
    ]
    return Table("Inference latency and throughput", headers, [_row(r) for r in sorted(records, key=_order)], note)


def _slowdown(records: Sequence[InferRecord]) -> Table | None:
    from lorabench.infer.record import SLOWDOWN_METHOD, slowdowns

    rows: list[list[str]] = []
    for model in sorted({(r.model_key, r.model_name, r.device) for r in records}):
        flat = [
            {
                "variant": r.variant,
                "status": r.status,
                "batch_size": r.batch_size,
                "prompt_len": r.prompt_len,
                "max_new_tokens": r.max_new_tokens,
                "device": r.device,
                "output_tokens_per_s": r.output_tokens_per_s,
            }
            for r in records
            if (r.model_key, r.model_name, r.device) == model
        ]
        for item in slowdowns(flat):
            rows.append(
                [
                    model[1],
                    str(model[2] or NA),
                    item["variant"],
                    item["reference"],
                    str(item["batch_size"]),
                    str(item["prompt_len"]),
                    f"{item['slowdown_pct']:+.1f}%",
                ]
            )
    if not rows:
        return None
    headers = ["Model", "Device", "Variant", "Against", "Batch", "Prompt", "Slowdown"]
    return Table("LoRA vs base slowdown", headers, rows, f"Slowdown = {SLOWDOWN_METHOD}.")


def _best(records: Sequence[InferRecord], variant: str) -> InferRecord | None:
    priced = [r for r in records if r.variant == variant and r.cost_per_1m_output_tokens_usd is not None]
    return min(priced, key=lambda r: r.cost_per_1m_output_tokens_usd or 0.0) if priced else None


def _api_prices() -> str:
    from lorabench.infer.cost import api_inference_prices

    prices = api_inference_prices()
    if not prices:
        return _NO_API_PRICES
    return "; ".join(
        f"{p['display_name']} ${p['output_usd_per_mtok']:g} out ({p['prices_checked']}, {p['source']})" for p in prices
    )


def _lifecycle(records: Sequence[InferRecord]) -> tuple[Table | None, list[str]]:
    adapters = sorted({(r.model_name, r.adapter_sha256) for r in records if r.adapter_sha256})
    if not adapters:
        return None, []
    api = _api_prices()
    rows, lines = [], []
    for model_name, sha in adapters:
        mine = [r for r in records if r.adapter_sha256 == sha and r.status == "ok"]
        train = next((r for r in mine if r.training_record), None)
        train_cost = train.training_cost_usd if train else None
        where = "n/a (no lorabench run record beside the adapter)"
        if train is not None:
            where = f"{train.training_device or NA} run ({train.training_record})"
        served = {v: _best(mine, v) for v in ("unmerged", "merged")}
        cells = []
        for variant, best in served.items():
            if best is None:
                cells.append(f"{NA} (no priced {variant} cell: a GPU rate is needed)")
            else:
                cells.append(
                    f"{_usd(best.cost_per_1m_output_tokens_usd)} (batch {best.batch_size}, prompt {best.prompt_len}, "
                    f"{best.device}, rate ${best.usd_per_gpu_hour}/h from {best.rate_source})"
                )
        rows.append([f"{model_name} · {sha[:12]}", where, _usd(train_cost), *cells, api])
        lines.append(
            f"Adapter lifecycle ({model_name}, adapter {sha[:12]}): training {_usd(train_cost)} + serving "
            f"{cells[0]} per 1M output tokens unmerged, {cells[1]} merged; fine-tuned API per-token prices: {api}."
        )
    headers = [
        "Adapter",
        "Trained on",
        "Training cost",
        "Serving $/1M output tokens (unmerged, cheapest cell)",
        "Serving $/1M output tokens (merged, cheapest cell)",
        "Fine-tuned API $/1M output tokens (catalog)",
    ]
    note = "Training cost comes from the adapter's run record; serving cost from the inference records' GPU rate."
    return Table("Adapter lifecycle: training + serving", headers, rows, note), lines


def build_inference(records: Sequence[InferRecord]) -> InferenceSection | None:
    """The inference tables, or None without inference records."""
    if not records:
        return None
    lifecycle, lines = _lifecycle(records)
    return InferenceSection(_cells(records), _slowdown(records), lifecycle, tuple(lines))


def _series_plot(
    records: Sequence[InferRecord],
    name: str,
    title: str,
    x_of: str,
    series_of: str,
    y_label: str,
    value: str,
    scale: float,
) -> Plot:
    series: dict[str, dict[int, float]] = {}
    models = {r.model_key for r in records}
    for r in records:
        y = getattr(r, value)
        if r.status != "ok" or y is None:
            continue
        label = f"{r.variant} · {series_of} {getattr(r, 'batch_size' if series_of == 'batch' else 'prompt_len')}"
        if len(models) > 1 or len({r.device for r in records}) > 1:
            label = f"{r.model_key} ({r.device}) · {label}"
        series.setdefault(label, {})[getattr(r, x_of)] = y * scale
    if not series:
        return Plot(name, title, skipped="no measured inference cells")
    fig = _figure(9.0, 4.8)
    ax = fig.add_subplot()
    xs_all: set[int] = set()
    for label, points in sorted(series.items()):
        xs = sorted(points)
        xs_all.update(xs)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=label)
    ax.set_xticks(sorted(xs_all))
    ax.set_xlabel("prompt length (tokens)" if x_of == "prompt_len" else "batch size (requests)")
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=2)
    png, svg = _encode(fig)
    return Plot(name, title, png, svg)


def inference_plots(records: Sequence[InferRecord], draw: bool = True) -> list[Plot]:
    """Latency vs prompt length and throughput vs batch size, one line per variant (and batch / prompt length)."""
    titles = {
        "infer_latency": "Inference latency vs prompt length (e2e p50, ms)",
        "infer_throughput": "Inference throughput vs batch size (output tokens/s)",
    }
    if not draw:
        return [Plot(n, titles[n], skipped="not drawn (--no-plots)") for n in INFER_PLOT_NAMES]
    if not records:
        return [Plot(n, titles[n], skipped="no inference records") for n in INFER_PLOT_NAMES]
    try:
        from matplotlib import rc_context
    except ImportError:
        return [Plot(n, titles[n], skipped="matplotlib is not installed (pip install matplotlib)") for n in titles]
    with rc_context({"text.parse_math": False, "svg.hashsalt": "lorabench"}):
        return [
            _series_plot(
                records, "infer_latency", titles["infer_latency"], "prompt_len", "batch", "ms", "e2e_latency_s_p50", 1e3
            ),
            _series_plot(
                records,
                "infer_throughput",
                titles["infer_throughput"],
                "batch_size",
                "prompt",
                "output tokens/s",
                "output_tokens_per_s",
                1.0,
            ),
        ]
