"""``lorabench calibrate RESULTS_DIR...``: refit the roofline time engine's constants to measured GPU runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["calibrate_command"]


def calibrate_command(
    results: Annotated[
        list[Path], typer.Argument(help="Folder(s) with lorabench run records (result.json), searched recursively.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the calibration (default FIRST_RESULTS/calibration.json).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the calibration as JSON.")] = False,
) -> None:
    """Refit the roofline time engine's constants so predicted step time tracks your measured runs."""
    from lorabench.predict.time.calibrate import CALIBRATION_NAME, calibrate_from_runs
    from lorabench.records import write_json_atomic

    calibration, skipped = calibrate_from_runs(results)
    target = out or results[0] / CALIBRATION_NAME
    record = calibration.to_dict()
    write_json_atomic(target, record)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    console = Console()
    consts = Table(title=f"Roofline constants fitted on {calibration.source}")
    consts.add_column("constant")
    consts.add_column("value", justify="right")
    for name, value in record["constants"].items():
        consts.add_row(name, f"{value:.4g}")
    console.print(consts)
    table = Table(title="Per-run fit (step = one optimizer step)")
    for col in ("run", "GPU", "bits", "batch x seq", "measured s/step", "predicted s/step", "error"):
        table.add_column(col, justify="right" if col != "run" else "left")
    for r in calibration.residuals:
        table.add_row(
            Path(r.record).name,
            r.gpu,
            str(r.bits),
            f"{r.micro_batch} x {r.seq_len}",
            f"{r.measured_step_s:.3f}",
            f"{r.predicted_step_s:.3f}",
            f"{100 * r.relative_error:+.1f}%",
        )
    console.print(table)
    summary = record["summary"]
    low, high = summary["band_80_relative"]
    console.print(
        f"median |error| {100 * summary['median_abs_relative_error']:.1f}% · "
        f"max {100 * summary['max_abs_relative_error']:.1f}%"
        f" · 80% band {100 * low:+.1f}% .. {100 * high:+.1f}%"
    )
    for line in skipped:
        console.print(f"[dim]left out: {line}[/dim]")
    console.print(f"written: {target} (use: lorabench estimate ... --calibration {target})")
