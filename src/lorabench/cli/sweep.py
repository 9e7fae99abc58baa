"""``lorabench sweep MATRIX.yaml``: many measured runs, each in its own subprocess, resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from lorabench.units import NA, format_bytes

__all__ = ["sweep_command"]


def sweep_command(
    matrix: Annotated[Path, typer.Argument(help="Matrix YAML: base (spec fields), matrix (lists), options, exclude.")],
    out: Annotated[Path, typer.Option(help="Sweep folder; rerunning with the same folder resumes.")] = Path("sweep"),
    repeats: Annotated[int, typer.Option(help="Runs per configuration (mean and spread are reported).")] = 1,
    timeout_s: Annotated[float | None, typer.Option(help="Time limit per run (seconds).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes claiming runs through the sweep's ledger: one per GPU (each sees only its GPU "
            "via CUDA_VISIBLE_DEVICES), or N CPU processes without GPUs."
        ),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Start a sweep of more than 1,000 runs without asking.")
    ] = False,
) -> None:
    """Expand a matrix (method x rank x bits x batch ...) into runs and measure each; OOM is a result."""
    from lorabench.errors import ConfigError, Interrupted, signal_name
    from lorabench.measure.sweep import (
        check_datasets,
        check_models,
        check_records,
        load_sweep,
        run_sweep,
        run_sweep_workers,
        summarise,
    )
    from lorabench.records import write_json_atomic

    if workers < 1:
        raise ConfigError(f"--workers: must be >= 1 (got {workers})")
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigError(f"--timeout-s: must be > 0 seconds (got {timeout_s})")
    sweep = load_sweep(matrix, out, repeats)
    check_datasets(sweep)  # a missing or malformed dataset file fails here, before any run starts
    check_models(sweep)  # an unknown model, or a local config.json with impossible sizes
    check_records(sweep)  # so does a corrupt record of an earlier launch (a resume trusts them)
    pending = sum(1 for r in sweep.runs if not r.done())
    _confirm_size(pending, yes)
    console = Console(stderr=True)
    for reason in sweep.skipped:
        console.print(f"[dim]skipped {reason}[/dim]")
    console.print(f"{len(sweep.runs)} runs planned, {len(sweep.runs) - pending} already done, {pending} to run → {out}")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("sweep", total=len(sweep.runs))

        def started(run: Any) -> None:
            progress.update(task, description=f"running {run.run_id}")

        def finished(run: Any, record: dict[str, Any] | None) -> None:
            progress.advance(task)

        def progressed(done: int, running: Any) -> None:
            progress.update(task, completed=done, description=f"running {', '.join(running) or '...'}")

        try:
            if workers == 1:
                records = run_sweep(sweep, on_start=started, on_done=finished, timeout_s=timeout_s)
            else:
                records = run_sweep_workers(sweep, workers, timeout_s=timeout_s, on_progress=progressed)
        except Interrupted as exc:
            recorded = sum(1 for r in sweep.runs if r.done())
            raise Interrupted(
                exc.signum,
                f"sweep interrupted by {signal_name(exc.signum)}: {recorded} of {len(sweep.runs)} runs recorded in "
                f"{out} (a stopped run is recorded as interrupted and redone); rerun the same command to resume",
            ) from None
    rows = summarise(sweep, records)
    write_json_atomic(out / "summary.json", {"matrix": str(matrix), "repeats": repeats, "rows": rows})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Sweep {matrix.name}: {len(rows)} configurations × {repeats} repeat(s)")
    for col in ("configuration", "status", "wall time (s)", "tokens/s non-pad", "peak allocated"):
        table.add_column(col, justify="left" if col in ("configuration", "status") else "right")
    for row in rows:
        table.add_row(
            row["label"],
            "/".join(row["statuses"]),
            _ms(row["wall_time_s_mean"], row["wall_time_s_std"], ".2f"),
            _ms(row["tokens_per_s_nonpad_mean"], row["tokens_per_s_nonpad_std"], ",.0f"),
            format_bytes(row["peak_allocated_bytes_mean"], "MB"),
        )
    Console().print(table)
    Console().print(f"summary: {out / 'summary.json'}")


def _confirm_size(pending: int, yes: bool) -> None:
    """Ask before starting more than MAX_UNCONFIRMED_RUNS runs (refuse without a terminal unless --yes)."""
    import sys

    from lorabench.errors import ConfigError
    from lorabench.measure.sweep import MAX_UNCONFIRMED_RUNS

    if yes or pending <= MAX_UNCONFIRMED_RUNS:
        return
    what = f"{pending:,} runs to run (more than {MAX_UNCONFIRMED_RUNS:,})"
    if not sys.stdin.isatty():
        raise ConfigError(f"sweep: {what}; pass --yes to start it, or narrow the matrix")
    if not typer.confirm(f"{what}: start the sweep?", default=False, err=True):
        raise ConfigError(f"sweep: {what}; not confirmed (pass --yes to start it without asking)")


def _ms(mean: float | None, std: float | None, fmt: str) -> str:
    if mean is None:
        return NA
    return format(mean, fmt) + (f" ± {format(std, fmt)}" if std is not None else "")
