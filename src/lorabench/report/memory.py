"""The GPU memory table: one row per configuration (model, method, rank, bits), one column per batch size.

Each cell is *measured* where a run record exists (the run's ``peak_allocated_bytes``; the largest over repeats),
else *predicted* (an estimate record's ``peak_allocated_bytes``), else unknown. A run that ran out of memory is a
measurement too ("OOM"). "Model Size" is the weights as loaded (estimate records' ``weights_bytes``) and
"Percentage" that size over the model's 16-bit base weights, as on the FinLoRA resource page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from lorabench.report.sources import EstimateRecord, RunRecord, Sources
from lorabench.report.tables import Table
from lorabench.spec import RunSpec
from lorabench.units import NA, format_count

__all__ = [
    "BaseRow",
    "Cell",
    "ConfigKey",
    "MemoryData",
    "MemoryRow",
    "SizeUnit",
    "build_memory",
    "format_size",
    "memory_table",
]

SizeUnit = Literal["GB", "GiB"]
_SMALL = {"GB": ("MB", 1e6), "GiB": ("MiB", float(2**20))}
_BIG = {"GB": 1e9, "GiB": float(2**30)}
_METHOD_ORDER = {"lora": 0, "qlora": 1, "dora": 2, "rslora": 3}
MARKS = {"measured": "(m)", "predicted": "(p)"}


def format_size(value: float | None, unit: SizeUnit = "GB", signed: bool = False) -> str:
    """``30.91 GB``; below one unit ``77.46 MB`` (or MiB), so small figures keep their digits; None gives ``n/a``."""
    if value is None:
        return NA
    sign = "+" if signed and value >= 0 else ""
    if abs(value) >= _BIG[unit]:
        return f"{sign}{value / _BIG[unit]:,.2f} {unit}"
    small, divisor = _SMALL[unit]
    return f"{sign}{value / divisor:,.2f} {small}"


@dataclass(frozen=True, order=True)
class ConfigKey:
    """What identifies a row: the fields that change the weights or the peak, batch size aside."""

    model_key: str
    method: str
    rank: int
    bits: int
    setting: tuple[tuple[str, str], ...]

    @property
    def weights_key(self) -> tuple[str, str, int, int, str]:
        """The fields the weights depend on (model, method, rank, bits, targets)."""
        return (self.model_key, self.method, self.rank, self.bits, dict(self.setting)["targets"])


def _setting(spec: RunSpec) -> tuple[tuple[str, str], ...]:
    targets = spec.targets if isinstance(spec.targets, str) else "+".join(spec.targets)
    return (
        ("targets", targets),
        ("seq_len", f"seq{spec.seq_len}"),
        ("optimizer", spec.optimizer),
        ("grad_ckpt", "ckpt" if spec.grad_ckpt else "no-ckpt"),
        ("dropout", f"dropout{spec.dropout:g}"),
        ("parallel", f"{spec.hardware.count}gpu-{spec.parallelism}"),
    )


def config_key(spec: RunSpec, model_key: str) -> ConfigKey:
    """The row a record belongs to."""
    return ConfigKey(model_key, spec.method, spec.rank, spec.bits, _setting(spec))


@dataclass(frozen=True)
class Cell:
    """One memory figure: a configuration at one batch size.

    Attributes:
        batch: Micro batch per device.
        kind: ``measured``, ``predicted``, ``oom`` (a run ran out of memory) or ``none``.
        peak_bytes: Peak allocated bytes per device (None for ``oom`` and ``none``).
        fit_bytes: The figure a card must hold: measured peak reserved, else peak allocated; predicted device
            total, else predicted peak allocated.
        fit_basis: Which figure ``fit_bytes`` is.
        source: The counter (measured) or engine (predicted).
        files: The records the figure came from.
        breakdown: Predicted bytes per component at the peak (predicted cells only).
    """

    batch: int
    kind: Literal["measured", "predicted", "oom", "none"]
    peak_bytes: float | None = None
    fit_bytes: float | None = None
    fit_basis: str | None = None
    source: str | None = None
    files: tuple[str, ...] = ()
    breakdown: dict[str, float] = field(default_factory=dict)

    def display(self, unit: SizeUnit) -> str:
        """``30.91 GB (m)``, ``8.26 GB (p)``, ``OOM (m)`` or ``n/a``."""
        if self.kind == "oom":
            return "OOM (m)"
        if self.kind == "none" or self.peak_bytes is None:
            return NA
        return f"{format_size(self.peak_bytes, unit)} {MARKS[self.kind]}"


@dataclass(frozen=True)
class MemoryRow:
    """One configuration: its name, adapter size, weights as loaded, and a cell per batch size seen."""

    key: ConfigKey
    name: str
    model_name: str
    trainable_params: int | None
    weights_bytes: float | None
    base16_bytes: float | None
    cells: dict[int, Cell]
    failed_runs: tuple[str, ...] = ()
    display_name: str = ""

    @property
    def percentage(self) -> float | None:
        """Weights as loaded over the 16-bit base weights, in percent."""
        if self.weights_bytes is None or not self.base16_bytes:
            return None
        return 100.0 * self.weights_bytes / self.base16_bytes

    def cell(self, batch: int) -> Cell:
        """The cell at ``batch`` (an unknown one when there is none)."""
        return self.cells.get(batch, Cell(batch, "none"))


@dataclass(frozen=True)
class BaseRow:
    """A model's base row: its parameters and 16-bit weights."""

    model_key: str
    model_name: str
    name: str
    base_params: int | None
    base_bytes_by_bits: dict[int, float]


