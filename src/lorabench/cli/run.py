"""``lorabench run``: one real, measured fine-tuning run of a spec."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lorabench.cli.options import (
    AlphaOpt,
    BatchOpt,
    BitsOpt,
    ConfigOpt,
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
    epochs: EpochsOpt = None,
    lr: LrOpt = None,
    parallelism: ParallelismOpt = None,
    gpu: GpuOpt = None,
    dataset: Annotated[
        str,
        typer.Option(
            help="FinLoRA-format JSONL file, or synthetic:TASK (sentiment, headline, ner, xbrl, formula).",
            rich_help_panel=_RUN,
        ),
    ] = "synthetic:sentiment",
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
        str, typer.Option(help="pad_to_max | longest | length_grouped.", rich_help_panel=_RUN)
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
    from lorabench.errors import ConfigError
    from lorabench.measure.options import RunOptions
    from lorabench.measure.runner import check_engine, load_records
    from lorabench.predict import account
    from lorabench.spec import load_spec

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
        epochs=epochs,
        learning_rate=lr,
        parallelism=parallelism,
        gpu=gpu,
        gpus=nproc if nproc > 1 else None,
    )
    spec = load_spec(config, overrides)
    folder = out or Path("runs") / f"{spec.label()}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    options = _options(
        RunOptions,
        dataset=dataset,
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
    account(spec)  # unknown model or target module fails here, before anything runs
    check_engine(spec)
    load_records(options)  # missing, empty or malformed dataset fails here (the line is named)
    record = _launch(spec.model_dump(mode="json"), options.model_dump(mode="json"), folder, nproc, as_json)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        render_run(record, folder, Console())
    if record["status"] != "ok":
        sys.stderr.write(f"lorabench: run {record['status']}: {record.get('message')} (record: {folder}/result.json)\n")
        raise typer.Exit(3 if record["status"] == "oom" else 1)


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


def _launch(
    spec: dict[str, Any], options: dict[str, Any], folder: Path, nproc: int, as_json: bool = True
) -> dict[str, Any]:
    from lorabench.errors import MeasurementError
    from lorabench.measure.record import read_run_record
    from lorabench.measure.worker import write_launch_file

    launch = folder / "launch.json"
    write_launch_file(launch, spec, options)
    if nproc == 1:
        from lorabench.measure.options import RunOptions
        from lorabench.measure.progress import StepProgress, progress_wanted
        from lorabench.measure.runner import run_training
        from lorabench.spec import RunSpec

        run_spec, run_options = RunSpec.model_validate(spec), RunOptions.model_validate(options)
        if not progress_wanted(as_json):
            return run_training(run_spec, run_options)
        with StepProgress(f"training {run_spec.label()}") as progress:
            return run_training(run_spec, run_options, on_step=progress)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "lorabench.measure.worker",
        str(launch),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return read_run_record(folder)
    except MeasurementError:
        tail = " ".join((proc.stderr or "").strip().splitlines()[-3:])
        raise MeasurementError(f"distributed run wrote no record (exit {proc.returncode}): {tail}") from None


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
