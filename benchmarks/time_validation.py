"""Predicted versus published training throughput, per row of benchmarks/data/published_throughput.yaml.

    PYTHONPATH=src python benchmarks/time_validation.py                 # table + error summaries
    PYTHONPATH=src python benchmarks/time_validation.py --json out.json
    PYTHONPATH=src python benchmarks/time_validation.py --write-transfer   # refresh roofline_transfer.json

Every published figure is converted to tokens per second per GPU (``s_per_step``: micro_batch x grad_accum x
seq_len tokens per optimizer step; a figure whose per-GPU / total scope the source does not state is read as
per GPU, and the row says so). Two predictions are printed beside it:

- ``roofline``: :func:`lorabench.predict.time.roofline.predict_step` (per-op roofline);
  ``StepTime.tokens_per_s`` is read as the whole run's rate (all GPUs) and divided by the GPU count.
- ``flops_eff``: the older FLOPs / (GPUs x peak x efficiency) model (:func:`lorabench.predict.time.efficiency.
  predict_time`), as the baseline the roofline engine replaces.

The error is ``predicted / measured - 1``; the summaries give the median and the maximum |error| per GPU family and
per software stack. The roofline's band on a GPU it was not fitted on comes from its step-time errors on published
runs of other GPUs (``roofline_transfer.json``, which ``--write-transfer`` rewrites from this table); so that "in band"
is not read off a band that contains the row itself, it is counted leave-one-out: each row against the band of the
OTHER rows' errors. Rows the source gives no tokens per step for (e.g. litgpt's variable-length Alpaca runs) are
listed as not comparable, never guessed. Nothing here asserts an accuracy; it prints what the model does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = Path(__file__).resolve().parent / "data" / "published_throughput.yaml"
TRANSFER = Path(__file__).resolve().parents[1] / "src" / "lorabench" / "predict" / "time" / "roofline_transfer.json"
REQUIRED = (
    "id",
    "model",
    "lorabench_model",
    "method",
    "bits",
    "rank",
    "targets",
    "micro_batch",
    "grad_accum",
    "seq_len",
    "grad_ckpt",
    "gpu",
    "gpu_count",
    "parallelism",
    "stack",
    "measured",
    "source",
    "quote",
)
UNITS = ("tokens_per_s", "s_per_step", "min_per_1k_iterations", "hours_per_run", "s_per_run")
SCOPES = ("per_gpu", "total", "unknown")
GPU_FAMILY = {
    "RTX3090": "GeForce (Ampere/Ada/Blackwell)",
    "RTX4090": "GeForce (Ampere/Ada/Blackwell)",
    "RTX5090": "GeForce (Ampere/Ada/Blackwell)",
    "A5000": "RTX workstation (Ampere)",
    "A6000": "RTX workstation (Ampere)",
    "L4": "Ada data-center PCIe (L4/L40S)",
    "L40S": "Ada data-center PCIe (L4/L40S)",
    "T4": "Turing/Ampere inference (T4/A10G)",
    "A10G": "Turing/Ampere inference (T4/A10G)",
    "A100-40GB": "A100",
    "A100-80GB": "A100",
    "A100-80GB-PCIe": "A100",
    "H100-SXM": "Hopper/Blackwell",
    "H100-PCIe": "Hopper/Blackwell",
    "H200": "Hopper/Blackwell",
    "B200": "Hopper/Blackwell",
}

PRECISION_BY_STACK: dict[str, dict[str, bool]] = {
    # peft's method_comparison: use_amp false, autocast_adapter_dtype true (fp32 adapters beside a bf16 base)
    "hf_peft_eager": {"autocast": False, "pure_bf16": False},
    # HF Trainer with --bf16 True: accelerate wraps the forward in autocast
    "qwen_finetune_py": {"autocast": True, "pure_bf16": False},
    # the whole model, adapters included, in bf16 (no fp32 upcast of a k-bit base)
    "torchtune_eager": {"autocast": False, "pure_bf16": True},
    "torchtune_compile": {"autocast": False, "pure_bf16": True},
    "answerai_fsdp_qlora": {"autocast": False, "pure_bf16": True},  # train.py's default precision bf16
    "nemo_automodel": {"autocast": False, "pure_bf16": True},  # bf16 training
}
"""How a stack computes (spec ``autocast`` / ``pure_bf16``), where its row does not say (``autocast:``,
``pure_bf16:``)."""


def _precision(row: Mapping[str, Any]) -> dict[str, bool]:
    out = dict(PRECISION_BY_STACK.get(str(row["stack"]), {"autocast": False, "pure_bf16": False}))
    for key in ("autocast", "pure_bf16"):
        if row.get(key) is not None:
            out[key] = bool(row[key])
    return out


Band = tuple[float, float]
Predictor = Callable[[Any, Mapping[str, Any]], "float | tuple[float, Band]"]
"""(RunSpec, row) -> predicted tokens per second per GPU, optionally with its (low, high) band."""


class RowError(ValueError):
    """A row of the data file is malformed (message names the row and field)."""


def load_rows(path: Path = DATA) -> list[dict[str, Any]]:
    """Read and check the published-throughput file.

    Args:
        path: The YAML file (``schema_version: 1``, ``rows: [...]``).

    Returns:
        The rows, in file order.

    Raises:
        RowError: A row misses a field, repeats an id, or has an unknown unit or scope.
    """
    data = yaml.safe_load(path.read_text("utf-8"))
    if not isinstance(data, dict) or data.get("schema_version") != 1 or not isinstance(data.get("rows"), list):
        raise RowError(f"{path}: expected schema_version: 1 and a list of rows")
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for index, row in enumerate(data["rows"]):
        name = row.get("id", f"#{index}") if isinstance(row, dict) else f"#{index}"
        if not isinstance(row, dict):
            raise RowError(f"{path}: row {name}: expected a mapping")
        missing = [key for key in REQUIRED if key not in row]
        if missing:
            raise RowError(f"{path}: row {name}: missing {', '.join(missing)}")
        if name in seen:
            raise RowError(f"{path}: row {name}: id given twice")
        seen.add(name)
        measured = row["measured"]
        if not isinstance(measured, dict) or measured.get("unit") not in UNITS:
            raise RowError(f"{path}: row {name}: measured.unit must be one of {', '.join(UNITS)}")
        if measured.get("scope", "per_gpu") not in SCOPES:
            raise RowError(f"{path}: row {name}: measured.scope must be one of {', '.join(SCOPES)}")
        value = measured.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise RowError(f"{path}: row {name}: measured.value must be a positive number")
        if not str(row["source"]).startswith("https://") or not str(row["quote"]).strip():
            raise RowError(f"{path}: row {name}: source must be an https URL and quote non-empty")
        rows.append(row)
    return rows


def tokens_per_step_per_gpu(row: Mapping[str, Any]) -> int | None:
    """Tokens one GPU processes per optimizer step, or None when the source does not give them."""
    if row.get("seq_len") is None or row.get("micro_batch") is None:
        return None
    return int(row["micro_batch"]) * int(row.get("grad_accum") or 1) * int(row["seq_len"])


def measured_tokens_per_s_per_gpu(row: Mapping[str, Any]) -> float | None:
    """The published figure as tokens per second per GPU, or None when it cannot be converted.

    ``tokens_per_s`` with scope ``total`` is divided by the GPU count; ``per_gpu`` and ``unknown`` are taken as per
    GPU. ``s_per_step`` uses :func:`tokens_per_step_per_gpu`; ``min_per_1k_iterations`` (1k micro-batches) needs the
    micro-batch's tokens; ``hours_per_run`` and ``s_per_run`` need ``run_tokens`` (all GPUs together).
    """
    measured = row["measured"]
    value = float(measured["value"])
    unit = measured["unit"]
    if unit == "tokens_per_s":
        return value / int(row["gpu_count"]) if measured.get("scope") == "total" else value
    if unit in ("hours_per_run", "s_per_run"):
        tokens = row.get("run_tokens")
        seconds = value * 3600 if unit == "hours_per_run" else value
        return None if tokens is None else float(tokens) / seconds / int(row["gpu_count"])
    per_step = tokens_per_step_per_gpu(row)
    if per_step is None:
        return None
    if unit == "s_per_step":
        return per_step / value
    micro_tokens = per_step / int(row.get("grad_accum") or 1)
    return 1000 * micro_tokens / (value * 60)


def spec_for(row: Mapping[str, Any]) -> Any:
    """The lorabench RunSpec that describes a row (unknown gradient checkpointing is taken as off)."""
    from lorabench.spec import parse_spec

    values: dict[str, Any] = {
        "model": row["lorabench_model"],
        "method": row["method"],
        "bits": row["bits"],
        "rank": row["rank"],
        "targets": row["targets"],
        "micro_batch": row["micro_batch"],
        "grad_accum": row.get("grad_accum") or 1,
        "seq_len": row["seq_len"],
        "grad_ckpt": bool(row.get("grad_ckpt")),
        "hardware": {"gpu": row["gpu"], "count": row["gpu_count"]},
        "parallelism": row["parallelism"],
        **_precision(row),
    }
    if row.get("alpha") is not None:
        values["alpha"] = row["alpha"]
    return parse_spec(values, source=f"published row {row['id']}")


def flops_eff_tokens_per_s_per_gpu(spec: Any, row: Mapping[str, Any]) -> float:
    """Baseline: FLOPs / (GPUs x peak x prior efficiency), for one optimizer step on every GPU."""
    from lorabench.predict.time.efficiency import predict_time

    gpus = int(row["gpu_count"])
    per_step = tokens_per_step_per_gpu(row)
    assert per_step is not None
    prediction = predict_time(spec, per_step * gpus, str(row["gpu"]), gpus=gpus)
    return per_step / prediction.time_s


def roofline_tokens_per_s_per_gpu(spec: Any, row: Mapping[str, Any]) -> tuple[float, Band]:
    """The roofline engine's per-GPU tokens/s and its 80% band."""
    from lorabench.predict.time.roofline import predict_step

    step = predict_step(spec, gpu=str(row["gpu"]))
    per_gpu = step.tokens_per_step / int(row["gpu_count"])
    slow, fast = float(step.interval_s[1]), float(step.interval_s[0])  # a longer step is a lower rate
    return float(step.tokens_per_s) / int(row["gpu_count"]), (per_gpu / slow, per_gpu / fast)


