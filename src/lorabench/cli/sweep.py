"""``lorabench sweep MATRIX.yaml``: many measured runs, each in its own subprocess, resumable."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lorabench.units import NA, format_bytes

if TYPE_CHECKING:
    from lorabench.measure.ray_backend import RayConnection
    from lorabench.measure.sweep import PlannedRun, Sweep

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
    backend: Annotated[
        str,
        typer.Option(
            help="local: runs on this machine (--workers). ray: one Ray task per run on a Ray cluster "
            "(pip install 'lorabench[ray]'); this process writes every record."
        ),
    ] = "local",
    address: Annotated[
        str,
        typer.Option(
            help="--backend ray: the cluster (auto = the one `ray start` runs here, HOST:6379, ray://HOST:10001, "
            "or local to start one in this process)."
        ),
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Start a sweep of more than 1,000 runs without asking.")
    ] = False,
) -> None:
    """Expand a matrix (method x rank x bits x batch ...) into runs and measure each; OOM is a result."""
    from lorabench.errors import ConfigError, Interrupted, signal_name
    from lorabench.measure.sweep import check_datasets, check_models, check_records, load_sweep, summarise
    from lorabench.records import write_json_atomic

    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend: expected local or ray (got {backend!r})")
    if workers < 1:
        raise ConfigError(f"--workers: must be >= 1 (got {workers})")
    if backend == "ray" and workers != 1:
        raise ConfigError("--workers: the ray backend schedules runs by the resources they need; drop --workers")
    if backend == "local" and address != "auto":
        raise ConfigError("--address: only for --backend ray")
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigError(f"--timeout-s: must be > 0 seconds (got {timeout_s})")
    if backend == "ray":
        from lorabench.measure.ray_backend import import_ray

        import_ray()  # say it is missing before the matrix is read
    sweep = load_sweep(matrix, out, repeats)
    check_datasets(sweep)  # a missing or malformed dataset file fails here, before any run starts
    check_models(sweep)  # an unknown model, or a local config.json with impossible sizes
    check_records(sweep)  # so does a corrupt record of an earlier launch (a resume trusts them)
    _confirm_size(sum(1 for r in sweep.runs if not r.done()), yes)
    try:
        with _cluster(sweep, backend, address) as cluster:  # Ray: reached and checked before anything is written
            records = _run(sweep, cluster, workers, timeout_s, as_json)
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


def _cluster(sweep: Sweep, backend: str, address: str) -> AbstractContextManager[Any]:
    """The Ray connection (pins read, cluster reached, every run's ask checked), or None for the local backend."""
    if backend != "ray":
        return contextlib.nullcontext()
    from lorabench.measure.ray_backend import RayConnection

    return RayConnection(sweep, address)


def _run(
    sweep: Sweep, cluster: RayConnection | None, workers: int, timeout_s: float | None, as_json: bool
) -> list[dict[str, Any]]:
    """Run the sweep's pending runs on the chosen backend under one progress bar; return every record."""
    from lorabench.measure.progress import SweepProgress, progress_wanted
    from lorabench.measure.sweep import run_sweep, run_sweep_workers

    console = Console(stderr=True)
    for reason in sweep.skipped:
        console.print(f"[dim]skipped {reason}[/dim]")
    if cluster is None and sweep.matrix is not None and _has_ray_section(sweep.matrix):
        console.print("[dim]the matrix's ray section (pins) is used by --backend ray only; ignored here[/dim]")
    pending = sum(1 for r in sweep.runs if not r.done())
    console.print(
        f"{len(sweep.runs)} runs planned, {len(sweep.runs) - pending} already done, {pending} to run → {sweep.out}"
    )
    with SweepProgress(sweep.runs, enabled=progress_wanted(as_json, sys.stderr), console=console) as progress:

        def started(run: PlannedRun) -> None:
            progress.running([run.run_id])

        def finished(run: PlannedRun, record: dict[str, Any] | None) -> None:
            progress.refresh()

        def progressed(done: int, running: Sequence[str]) -> None:
            progress.running(list(running))

        def on_ray(per_node: Mapping[str, int], running: Sequence[str]) -> None:
            progress.nodes(per_node)
            progress.running(list(running))

        if cluster is not None:
            from lorabench.measure.ray_backend import run_sweep_ray

            result = run_sweep_ray(sweep, cluster, timeout_s=timeout_s, on_progress=on_ray)
            nodes = ", ".join(f"{node} {n}" for node, n in sorted(result.per_node.items())) or "none"
            console.print(
                f"ray: {result.written} record(s) written (per node: {nodes}), "
                f"{result.discarded} result(s) discarded because already recorded"
            )
            return result.records
        if workers == 1:
            return run_sweep(sweep, on_start=started, on_done=finished, timeout_s=timeout_s)
        return run_sweep_workers(sweep, workers, timeout_s=timeout_s, on_progress=progressed)


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


def _has_ray_section(matrix: Path) -> bool:
    import yaml

    data = yaml.safe_load(matrix.read_text("utf-8"))  # load_sweep has read and checked it
    return isinstance(data, dict) and bool(data.get("ray"))
