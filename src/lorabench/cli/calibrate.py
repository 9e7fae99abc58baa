"""``lorabench calibrate RESULTS_DIR``: fit the time engine's efficiency to measured GPU runs."""

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
        Path, typer.Argument(help="Folder with lorabench run records (result.json), searched recursively.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the calibration (default RESULTS/calibration.json).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the calibration as JSON.")] = False,
) -> None:
    """Fit achieved/peak FLOP/s per base bit width so predicted time tracks measured time on your hardware."""
    from lorabench.predict.time.calibrate import CALIBRATION_NAME, calibrate_from_runs
    from lorabench.records import write_json_atomic

    calibration, skipped = calibrate_from_runs(results)
    target = out or results / CALIBRATION_NAME
    write_json_atomic(target, calibration.to_dict())
    if as_json:
        typer.echo(json.dumps(calibration.to_dict(), indent=2))
        return
    console = Console()
    table = Table(title=f"Time-engine calibration from {results}")
    for col in ("base bits", "runs", "efficiency (achieved / datasheet peak)", "worst |error| after fit"):
        table.add_column(col, justify="right")
    for bits, eff in sorted(calibration.efficiency_by_bits.items()):
        errors: list[float] = list(calibration.relative_errors_by_bits.get(bits) or [])
        worst = max((abs(e) for e in errors), default=None)
        table.add_row(
            str(bits),
            str(calibration.runs_by_bits.get(bits)),
            f"{eff:.3f}",
            "n/a" if worst is None else f"{100 * worst:.1f}%",
        )
    console.print(table)
    for line in skipped:
        console.print(f"[dim]left out: {line}[/dim]")
    console.print(f"written: {target} (use: lorabench estimate ... --calibration {target})")
