"""``lorabench estimate``: parameters and model size for a spec (memory and time come later)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from lorabench.cli.options import (
    AlphaOpt,
    BitsOpt,
    ConfigOpt,
    DropoutOpt,
    GpuOpt,
    GpusOpt,
    MethodOpt,
    ModelOpt,
    RankOpt,
    TargetsOpt,
    spec_overrides,
)
from lorabench.units import format_bytes, format_count

__all__ = ["estimate_command", "render_estimate"]


def estimate_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    method: MethodOpt = None,
    bits: BitsOpt = None,
    rank: RankOpt = None,
    alpha: AlphaOpt = None,
    dropout: DropoutOpt = None,
    targets: TargetsOpt = None,
    gpu: GpuOpt = None,
    gpus: GpusOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON record to this file (atomically).")] = None,
) -> None:
    """Count parameters and weight bytes for a fine-tuning spec, from the real module graph (no weights needed)."""
    from lorabench.predict import estimate
    from lorabench.records import write_json_atomic
    from lorabench.spec import load_spec

    overrides = spec_overrides(
        model=model,
        method=method,
        bits=bits,
        rank=rank,
        alpha=alpha,
        dropout=dropout,
        targets=targets,
        gpu=gpu,
        gpus=gpus,
    )
    spec = load_spec(config, overrides)
    record = estimate(spec)
    if out is not None:
        write_json_atomic(out, record)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        render_estimate(record, Console())


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
    console.print(table)
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
