"""``lorabench infer``: latency, throughput, memory, energy and serving cost of a model with and without its adapter."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lorabench.units import NA, format_bytes

__all__ = ["infer_command", "render_infer"]

_GRID = "Grid"
_SERVE = "Serving"


def infer_command(
    model: Annotated[
        str | None,
        typer.Option(
            help="Catalog name, HF id of a catalog model, or a local dir with config.json "
            "(default: the adapter's base_model_name_or_path)."
        ),
    ] = None,
    adapter: Annotated[
        list[Path] | None,
        typer.Option(
            help="PEFT LoRA adapter folder or a lorabench run folder; repeat to serve several (multi-adapter).",
            rich_help_panel=_SERVE,
        ),
    ] = None,
    batch_sizes: Annotated[str, typer.Option(help="Comma list of batch sizes.", rich_help_panel=_GRID)] = "1,4",
    prompt_lens: Annotated[
        str, typer.Option(help="Comma list of prompt lengths (tokens, exact).", rich_help_panel=_GRID)
    ] = "32,128",
    max_new_tokens: Annotated[
        int, typer.Option(help="Tokens generated per request, exactly (EOS ignored).", rich_help_panel=_GRID)
    ] = 16,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up runs per cell.", rich_help_panel=_GRID)] = 1,
    repeats: Annotated[int, typer.Option(help="Timed runs per cell.", rich_help_panel=_GRID)] = 5,
    variants: Annotated[
        str | None,
        typer.Option(
            help="Comma list of base, unmerged, merged, multi, base-quant, unmerged-quant (default: all that apply).",
            rich_help_panel=_SERVE,
        ),
    ] = None,
    bits: Annotated[
        int, typer.Option(help="Add the quantized base variants at 8 or 4 bits (16: none).", rich_help_panel=_SERVE)
    ] = 16,
    prompts: Annotated[
        str, typer.Option(help="synthetic, or a FinLoRA-format JSONL file (contexts).", rich_help_panel=_GRID)
    ] = "synthetic",
    multi_adapters: Annotated[
        int, typer.Option(help="Serve N adapters from one base (PEFT multi-adapter; 0: off).", rich_help_panel=_SERVE)
    ] = 0,
    popularity: Annotated[
        str, typer.Option(help="Adapter popularity of requests: uniform or zipf[:S].", rich_help_panel=_SERVE)
    ] = "uniform",
    seed: Annotated[int, typer.Option(help="Seed of random weights, prompts and adapter draws.")] = 0,
    random_weights: Annotated[
        bool, typer.Option(help="Build the model from its config with random weights (no download).")
    ] = False,
    usd_per_gpu_hour: Annotated[
        float | None, typer.Option(help="Rate for the serving cost (default: catalog rate of the GPU).")
    ] = None,
    cpu_threads: Annotated[
        int | None, typer.Option(help="torch threads on CPU (default 1: steady timings on a shared CPU).")
    ] = None,
    order: Annotated[
        str,
        typer.Option(
            help="interleaved (variants resident together, measured cell by cell in rotating order), sequential, "
            "or auto (interleaved when two more copies of the weights fit)."
        ),
    ] = "auto",
    out: Annotated[Path | None, typer.Option(help="Records folder (default runs/infer-MODEL-TIME).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Benchmark generation of the base, the adapter unmerged and merged (and quantized) over a grid of cells."""
    from lorabench.errors import ConfigError
    from lorabench.infer.adapters import describe_adapter
    from lorabench.infer.options import InferOptions, parse_int_list, parse_popularity
    from lorabench.infer.runner import prepare, run_inference

    adapters = tuple(adapter or ())
    if model is None:
        if not adapters:
            raise ConfigError("--model: required without --adapter (give a catalog name or a local model folder)")
        base = describe_adapter(adapters[0]).config.get("base_model_name_or_path")
        if not isinstance(base, str) or not base:
            raise ConfigError(f"--model: {adapters[0]} names no base_model_name_or_path; pass --model")
        model = base
    name, zipf_s = parse_popularity(popularity)
    chosen = tuple(v.strip() for v in variants.split(",") if v.strip()) if variants is not None else None
    folder = out or Path("runs") / f"infer-{Path(model).name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    options = InferOptions(
        model=model,
        out=folder,
        adapters=adapters,
        batch_sizes=parse_int_list(batch_sizes, "--batch-sizes"),
        prompt_lens=parse_int_list(prompt_lens, "--prompt-lens"),
        max_new_tokens=max_new_tokens,
        warmup=warmup,
        repeats=repeats,
        bits=bits,
        variants=chosen,
        prompts=prompts,
        multi_adapters=multi_adapters,
        popularity=name,
        zipf_s=zipf_s,
        seed=seed,
        random_weights=random_weights,
        usd_per_gpu_hour=usd_per_gpu_hour,
        cpu_threads=cpu_threads,
        order=order,
    )
    prepare(options)  # every bad input fails here, before a model is loaded or a record written
    if as_json:
        summary = run_inference(options)
        typer.echo(json.dumps(summary, indent=2))
        return
    from lorabench.measure.progress import CellProgress, progress_wanted

    if progress_wanted(as_json):  # a bar on a terminal; nothing in pipes, files and CI logs
        cells = len(options.selected_variants()) * len(options.batch_sizes) * len(options.prompt_lens)
        with CellProgress(cells) as bar:
            summary = run_inference(options, progress=bar)
    else:
        summary = run_inference(options)
    render_infer(summary, Console())


def _fmt(value: Any, fmt: str, scale: float = 1.0) -> str:
    return NA if value is None else format(value * scale, fmt)


def render_infer(summary: dict[str, Any], console: Console) -> None:
    """Print one row per cell, the slowdowns and where the records are."""
    table = Table(title=f"{summary['model']} · inference on {summary['device']}")
    for header in (
        "variant",
        "batch",
        "prompt",
        "new",
        "TTFT p50 (ms)",
        "per token (ms)",
        "e2e p50/p90/p99 (ms)",
        "tokens/s",
        "req/s",
        "peak alloc",
        "J/token",
        "$/1M tokens",
    ):
        table.add_column(header, justify="left" if header == "variant" else "right")
    for row in summary["rows"]:
        if row["status"] != "ok":
            table.add_row(row["variant"], str(row["batch_size"]), str(row["prompt_len"]), "", row["status"])
            continue
        e2e = "/".join(_fmt(row[f"e2e_latency_s_{p}"], ".1f", 1e3) for p in ("p50", "p90", "p99"))
        table.add_row(
            row["variant"],
            str(row["batch_size"]),
            str(row["prompt_len"]),
            str(row["max_new_tokens"]),
            _fmt(row["ttft_s_p50"], ".1f", 1e3),
            _fmt(row["time_per_output_token_s_mean"], ".2f", 1e3),
            e2e,
            _fmt(row["output_tokens_per_s"], ",.1f"),
            _fmt(row["requests_per_s"], ",.2f"),
            format_bytes(row["peak_allocated_bytes"], "MB"),
            _fmt(row["energy_per_output_token_j"], ".3f"),
            _fmt(row["cost_per_1m_output_tokens_usd"], ",.2f"),
        )
    console.print(table)
    for item in summary["slowdown"]:
        console.print(
            f"{item['variant']} vs {item['reference']} (batch {item['batch_size']}, prompt {item['prompt_len']}): "
            f"{item['slowdown_pct']:+.1f}% time per output token"
        )
    for item in summary["skipped"]:
        console.print(f"skipped {item['variant']}: {item['reason']}")
    console.print(f"{len(summary['records'])} records in {summary['out']} (lorabench report {summary['out']})")
