"""``lorabench run``: one real, measured fine-tuning run of a spec."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lorabench.cli.options import (
    AlphaOpt,
    AutocastOpt,
    BatchOpt,
    BitsOpt,
    ConfigOpt,
    DataFieldsOpt,
    DataFormatOpt,
    DropoutOpt,
    EpochsOpt,
    GpuOpt,
    GradAccumOpt,
    GradCkptOpt,
    LrOpt,
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
from lorabench.units import NA, format_bytes

__all__ = ["render_run", "run_command"]

_RUN = "Run"


def run_command(
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
    epochs: EpochsOpt = None,
    lr: LrOpt = None,
    parallelism: ParallelismOpt = None,
    gpu: GpuOpt = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Dataset: JSONL, JSON, CSV, parquet or Arrow file, a save_to_disk folder, a dataset name in the local "
            "HF cache, or synthetic:TASK (sentiment, headline, ner, xbrl, formula). "
            "Default: the --config file's dataset when it is such a local file, else synthetic:sentiment.",
            rich_help_panel=_RUN,
        ),
    ] = None,
    data_format: DataFormatOpt = None,
    fields: DataFieldsOpt = None,
    examples: Annotated[int, typer.Option(help="Records of a synthetic dataset.", rich_help_panel=_RUN)] = 256,
    max_steps: Annotated[
        int | None, typer.Option(help="Optimizer steps (default: epochs over the data).", rich_help_panel=_RUN)
    ] = None,
    warmup_steps: Annotated[
        int, typer.Option(help="Steps left out of throughput (LR ramps over them).", rich_help_panel=_RUN)
    ] = 2,
    seed: Annotated[int, typer.Option(help="Seed for data order and random weights.", rich_help_panel=_RUN)] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default runs/LABEL-TIME).", rich_help_panel=_RUN)
    ] = None,
    random_weights: Annotated[
        bool,
        typer.Option(help="Build the model from its config with random weights (no download).", rich_help_panel=_RUN),
    ] = False,
    batching: Annotated[
        str,
        typer.Option(
            help="pad_to_max | longest | length_grouped | packed (whole examples packed into seq-len rows, "
            "position ids restart per example).",
            rich_help_panel=_RUN,
        ),
    ] = "pad_to_max",
    usd_per_gpu_hour: Annotated[
        float | None, typer.Option(help="Rate for cost_usd (default: catalog rate of the GPU).", rich_help_panel=_RUN)
    ] = None,
    cpu_dtype: Annotated[
        str,
        typer.Option(
            help="16-bit base dtype on CPU: auto (bf16 where the CPU has native bf16, else fp32) | bf16 | fp32.",
            rich_help_panel=_RUN,
        ),
    ] = "auto",
    nproc: Annotated[
        int,
        typer.Option(help="Data-parallel processes (GPUs; CPU processes on gloo) via torchrun.", rich_help_panel=_RUN),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Fine-tune for real (transformers + PEFT + bitsandbytes) and measure time, tokens, memory and energy."""
    from lorabench.api import run
    from lorabench.cli.config_source import choose_dataset, print_ignored_keys
    from lorabench.errors import ConfigError
    from lorabench.measure.options import RunOptions
    from lorabench.spec import load_spec_source

    if nproc < 1:
        raise ConfigError(f"--nproc: must be >= 1 (got {nproc})")
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
        epochs=epochs,
        learning_rate=lr,
        parallelism=parallelism,
        gpu=gpu,
        gpus=nproc if nproc > 1 else None,
    )
    loaded = load_spec_source(config, overrides)
    spec = loaded.spec
    print_ignored_keys(loaded)
    dataset, dataset_choice = choose_dataset(dataset, loaded)
    folder = out or Path("runs") / f"{spec.label()}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    options = _options(
        RunOptions,
        dataset=dataset,
        format=data_format,
        fields=fields,
        examples=examples,
        max_steps=max_steps,
        warmup_steps=warmup_steps,
        seed=seed,
        out=folder,
        random_weights=random_weights,
        batching=batching,
        usd_per_gpu_hour=usd_per_gpu_hour,
        cpu_dtype=cpu_dtype,
    )
    from lorabench.measure.progress import progress_wanted

    record = run(spec, out=folder, options=options, nproc=nproc, progress=progress_wanted(as_json)).record
    record = _add_config_source(folder, record, loaded, dataset_choice)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        render_run(record, folder, Console())
    if record["status"] != "ok":
        sys.stderr.write(f"lorabench: run {record['status']}: {record.get('message')} (record: {folder}/result.json)\n")
        raise typer.Exit(3 if record["status"] == "oom" else 1)