@dataclass
class Comparison:
    """One row: the published figure and each engine's prediction (tokens/s per GPU) with its error."""

    id: str
    gpu: str
    gpu_count: int
    family: str
    stack: str
    measured_tokens_per_s_per_gpu: float | None
    predicted_tokens_per_s_per_gpu: dict[str, float | None] = field(default_factory=dict)
    band_tokens_per_s_per_gpu: dict[str, Band | None] = field(default_factory=dict)
    error: dict[str, float | None] = field(default_factory=dict)
    skipped: str | None = None


def compare(rows: Iterable[Mapping[str, Any]], predictors: Mapping[str, Predictor]) -> list[Comparison]:
    """Predict every comparable row with every predictor.

    Args:
        rows: Rows from :func:`load_rows`.
        predictors: Engine name -> predictor.

    Returns:
        One comparison per row; a row without tokens per step, or one a predictor rejects, says why.
    """
    out: list[Comparison] = []
    for row in rows:
        measured = measured_tokens_per_s_per_gpu(row)
        item = Comparison(
            id=str(row["id"]),
            gpu=str(row["gpu"]),
            gpu_count=int(row["gpu_count"]),
            family=GPU_FAMILY.get(str(row["gpu"]), str(row["gpu"])),
            stack=str(row["stack"]),
            measured_tokens_per_s_per_gpu=measured,
        )
        out.append(item)
        if measured is None or tokens_per_step_per_gpu(row) is None:
            item.skipped = "the source gives no tokens per step or per run"
            continue
        spec = spec_for(row)
        for name, predictor in predictors.items():
            try:
                predicted = predictor(spec, row)
            except Exception as exc:  # one engine failing on one row is reported, not fatal
                item.predicted_tokens_per_s_per_gpu[name] = None
                item.error[name] = None
                item.skipped = f"{name}: {type(exc).__name__}: {exc}"[:200]
                continue
            band: Band | None = None
            if isinstance(predicted, tuple):
                predicted, band = predicted
            item.predicted_tokens_per_s_per_gpu[name] = predicted
            item.band_tokens_per_s_per_gpu[name] = band
            item.error[name] = predicted / measured - 1
    return out


