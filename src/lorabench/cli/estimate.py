"""``lorabench estimate``: parameters and model size for a spec (memory and time come later)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import typer
from rich.console import Console
from rich.table import Table

from lorabench.cli.options import (
    AlphaOpt,
    AutocastOpt,
    BatchOpt,
    BitsOpt,
    ConfigOpt,
    DropoutOpt,
    GpuOpt,
    GpusOpt,
    GradAccumOpt,
    GradCkptOpt,
    MethodOpt,
    ModelOpt,
    OptimizerOpt,
    ParallelismOpt,
    PureBf16Opt,
    RankOpt,
    SeqLenOpt,
    TargetsOpt,
    WideOpt,
    fold_columns,
    make_console,
    spec_overrides,
)
from lorabench.units import format_bytes, format_count

if TYPE_CHECKING:
    from lorabench.predict.estimate import Engine

__all__ = ["estimate_command", "render_estimate"]

Device = Literal["cuda", "cpu"]


def estimate_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    method: MethodOpt = None,
    bits: BitsOpt = None,
    rank: RankOpt = None,
    alpha: AlphaOpt = None,
    dropout: DropoutOpt = None,
    targets: TargetsOpt = None,
    batch_size: BatchOpt = None,
    grad_accum: GradAccumOpt = None,
    seq_len: SeqLenOpt = None,
    grad_ckpt: GradCkptOpt = None,
    autocast: AutocastOpt = None,
    pure_bf16: PureBf16Opt = None,
    optimizer: OptimizerOpt = None,
    parallelism: ParallelismOpt = None,
    gpu: GpuOpt = None,
    gpus: GpusOpt = None,
    engine: Annotated[
        str,
        typer.Option(
            help="Peak-memory engine: simulate (fake-tensor simulation, seconds), formula (fitted to it) or none."
        ),
    ] = "simulate",
    device: Annotated[str, typer.Option(help="Predict memory for cuda (default) or cpu training.")] = "cuda",
    tokens: Annotated[
        str | None,
        typer.Option(
            help="Tokens the whole job processes, for the time prediction (needs --gpu): a number, a "
            "`lorabench data --json` record, or a dataset (its tokens per epoch x the spec's epochs)."
        ),
    ] = None,
    calibration: Annotated[Path | None, typer.Option(help="A `lorabench calibrate` file for the time engine.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON record to this file (atomically).")] = None,
    wide: WideOpt = False,
) -> None:
    """Predict parameters, weight bytes, peak GPU memory (and which GPUs fit) and time for a fine-tuning spec."""
    from lorabench.api import estimate
    from lorabench.cli.config_source import print_ignored_keys
    from lorabench.errors import ConfigError
    from lorabench.records import write_json_atomic
    from lorabench.spec import load_spec_source

    if engine not in ("simulate", "formula", "none"):
        raise ConfigError(f"--engine: must be simulate, formula or none (got {engine!r})")
    if device not in ("cuda", "cpu"):
        raise ConfigError(f"--device: must be cuda or cpu (got {device!r})")
    overrides = spec_overrides(
        model=model,
        method=method,
        bits=bits,
        rank=rank,
        alpha=alpha,
        dropout=dropout,
        targets=targets,
        micro_batch=batch_size,
        grad_accum=grad_accum,
        seq_len=seq_len,
        grad_ckpt=grad_ckpt,
        autocast=autocast,
        pure_bf16=pure_bf16,
        optimizer=optimizer,
        parallelism=parallelism,
        gpu=gpu,
        gpus=gpus,
    )
    loaded = load_spec_source(config, overrides)
    print_ignored_keys(loaded)
    job_tokens = None
    if tokens is not None:
        from lorabench.data.stats import job_tokens as count_job_tokens

        spec = loaded.spec
        job_tokens = count_job_tokens(tokens, spec.seq_len, spec.micro_batch, spec.epochs, spec.model)
    record = estimate(
        loaded.spec,
        engine=cast("Engine", engine),
        device=cast(Device, device),
        tokens=job_tokens,
        calibration=calibration,
        loaded=loaded,
    ).record
    if out is not None:
        write_json_atomic(out, record)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        render_estimate(record, make_console(wide))


def render_estimate(record: dict[str, Any], console: Console) -> None:
    """Print an estimate record as a rich table (decimal GB, as the FinLoRA page uses)."""
    spec = record["spec"]
    bits = spec["bits"]
    targets = ", ".join(spec["targets"]) if isinstance(spec["targets"], list) else spec["targets"]
    title = (
        f"{record['model']['display_name']} · {spec['method']} r{spec['rank']} α{spec['alpha']:g} · "
        f"base at {bits}-bit · targets {targets}"
    )
    unit: Literal["GB", "MB"] = "GB" if record["weights_bytes_by_bits"]["16"] >= 1e9 else "MB"
    table = Table(
        title=title,
        caption=f"{unit} = {'1e9' if unit == 'GB' else '1e6'} bytes · predicted by meta-graph accounting",
    )
    table.add_column("Component")
    table.add_column("Params", justify="right")
    table.add_column("Quantized", justify="right")
    for b in ("16", "8", "4"):
        style = "bold" if b == str(bits) else None
        table.add_column(f"{b}-bit", justify="right", style=style)
    for comp in record["components"]:
        table.add_row(
            comp["name"],
            format_count(comp["params"]) if comp["params"] else "-",
            format_count(comp["quantized_params"]) if comp["quantized_params"] else "-",
            *(format_bytes(comp["bytes_by_bits"][b], unit) for b in ("16", "8", "4")),
        )
    adapter = format_bytes(record["adapter_bytes"], unit)
    table.add_row(
        f"adapter ({record['adapter_dtype'].replace('float', 'fp')})",
        format_count(record["trainable_params"]),
        "-",
        adapter,
        adapter,
        adapter,
    )
    table.add_section()
    table.add_row(
        "total as loaded",
        format_count(record["base_params"] + record["trainable_params"]),
        "",
        *(format_bytes(record["weights_bytes_by_bits"][b], unit) for b in ("16", "8", "4")),
        style="bold",
    )
    console.print(fold_columns(table))
    breakdown = record["trainable_breakdown"]
    extra = (
        f" (LoRA A/B {breakdown['lora_params']:,} + DoRA magnitudes {breakdown['dora_magnitude_params']:,})"
        if breakdown["dora_magnitude_params"]
        else ""
    )
    console.print(
        f"base parameters {record['base_params']:,} · trainable {record['trainable_params']:,}{extra} "
        f"= {record['trainable_percent']:.4f}% · weights at {bits}-bit {format_bytes(record['weights_bytes'], unit)} "
        f"(params × bits/8 would say {format_bytes(record['nominal_weights_bytes'], unit)})"
    )
    _render_groups(record, console)
    if "peak_allocated_bytes" in record:
        _render_memory(record, console)
    if record.get("library_warnings"):
        count = len(record["library_warnings"])
        console.print(f"[dim]{count} library warning(s) kept in the record (--json: library_warnings)[/dim]")
    if "predicted_time_s" in record:
        t = record["time"]
        where = f"{t['step']['gpus']}×{t['step']['gpu']}"
        if record["predicted_time_s"] is None:
            console.print(
                f"predicted time: none — the run does not fit on {where} "
                f"(device total {format_bytes(record['device_total_bytes'])} per GPU); change the spec or the GPU"
            )
            return
        low, high = record["predicted_time_interval_s"]
        parts = " · ".join(
            f"{name} {value / 3600:,.2f} h" for name, value in record["predicted_time_breakdown_s"].items() if value > 0
        )
        console.print(
            f"predicted time: {record['predicted_time_s'] / 3600:,.2f} h "
            f"(80% band {low / 3600:,.2f}-{high / 3600:,.2f} h) for {t['tokens']:,} tokens on "
            f"{t['step']['gpus']}×{t['step']['gpu']} · {t['step']['tokens_per_s']:,.0f} tokens/s"
        )
        console.print(f"  time by part: {parts}")
        console.print(f"  [dim]{t['step']['provenance']}[/dim]")


def _render_groups(record: dict[str, Any], console: Console) -> None:
    """Which module groups got adapters and what bitsandbytes quantizes; notes and warnings (also on stderr)."""
    groups = record.get("module_groups") or []
    if any(g["group"] != "attention" for g in groups) or record.get("warnings"):
        table = Table(title="Module groups: adapters and 8/4-bit quantization")
        for name in ("group", "adapted", "quantization at 8/4 bits"):
            table.add_column(name)
        for g in groups:
            table.add_row(g["group"], f"{g['adapted']} ({g['adapted_units']}/{g['units']})", g["quantization"])
        console.print(table)
    if record.get("quantization_note") and record["spec"]["bits"] < 16:
        console.print(f"note: {record['quantization_note']}")
    for note in record.get("notes") or []:
        console.print(f"note: {note}")
    for warning in record.get("warnings") or []:
        typer.echo(f"warning: {warning}", err=True)


def _render_memory(record: dict[str, Any], console: Console) -> None:
    totals = record["device_totals"]
    for note in record.get("memory_notes") or []:
        prefix = "warning: formula extrapolates" if record.get("memory_extrapolated") else "note"
        typer.echo(f"{prefix}: {note}", err=True)
    table = Table(
        title=f"Peak memory per GPU · batch {record['micro_batch']} × seq {record['seq_len']} · "
        f"{totals['parallelism']} on {totals['gpus']} GPU(s) · engine {record['engine']} ({record['device']})",
        caption=record["memory_provenance"],
    )
    table.add_column("component")
    table.add_column("bytes at the peak", justify="right")
    for name, value in record["breakdown"].items():
        table.add_row(name, format_bytes(value))
    table.add_section()
    table.add_row(
        "peak allocated (torch.cuda.max_memory_allocated)", format_bytes(record["peak_allocated_bytes"]), style="bold"
    )
    table.add_row("+ allocator slack (reserved − allocated)", format_bytes(totals["reserved_slack_bytes"]))
    table.add_row("+ CUDA context and workspaces", format_bytes(totals["cuda_context_bytes"]))
    table.add_row("device total", format_bytes(record["device_total_bytes"]), style="bold")
    console.print(fold_columns(table))
    fits = record.get("fits")
    if fits:
        yes = [k for k, ok in fits.items() if ok]
        no = [k for k, ok in fits.items() if not ok]
        console.print(
            f"fits on: {', '.join(yes) or 'none of the catalog GPUs'}" + (f"; not on: {', '.join(no)}" if no else "")
        )