@dataclass(frozen=True)
class MemoryData:
    """Everything the memory table, its insights and its plot need."""

    bases: tuple[BaseRow, ...]
    rows: tuple[MemoryRow, ...]
    batches: tuple[int, ...]
    other_batches: tuple[int, ...]
    counters: tuple[str, ...]
    engines: tuple[str, ...]
    varying: tuple[str, ...] = ()
    shared: tuple[tuple[str, str], ...] = ()

    def base(self, model_key: str) -> BaseRow | None:
        """The base row of a model, if an estimate gave one."""
        return next((b for b in self.bases if b.model_key == model_key), None)


def short_name(display_name: str) -> str:
    """``tiny (Llama architecture, 4 layers)`` -> ``tiny``; ``Llama-3.1-8B`` unchanged."""
    return display_name.split(" (", 1)[0].strip() or display_name


def _row_name(key: ConfigKey, model_name: str, varying: Sequence[str]) -> str:
    method = "" if key.method == "lora" else f"-{key.method}"
    extra = "".join(f"-{value}" for name, value in key.setting if name in varying)
    return f"{short_name(model_name)}{method}-r{key.rank}-{key.bits}bit{extra}"


def _measured_cell(batch: int, runs: Sequence[RunRecord]) -> Cell | None:
    ok = [r for r in runs if r.status == "ok" and r.peak_allocated_bytes is not None]
    if ok:
        top = max(ok, key=lambda r: r.peak_allocated_bytes or 0.0)
        reserved = top.peak_reserved_bytes
        return Cell(
            batch,
            "measured",
            peak_bytes=top.peak_allocated_bytes,
            fit_bytes=reserved if reserved is not None else top.peak_allocated_bytes,
            fit_basis="measured peak reserved" if reserved is not None else "measured peak allocated",
            source=top.peak_counter or "unnamed counter",
            files=tuple(r.path for r in ok),
        )
    oom = [r for r in runs if r.status == "oom"]
    if oom:
        return Cell(batch, "oom", source="run ran out of memory", files=tuple(r.path for r in oom))
    return None


def _predicted_cell(batch: int, estimates: Sequence[EstimateRecord]) -> Cell | None:
    known = [e for e in estimates if e.peak_allocated_bytes is not None]
    if not known:
        return None
    # the exact simulation over the calibrated formula when both predicted the same cell
    best = min(known, key=lambda e: (e.engine != "simulate", e.path))
    total = best.device_total_bytes
    return Cell(
        batch,
        "predicted",
        peak_bytes=best.peak_allocated_bytes,
        fit_bytes=total if total is not None else best.peak_allocated_bytes,
        fit_basis="predicted device total" if total is not None else "predicted peak allocated",
        source=best.engine or "unnamed engine",
        files=(best.path,),
        breakdown=dict(best.breakdown),
    )


MAX_BATCH_COLUMNS = 4