def summarise(comparisons: Sequence[Comparison], engine: str, key: str) -> dict[str, dict[str, float | int]]:
    """Median and maximum |error| of ``engine`` grouped by ``key`` (``family`` or ``stack``).

    Rows whose engine gave a band also count ``in_band`` (measured inside the predicted band) out of ``banded``.
    """
    groups: dict[str, list[Comparison]] = {}
    for item in comparisons:
        if item.error.get(engine) is not None:
            groups.setdefault(str(getattr(item, key)), []).append(item)
    out: dict[str, dict[str, float | int]] = {}
    for name, items in sorted(groups.items()):
        errors = [abs(float(i.error[engine] or 0.0)) for i in items]
        stats: dict[str, float | int] = {
            "rows": len(items),
            "median_abs_error": statistics.median(errors),
            "max_abs_error": max(errors),
        }
        banded: list[tuple[Band, float]] = []
        for i in items:
            band, measured = i.band_tokens_per_s_per_gpu.get(engine), i.measured_tokens_per_s_per_gpu
            if band is not None and measured is not None:
                banded.append((band, measured))
        if banded:
            stats["banded"] = len(banded)
            stats["in_band"] = sum(1 for (low, high), m in banded if low <= m <= high)
        out[name] = stats
    return out


def step_errors(comparisons: Sequence[Comparison], engine: str) -> list[tuple[Comparison, float]]:
    """``(row, predicted step / measured step - 1)`` for every row ``engine`` predicted."""
    out: list[tuple[Comparison, float]] = []
    for item in comparisons:
        predicted, measured = item.predicted_tokens_per_s_per_gpu.get(engine), item.measured_tokens_per_s_per_gpu
        if predicted and measured:
            out.append((item, measured / predicted - 1))
    return out


