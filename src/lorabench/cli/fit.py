"""``lorabench fit --gpu NAME``: the largest micro batch and sequence length that fit on a GPU."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from lorabench.cli.options import (
    AlphaOpt,
    AutocastOpt,
    BatchOpt,
    BitsOpt,
    ConfigOpt,
    DropoutOpt,
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
    spec_overrides,
)
from lorabench.predict.fit import FIT_SCHEMA, FIT_SCHEMA_VERSION, fit_record

__all__ = ["FIT_SCHEMA", "FIT_SCHEMA_VERSION", "fit_command", "fit_record", "render_fit"]


def fit_command(
    gpu: Annotated[str, typer.Option("--gpu", help="GPU to fit on (catalog name or alias, e.g. A5000, H100).")],
    gpus: Annotated[
        int | None, typer.Option("--gpus", help="Number of GPUs (more than one: DDP unless --parallelism says).")
    ] = None,
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
    optimizer: OptimizerOpt = None,
    grad_ckpt: GradCkptOpt = None,
    autocast: AutocastOpt = None,
    pure_bf16: PureBf16Opt = None,
    parallelism: ParallelismOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Largest micro batch (at the spec's seq len) and seq len (at the spec's batch) that fit on one GPU."""
    from lorabench.spec import load_spec

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
        optimizer=optimizer,
        grad_ckpt=grad_ckpt,
        autocast=autocast,
        pure_bf16=pure_bf16,
        parallelism=parallelism,
        gpu=gpu,
        gpus=gpus,
    )
    from lorabench.api import fit

    record = fit(load_spec(config, overrides), gpu=gpu, gpus=gpus).record
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        render_fit(record, Console())


def _line(entry: dict[str, Any], name: str, fixed: str) -> str:
    vram = entry["vram_bytes"] / 1e9
    if entry["value"] is None:
        return (
            f"largest {name} {fixed}: none -- even 1 needs {entry['device_total_at_one_bytes'] / 1e9:.2f} GB "
            f"of {vram:.2f} GB"
        )
    total = entry["device_total_bytes"] / 1e9
    text = f"largest {name} {fixed}: [bold]{entry['value']:,}[/bold] (device total {total:.2f} GB"
    if entry["next_value"] is not None:
        text += f"; {entry['next_value']:,} would need {entry['next_device_total_bytes'] / 1e9:.2f} GB)"
    else:
        text += f"; the search stops at {entry['max_value']:,})"
    return text


def render_fit(record: dict[str, Any], console: Console) -> None:
    """Print a fit record as a few lines of text."""
    spec = record["spec"]
    targets = ", ".join(spec["targets"]) if isinstance(spec["targets"], list) else spec["targets"]
    batch, length = record["largest_micro_batch"], record["largest_seq_len"]
    console.print(
        f"{spec['model']} · {spec['method']} r{spec['rank']} · base at {spec['bits']}-bit · targets {targets} · "
        f"{spec['optimizer']}{' · grad ckpt' if spec['grad_ckpt'] else ''}"
        f"{' · autocast' if spec.get('autocast') else ''}{' · pure bf16' if spec.get('pure_bf16') else ''}"
        f" · on {record['gpus']}×{record['gpu']} "
        f"({record['vram_bytes'] / 1e9:.2f} GB each, {record['parallelism']})",
        highlight=False,
    )
    console.print(_line(batch, "micro batch", f"at seq len {spec['seq_len']:,}"), highlight=False)
    console.print(_line(length, "seq len", f"at micro batch {spec['micro_batch']:,}"), highlight=False)
    console.print(f"[dim]{record['provenance']['device_total_bytes']}[/dim]", highlight=False)