def _choose_batches(cells: Iterable[Cell]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Every batch size the records hold, up to four columns (the most often filled ones)."""
    every = list(cells)
    known = [c.batch for c in every if c.kind != "none"] or [c.batch for c in every]
    counts = Counter(known)
    chosen = sorted(sorted(counts, key=lambda b: (-counts[b], b))[:MAX_BATCH_COLUMNS])
    others = sorted(set(c.batch for c in every) - set(chosen))
    return tuple(chosen), tuple(others)


def _varying_fields(keys: Sequence[ConfigKey]) -> dict[str, list[str]]:
    """Per model, the setting fields whose values differ between its rows (they go into the row names)."""
    by_model: dict[str, list[ConfigKey]] = {}
    for key in keys:
        by_model.setdefault(key.model_key, []).append(key)
    varying: dict[str, list[str]] = {}
    for model, model_keys in by_model.items():
        names = [name for name, _ in model_keys[0].setting]
        varying[model] = [n for n in names if len({dict(k.setting)[n] for k in model_keys}) > 1]
    return varying


def _sort_key(key: ConfigKey) -> tuple[str, int, int, int, tuple[tuple[str, int, str], ...]]:
    # numbers inside settings sort as numbers (seq512 before seq1024)
    setting = tuple(
        (name, int(digits) if (digits := "".join(c for c in value if c.isdigit())) else 0, value)
        for name, value in key.setting
    )
    return (key.model_key, _METHOD_ORDER.get(key.method, 9), -key.rank, -key.bits, setting)


def build_memory(sources: Sources) -> MemoryData | None:
    """Group run and estimate records into the memory table's rows and cells.

    Returns:
        The table's data, or None when there is no run or estimate record.
    """
    return group_memory(sources.runs, sources.estimates)


def group_memory(
    run_records: Sequence[RunRecord],
    estimate_records: Sequence[EstimateRecord],
    weights_from: Sequence[EstimateRecord] = (),
) -> MemoryData | None:
    """Group records into rows and cells; ``weights_from`` estimates give weights and base rows only (no cells).

    Returns:
        The table's data, or None when there is no run or estimate record to make a row of.
    """
    sources = Sources("", runs=tuple(run_records), estimates=tuple(estimate_records))
    if not sources.runs and not sources.estimates:
        return None
    runs: dict[tuple[ConfigKey, int], list[RunRecord]] = {}
    estimates: dict[tuple[ConfigKey, int], list[EstimateRecord]] = {}
    names: dict[str, str] = {}
    params: dict[ConfigKey, int] = {}
    for run in sources.runs:
        key = config_key(run.spec, run.model_key)
        runs.setdefault((key, run.spec.micro_batch), []).append(run)
        names.setdefault(run.model_key, run.model_name)
        if run.trainable_params is not None:
            params.setdefault(key, run.trainable_params)
    weights: dict[tuple[str, str, int, int, str], EstimateRecord] = {}
    bases: dict[str, BaseRow] = {}
    tagged = [(e, True) for e in sources.estimates] + [(e, False) for e in weights_from]
    for est, with_cells in tagged:
        key = config_key(est.spec, est.model_key)
        if with_cells:
            estimates.setdefault((key, est.spec.micro_batch), []).append(est)
        names[est.model_key] = est.model_name  # an estimate names the model as the catalog does
        weights.setdefault(key.weights_key, est)
        if est.trainable_params is not None:
            params[key] = est.trainable_params
        if est.model_key not in bases and 16 in est.base_bytes_by_bits:
            bases[est.model_key] = BaseRow(
                est.model_key,
                est.model_name,
                f"{short_name(est.model_name)}-16bit (base)",
                est.base_params,
                dict(est.base_bytes_by_bits),
            )
    cells: dict[ConfigKey, dict[int, Cell]] = {}
    failed: dict[ConfigKey, list[str]] = {}
    for key, batch in sorted(set(runs) | set(estimates)):
        cell = _measured_cell(batch, runs.get((key, batch), [])) or _predicted_cell(
            batch, estimates.get((key, batch), [])
        )
        cells.setdefault(key, {})[batch] = cell or Cell(batch, "none")
        failed.setdefault(key, []).extend(r.path for r in runs.get((key, batch), []) if r.status == "failed")
    every_cell = [c for by_batch in cells.values() for c in by_batch.values()]
    batches, others = _choose_batches(every_cell)
    varying = _varying_fields(list(cells))
    rows = []
    for key in sorted(cells, key=_sort_key):
        weights_est = weights.get(key.weights_key)
        base = bases.get(key.model_key)
        rows.append(
            MemoryRow(
                key=key,
                name=_row_name(key, names[key.model_key], varying[key.model_key]),
                model_name=names[key.model_key],
                trainable_params=params.get(key),
                weights_bytes=weights_est.weights_bytes if weights_est is not None else None,
                base16_bytes=base.base_bytes_by_bits.get(16) if base is not None else None,
                cells=cells[key],
                failed_runs=tuple(failed.get(key, [])),
                display_name=_row_name(key, names[key.model_key], ()),
            )
        )
    shown = [r.cell(b) for r in rows for b in batches]
    every_varying = sorted({v for values in varying.values() for v in values})
    first = dict(rows[0].key.setting) if rows else {}
    return MemoryData(
        bases=tuple(bases[k] for k in sorted(bases)),
        rows=tuple(rows),
        batches=batches,
        other_batches=others,
        counters=tuple(sorted({c.source for c in shown if c.kind == "measured" and c.source})),
        engines=tuple(sorted({c.source for c in shown if c.kind == "predicted" and c.source})),
        varying=tuple(n for n, _ in rows[0].key.setting if n in every_varying) if rows else (),
        shared=tuple((n, v) for n, v in first.items() if n not in every_varying),
    )


# how a setting reads in a column header and a cell ("seq512" -> "512")
SETTING_LABELS = {
    "seq_len": ("Seq len", lambda v: v.removeprefix("seq")),
    "targets": ("Targets", lambda v: v),
    "optimizer": ("Optimizer", lambda v: v),
    "grad_ckpt": ("Grad ckpt", lambda v: "on" if v == "ckpt" else "off"),
    "dropout": ("Dropout", lambda v: v.removeprefix("dropout")),
    "parallel": ("Devices", lambda v: v.replace("gpu-", " (") + ")"),
}


def setting_text(name: str, value: str) -> str:
    """A setting as a cell reads it (``seq512`` -> ``512``, ``ckpt`` -> ``on``)."""
    label = SETTING_LABELS.get(name)
    return label[1](value) if label else value


def shared_settings_line(data: MemoryData) -> str:
    """``Every row: sequence length 512, targets q_proj+k_proj+v_proj, ...`` (the settings no row differs in)."""
    words = {
        "seq_len": "sequence length",
        "targets": "targets",
        "optimizer": "optimizer",
        "grad_ckpt": "gradient checkpointing",
        "dropout": "dropout",
        "parallel": "devices",
    }
    parts = [f"{words.get(n, n)} {setting_text(n, v)}" for n, v in data.shared]
    return "Every row: " + ", ".join(parts) + "." if parts else ""


def _note(data: MemoryData, unit: SizeUnit, device: str = "GPU") -> str:
    size = "GB = 10^9 bytes (MB = 10^6)" if unit == "GB" else "GiB = 2^30 bytes (MiB = 2^20)"
    what = "GPU Memory" if device == "GPU" else "Memory"
    parts = [f"{what}: peak allocated bytes per device; {size}."]
    shared = shared_settings_line(data)
    if shared:
        parts.append(shared)
    where = "on the CPU" if device == "CPU" else "on a GPU"
    if data.counters:
        parts.append(f"(m) measured {where} in a lorabench run (counter: {'; '.join(data.counters)}).")
    if data.engines:
        parts.append(f"(p) predicted for a CUDA device by lorabench estimate (engine: {', '.join(data.engines)}).")
    if any(c.kind == "oom" for r in data.rows for c in r.cells.values()):
        parts.append("OOM (m): the run ran out of memory.")
    parts.append("n/a: no run or prediction for that cell.")
    parts.append(
        "Model Size: weights as loaded, adapter included (estimate records). "
        "Percentage: Model Size ÷ the model's 16-bit base weights."
    )
    if data.other_batches:
        parts.append(
            f"Other batch sizes ({', '.join(map(str, data.other_batches))}) are in report.csv and report.json."
        )
    return " ".join(parts)


def memory_table(data: MemoryData, unit: SizeUnit = "GB", device: str = "GPU", title: str | None = None) -> Table:
    """The seed's GPU memory table: a base row per model, then one row per configuration.

    Columns follow the configurations present: one per batch size the records hold (up to four), and one per
    setting the rows differ in (sequence length, targets, ...); settings every row shares are said in the note.

    Args:
        data: The rows.
        unit: Size unit.
        device: ``GPU`` or ``CPU`` (the device class the figures were measured or predicted on).
        title: The table's title (default: the seed's).
    """
    prefix = "GPU Memory" if device == "GPU" else "Memory"
    setting_headers = [SETTING_LABELS.get(n, (n, None))[0] for n in data.varying]
    headers = [
        "Models",
        *setting_headers,
        "Parameters",
        *(f"{prefix} (Batch={b})" for b in data.batches),
        "Model Size",
        "Percentage",
    ]
    body: list[list[str]] = []
    for model_key in dict.fromkeys(r.key.model_key for r in data.rows):
        base = data.base(model_key)
        if base is not None:
            body.append(
                [
                    base.name,
                    *("-" for _ in data.varying),
                    format_count(base.base_params),
                    *("-" for _ in data.batches),
                    format_size(base.base_bytes_by_bits.get(16), unit),
                    "-",
                ]
            )
        for row in (r for r in data.rows if r.key.model_key == model_key):
            pct = row.percentage
            setting = dict(row.key.setting)
            body.append(
                [
                    row.display_name or row.name,
                    *(setting_text(n, setting[n]) for n in data.varying),
                    format_count(row.trainable_params),
                    *(row.cell(b).display(unit) for b in data.batches),
                    format_size(row.weights_bytes, unit),
                    NA if pct is None else f"{pct:.1f}%",
                ]
            )
    default = "GPU Memory Usage for Fine-tuning" if device == "GPU" else "CPU Memory Usage for Fine-tuning"
    return Table(title=title or default, headers=headers, rows=body, note=_note(data, unit, device))