def leave_one_out_bands(
    comparisons: Sequence[Comparison], engine: str, coverage: float = 0.8, pool: set[str] | None = None
) -> tuple[int, int]:
    """Replace each row's ``engine`` band by the band of the OTHER pool rows' step-time errors.

    Args:
        comparisons: The rows.
        engine: The engine whose band is replaced.
        coverage: The band's coverage.
        pool: Ids of the rows whose errors make the band (default every row); every row gets a band.

    Returns:
        ``(pool rows inside their band, pool rows)``.
    """
    from lorabench.predict.time.roofline import quantile_band

    errors = step_errors(comparisons, engine)
    members = [(item.id, e) for item, e in errors if pool is None or item.id in pool]
    inside = 0
    for item, _ in errors:
        low, high = quantile_band([e for name, e in members if name != item.id], coverage)
        predicted = float(item.predicted_tokens_per_s_per_gpu[engine] or 0.0)
        # predicted step / measured step - 1 = e, so measured tokens/s = predicted tokens/s x (1 + e)
        band = (predicted * (1 + low), predicted * (1 + high))
        item.band_tokens_per_s_per_gpu[engine] = band
        measured = item.measured_tokens_per_s_per_gpu
        if pool is None or item.id in pool:
            inside += measured is not None and band[0] <= measured <= band[1]
    return inside, len(members)


