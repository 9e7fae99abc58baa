"""``lorabench cost SCENARIO.yaml``: the Fine-tuning Cost Comparison table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from lorabench.cli.options import WideOpt, fold_columns, make_console

__all__ = ["cost_command"]

CatalogOpt = Annotated[
    list[Path] | None,
    typer.Option("--catalog", help="Extra price catalog file(s); entries with an existing id replace it."),
]


def cost_command(
    scenario: Annotated[
        Path, typer.Argument(help="Scenario YAML: dataset, epochs, self_hosted, services, references.")
    ],
    catalog: CatalogOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="md or rst (display table), or csv (numbers with units in column names)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also save the rows as a cost record (JSON) for `lorabench report`.")
    ] = None,
    wide: WideOpt = False,
) -> None:
    """Compare self-hosted fine-tuning with commercial services and reference projects."""
    from lorabench.api import cost
    from lorabench.cost import cost_table
    from lorabench.cost.table import cost_csv
    from lorabench.errors import ConfigError
    from lorabench.report import to_markdown, to_rst

    renderers = {"md": to_markdown, "rst": to_rst}
    if fmt is not None and fmt not in (*renderers, "csv"):
        raise ConfigError(f"--format: must be md, rst or csv (got {fmt!r})")
    result = cost(scenario, catalogs=catalog or [])
    rows = list(result.rows)
    if out is not None:
        from lorabench.records import write_json_atomic

        write_json_atomic(out, result.record)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    if fmt == "csv":
        typer.echo(cost_csv(rows), nl=False)
        return
    table = cost_table(rows)
    if fmt is not None:
        typer.echo(renderers[fmt](table), nl=False)
        return
    rich = RichTable(title=table.title, caption=table.note)
    for i, header in enumerate(table.headers):
        rich.add_column(header, justify="left" if i in (0, len(table.headers) - 1) else "right")
    for cells in table.rows:
        rich.add_row(*cells)
    console = make_console(wide)
    console.print(fold_columns(rich))
    for row in rows:
        if row.note and (row.fits is False or row.job_creation_ends is not None):
            console.print(f"{row.name}: {row.note}")