def _add_config_source(
    folder: Path, record: dict[str, Any], loaded: Any, dataset_choice: dict[str, Any]
) -> dict[str, Any]:
    """Put the config file's ignored keys and the dataset choice into the record and its result.json."""
    from lorabench.measure.record import RECORD_NAME, read_run_record
    from lorabench.records import write_json_atomic

    extra = {"config_source": loaded.source_record(), "dataset_choice": dataset_choice}
    if (folder / RECORD_NAME).is_file():
        write_json_atomic(folder / RECORD_NAME, {**read_run_record(folder), **extra})
    return {**record, **extra}


def _options(model: Any, **values: Any) -> Any:
    from pydantic import ValidationError

    from lorabench.errors import ConfigError

    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]).replace("_", "-")
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"--{loc}: {msg}" if loc else msg)
        raise ConfigError("; ".join(problems)) from None


def render_run(record: dict[str, Any], folder: Path, console: Console) -> None:
    """Print the measured figures, each with the counter it came from."""
    metrics = record.get("metrics") or {}
    counters = metrics.get("counters") or {}
    table = Table(title=f"{record['spec']['model']} · {record['spec']['method']} · {record['status']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("counter / provenance")

    def row(name: str, value: str, counter: str | None = None) -> None:
        table.add_row(name, value, counter or "")

    def num(value: Any, fmt: str) -> str:
        return NA if value is None else format(value, fmt)

    row("steps (warm-up)", f"{record['steps']} ({metrics.get('warmup_steps')})")
    compute = record.get("compute_dtype") or {}
    row("base dtype", str(compute.get("dtype") or NA), compute.get("reason"))
    row(
        "loss first → final",
        f"{num(record.get('first_loss'), '.3f')} → {num(record.get('final_loss'), '.3f')}",
        "mean of the first / last 3 steps",
    )
    row("wall time", f"{num(metrics.get('wall_time_s'), '.2f')} s", counters.get("wall_time_s"))
    row("tokens/s (non-pad)", num(metrics.get("tokens_per_s_nonpad"), ",.0f"), metrics.get("throughput_method"))
    row("tokens/s (padded)", num(metrics.get("tokens_per_s_padded"), ",.0f"), "same steps, padding included")
    row("peak allocated", format_bytes(metrics.get("peak_allocated_bytes"), "MB"), counters.get("peak_allocated_bytes"))
    row("peak reserved", format_bytes(metrics.get("peak_reserved_bytes"), "MB"), counters.get("peak_reserved_bytes"))
    row(
        "NVML used (peak)",
        format_bytes(metrics.get("nvml_peak_used_bytes"), "MB"),
        counters.get("nvml_peak_used_bytes"),
    )
    row("peak RSS (process)", format_bytes(metrics.get("peak_rss_bytes"), "MB"), counters.get("peak_rss_bytes"))
    row("energy", f"{num(metrics.get('energy_j'), ',.0f')} J", metrics.get("energy_method") or counters.get("energy_j"))
    row("GPU-hours", num(metrics.get("gpu_hours"), ".4f"), "wall time × GPUs")
    row(
        "cost",
        NA if metrics.get("cost_usd") is None else f"${metrics['cost_usd']:.4f}",
        json.dumps(metrics.get("cost_provenance")) if metrics.get("cost_provenance") else None,
    )
    row(
        "trainable params",
        f"{record.get('trainable_params') or 0:,}",
        f"estimate says {record.get('trainable_params_estimate'):,}",
    )
    row("adapter file", format_bytes(record.get("adapter_file_bytes"), "MB"), "adapter/*.safetensors")
    console.print(table)
    console.print(f"record: {folder / 'result.json'}")