def transfer_record(comparisons: Sequence[Comparison], engine: str, data: Path, in_band: int) -> dict[str, Any]:
    """The ``roofline_transfer.json`` record: the packaged calibration's errors on these published runs.

    ``comparisons`` should be the rows the band is meant for: :func:`main` passes the eager HF + PEFT target set
    (:func:`in_target_set`), the stack lorabench predicts by default.
    """
    from lorabench.predict.time.roofline import TRANSFER_SCHEMA, default_calibration

    try:
        shown = str(data.resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        shown = str(data)
    return {
        "schema": TRANSFER_SCHEMA,
        "calibration_source": default_calibration().source,
        "data": shown,
        "written_by": "benchmarks/time_validation.py --write-transfer",
        "leave_one_out_in_band": in_band,
        "errors": [
            {"id": item.id, "gpu": item.gpu, "stack": item.stack, "relative_error": error}
            for item, error in step_errors(comparisons, engine)
        ],
    }


HF_PEFT_STACKS = frozenset({"hf_peft_eager", "qwen_finetune_py", "answerai_fsdp_qlora"})
"""Stacks that run the HF Transformers model eagerly with PEFT (a custom loop or the HF Trainer): what lorabench
predicts by default, so the accuracy targets are read on them. Rows quantized by something other than bitsandbytes
(``quant`` gptq_int4 ...) are left out of that set: lorabench models bitsandbytes kernels only. Answer.AI's
``train.py`` is in: the HF model with PEFT (and bitsandbytes NF4) in a plain eager loop under torch FSDP."""
BNB_QUANTS = frozenset({None, "bnb_nf4", "bnb_int8"})


def in_target_set(row: Mapping[str, Any]) -> bool:
    """Whether a row is an eager HF + PEFT run with a bitsandbytes (or no) quantization."""
    return str(row["stack"]) in HF_PEFT_STACKS and row.get("quant") in BNB_QUANTS


def target_summary(comparisons: Sequence[Comparison], rows: Sequence[Mapping[str, Any]], engine: str) -> str:
    """One line: median / max |error| of ``engine`` over the target set, and its GPU types."""
    ids = {str(r["id"]) for r in rows if in_target_set(r)}
    items = [c for c in comparisons if c.id in ids and c.error.get(engine) is not None]
    if not items:
        return f"{engine}: no comparable eager HF + PEFT rows"
    errors = [abs(float(c.error[engine] or 0.0)) for c in items]
    gpus = sorted({c.gpu for c in items})
    return (
        f"{engine}: eager HF + PEFT (bitsandbytes or 16-bit) rows {len(items)} on {len(gpus)} GPU types "
        f"({', '.join(gpus)}): median |error| {statistics.median(errors):.0%}, max {max(errors):.0%}"
    )


_PAIR_KEYS = ("source", "gpu", "gpu_count", "parallelism", "lorabench_model", "seq_len", "stack")


def bit_slowdowns(comparisons: Sequence[Comparison], rows: Sequence[Mapping[str, Any]], engine: str) -> list[str]:
    """k-bit slowdowns against the 16-bit row of the same source, GPUs, model and sequence length.

    A slowdown is 16-bit tokens/s over k-bit tokens/s (per token, so rows whose micro batches differ, as a
    quantized base leaves room for a larger one, still compare); its error is predicted / measured - 1.
    """
    by_id = {c.id: c for c in comparisons}
    groups: dict[tuple[Any, ...], dict[int, Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in _PAIR_KEYS), {})[int(row["bits"])] = row
    lines: list[str] = []
    for members in groups.values():
        base = members.get(16)
        if base is None:
            continue
        for bits in (8, 4):
            low = members.get(bits)
            if low is None:
                continue
            a, b = by_id.get(str(base["id"])), by_id.get(str(low["id"]))
            if a is None or b is None:
                continue
            ma, mb = a.measured_tokens_per_s_per_gpu, b.measured_tokens_per_s_per_gpu
            pa, pb = a.predicted_tokens_per_s_per_gpu.get(engine), b.predicted_tokens_per_s_per_gpu.get(engine)
            if not (ma and mb and pa and pb):
                continue
            measured, predicted = ma / mb, pa / pb
            quant = low.get("quant") or "bitsandbytes"
            batches = f"batch {base['micro_batch']} vs {low['micro_batch']}"
            lines.append(
                f"  {low['id']!s:44} {bits}-bit ({quant}) vs 16-bit, {batches}: measured {measured:.2f}x  "
                f"predicted {predicted:.2f}x  ({predicted / measured - 1:+.0%})"
            )
    return lines


def fitting_set_slowdowns() -> list[str]:
    """The same slowdowns on the H200 records the constants were fitted on (the calibration's residuals)."""
    from lorabench.predict.time.roofline import default_calibration

    groups: dict[tuple[Any, ...], dict[int, Any]] = {}
    for r in default_calibration().residuals:
        rank = r.record.split("-r", 1)[1].split("-", 1)[0] if "-r" in r.record else "?"
        groups.setdefault((r.gpu, rank, r.micro_batch, r.seq_len, r.grad_ckpt), {})[r.bits] = r
    lines: list[str] = []
    for (gpu, rank, batch, seq, ckpt), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        base = members.get(16)
        for bits in (8, 4):
            low = members.get(bits)
            if base is None or low is None:
                continue
            measured = low.measured_step_s / base.measured_step_s
            predicted = low.predicted_step_s / base.predicted_step_s
            lines.append(
                f"  {gpu} r{rank} batch {batch} x {seq}{' ckpt' if ckpt else ''}: {bits}-bit vs 16-bit: measured "
                f"{measured:.2f}x  predicted {predicted:.2f}x  ({predicted / measured - 1:+.0%})"
            )
    return lines


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def render(comparisons: Sequence[Comparison], engines: Sequence[str]) -> str:
    """A plain-text table plus the summaries."""
    head = f"{'row':44} {'gpu':>16} {'stack':>17} {'measured':>9}"
    for engine in engines:
        head += f" {engine:>9} {'err':>7}"
    lines = ["tokens/s per GPU (predicted / measured - 1)", head]
    for item in comparisons:
        line = f"{item.id:44} {f'{item.gpu_count}x{item.gpu}':>16} {item.stack:>17} "
        line += f"{_fmt(item.measured_tokens_per_s_per_gpu, ',.0f'):>9}"
        for engine in engines:
            line += f" {_fmt(item.predicted_tokens_per_s_per_gpu.get(engine), ',.0f'):>9}"
            line += f" {_fmt(item.error.get(engine), '+.0%'):>7}"
        if item.skipped:
            line += f"  [{item.skipped}]"
        lines.append(line)
    for engine in engines:
        for key in ("family", "stack"):
            lines.append(f"\n{engine}: |error| by {key}")
            for name, stats in summarise(comparisons, engine, key).items():
                band = f"  in band {stats['in_band']}/{stats['banded']} (leave-one-out)" if "banded" in stats else ""
                lines.append(
                    f"  {name:36} rows {stats['rows']:>2}  median {stats['median_abs_error']:.0%}"
                    f"  max {stats['max_abs_error']:.0%}{band}"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print predicted versus published throughput; optionally write the comparison as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path, default=None, help="also write the comparison here")
    parser.add_argument(
        "--write-transfer",
        nargs="?",
        type=Path,
        const=TRANSFER,
        default=None,
        help=f"write the roofline's errors on these runs as its off-fit band (default path {TRANSFER})",
    )
    args = parser.parse_args(argv)
    rows = load_rows(args.data)
    predictors: dict[str, Predictor] = {
        "roofline": roofline_tokens_per_s_per_gpu,
        "flops_eff": flops_eff_tokens_per_s_per_gpu,
    }
    comparisons = compare(rows, predictors)
    target_ids = {str(r["id"]) for r in rows if in_target_set(r)}
    target = [c for c in comparisons if c.id in target_ids]
    in_band, pooled = leave_one_out_bands(comparisons, "roofline", pool=target_ids)
    print(render(comparisons, list(predictors)))
    errors = [e for _, e in step_errors(target, "roofline")]
    if errors:
        from lorabench.predict.time.roofline import quantile_band

        low, high = quantile_band(errors)
        print(
            f"\nroofline off-fit 80% band (step time, the {len(errors)} eager HF + PEFT rows): {low:+.0%} .. "
            f"{high:+.0%}; leave-one-out it holds {in_band}/{pooled} of them (every row's 'in band' above is "
            "counted against the band of the other eager HF + PEFT rows)"
        )
    print("\n" + target_summary(comparisons, rows, "roofline"))
    slowdowns = bit_slowdowns(comparisons, rows, "roofline")
    print("\nroofline: k-bit slowdown vs the same source's 16-bit run (published rows)")
    print("\n".join(slowdowns) if slowdowns else "  none: no source publishes a 16-bit and a k-bit run of one shape")
    print("roofline: k-bit slowdown on the fitting set (H200 records)")
    print("\n".join(fitting_set_slowdowns()))
    if args.write_transfer is not None:
        record = transfer_record(target, "roofline", args.data, in_band)
        args.write_transfer.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.write_transfer}")
    if args.json is not None:
        payload = {
            "data": str(args.data),
            "comparisons": [asdict(c) for c in comparisons],
            "summaries": {e: {k: summarise(comparisons, e, k) for k in ("family", "stack")} for e in predictors},
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
