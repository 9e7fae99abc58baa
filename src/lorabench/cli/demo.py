"""``lorabench demo``: the main job on the embedded default (offline; CPU or GPU)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal, cast

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lorabench.units import NA, format_bytes

__all__ = ["demo_command"]


def demo_command(
    out: Annotated[Path, typer.Option(help="Output folder (records and report).")] = Path("lorabench-out"),
    steps: Annotated[int, typer.Option(help="Optimizer steps per measured run.")] = 12,
    engine: Annotated[
        str, typer.Option(help="Memory engine for the Llama-3.1-8B table: simulate (exact, ~1 min) or formula.")
    ] = "simulate",
) -> None:
    """Measure 5 methods on tiny, predict Llama-3.1-8B's memory table, cost FinLoRA's job, write the report."""
    from lorabench.demo import run_demo
    from lorabench.errors import ConfigError

    if steps < 3:
        raise ConfigError(f"--steps: must be >= 3 (2 warm-up steps + at least one counted), got {steps}")
    if engine not in ("simulate", "formula"):
        raise ConfigError(f"--engine: must be simulate or formula (got {engine!r})")
    console = Console()
    started = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("starting", total=None)

        def step(text: str) -> None:
            progress.update(task, description=text)
            progress.console.log(text)

        result = run_demo(out, steps=steps, engine=cast(Literal["simulate", "formula"], engine), step=step)
    table = Table(
        title="Measured on tiny (CPU counter: PyTorch profiler allocator events)"
        if result.runs[0]["metrics"].get("device") == "cpu"
        else "Measured on tiny"
    )
    for col in ("run", "status", "loss first → last", "tokens/s non-pad", "peak allocated", "trainable"):
        table.add_column(col)
    for record in result.runs:
        m = record["metrics"]
        table.add_row(
            f"{record['spec']['method']} {record['spec']['bits']}-bit",
            record["status"],
            f"{record['first_loss']:.2f} → {record['final_loss']:.2f}" if record["final_loss"] is not None else NA,
            NA if m.get("tokens_per_s_nonpad") is None else f"{m['tokens_per_s_nonpad']:,.0f}",
            format_bytes(m.get("peak_allocated_bytes"), "MB"),
            f"{record['trainable_params']:,}",
        )
    console.print(table)
    cheapest = min((r.cost_usd for r in result.cost_rows if r.kind == "self_hosted" and r.cost_usd), default=None)
    gpt = next((r for r in result.cost_rows if r.name.startswith("GPT-4o-mini") and r.cost_usd), None)
    if cheapest is not None and gpt is not None:
        console.print(
            f"cheapest self-hosted run ${cheapest:,.2f}; GPT-4o-mini ${gpt.cost_usd:,.2f} "
            f"({gpt.cost_usd / cheapest:.1f}× more)"
        )
    report = out / "report" / "report.html"
    console.print(f"report: {report} (also .md .rst .csv .json and plots/) · {time.perf_counter() - started:.0f} s")
