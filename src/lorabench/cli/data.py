"""``lorabench data DATASET``: the job's true size -- tokens per epoch, lengths, truncation, padding, steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lorabench.cli.options import (
    BatchOpt,
    ConfigOpt,
    DataFieldsOpt,
    DataFormatOpt,
    GpusOpt,
    GradAccumOpt,
    ModelOpt,
    SeqLenOpt,
    spec_overrides,
)

__all__ = ["data_command", "render_data"]


def data_command(
    dataset: Annotated[
        str,
        typer.Argument(
            help="JSONL, JSON, CSV, parquet or Arrow file, a save_to_disk folder, a dataset name in the local HF "
            "cache, or synthetic:TASK."
        ),
    ],
    data_format: DataFormatOpt = None,
    fields: DataFieldsOpt = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    seq_len: SeqLenOpt = None,
    batch_size: BatchOpt = None,
    grad_accum: GradAccumOpt = None,
    gpus: GpusOpt = None,
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="A local folder with a Hugging Face tokenizer (default: the model's local one, if any)."),
    ] = None,
    examples: Annotated[int, typer.Option(help="Records of a synthetic dataset.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the data order (as lorabench run).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also write the record (JSON) here, for `cost` and `estimate --tokens`.")
    ] = None,
) -> None:
    """Count a dataset as the trainers see it: examples, tokens/epoch, lengths, truncation, padding per batching."""
    from lorabench.data.dataset import load_dataset_records
    from lorabench.data.stats import choose_tokenizer, dataset_stats
    from lorabench.data.tokenizer import load_tokenizer
    from lorabench.errors import ConfigError
    from lorabench.models import resolve_model
    from lorabench.records import write_json_atomic
    from lorabench.spec import load_spec_source

    if examples < 1:
        raise ConfigError(f"--examples: must be >= 1 (got {examples})")
    overrides = spec_overrides(model=model, seq_len=seq_len, micro_batch=batch_size, grad_accum=grad_accum, gpus=gpus)
    spec = load_spec_source(config, overrides).spec
    loaded = load_dataset_records(dataset, data_format, fields, examples, seed)
    resolved = resolve_model(spec.model)
    tokenizer_dir = tokenizer
    if tokenizer_dir is None and resolved.local_dir is not None and load_tokenizer(resolved.local_dir) is not None:
        tokenizer_dir = resolved.local_dir
    vocab = int(getattr(resolved.config, "vocab_size", 0) or 0) or None
    tok, how, exact = choose_tokenizer(loaded, tokenizer_dir, vocab, spec.seq_len)
    world = spec.hardware.count if spec.parallelism != "single" else 1
    record = dataset_stats(
        loaded, tok, how, exact, spec.seq_len, spec.micro_batch, spec.grad_accum, world=world, seed=seed
    )
    record["model"] = spec.model
    if out is not None:
        write_json_atomic(out, record)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        render_data(record, Console())


def render_data(record: dict[str, Any], console: Console) -> None:
    """Print a data record: sizes, lengths, truncation, then one row per batching mode."""
    lengths = record["length_tokens"]
    detected = "detected" if record["format_detected"] else "given"
    console.print(
        f"[bold]{record['dataset']}[/bold] · format {record['format']} ({detected}) · {record['records']:,} records"
        + (f" · unused columns: {', '.join(record['unused_columns'])}" if record["unused_columns"] else "")
    )
    console.print(f"tokens: {record['tokenizer']}")
    if record.get("chat_template"):
        console.print(f"chat rendering: {record['chat_template']}")
    console.print(
        f"examples {record['examples']:,} · tokens/epoch {record['tokens_per_epoch']:,} "
        f"(trainable {record['trainable_tokens_per_epoch']:,}) · length p50 {lengths['p50']:,} · "
        f"p90 {lengths['p90']:,} · p99 {lengths['p99']:,} · max {lengths['max']:,}"
    )
    console.print(
        f"seq_len {record['seq_len']:,}: {record['truncated']:,} truncated, {record['dropped']:,} dropped "
        f"(target does not fit)"
        + (f" · first truncated records: {record['truncated_records'][:5]}" if record["truncated"] else "")
    )
    table = Table(
        title=f"per epoch · micro-batch {record['micro_batch']} × grad-accum {record['grad_accum']} × "
        f"{record['world_size']} process(es)"
    )
    for column in ("batching", "batches", "padded tokens", "padding waste", "steps/epoch"):
        table.add_column(column, justify="left" if column == "batching" else "right")
    for mode, row in record["batching"].items():
        table.add_row(
            mode,
            f"{row['batches']:,}",
            f"{row['padded_tokens']:,}",
            f"{row['padding_waste_pct']:.1f}%",
            f"{row['steps_per_epoch']:,}",
        )
    console.print(table)
