"""``lorabench models``: the architecture catalog."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from lorabench.cli.options import WideOpt, fold_columns, make_console

__all__ = ["models_command"]


def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    wide: WideOpt = False,
) -> None:
    """List the built-in architectures (config facts only; any local HF config directory works too)."""
    from lorabench.models import architecture_catalog

    catalog = architecture_catalog()
    if as_json:
        typer.echo(json.dumps({k: e.model_dump(mode="json") for k, e in catalog.items()}, indent=2))
        return
    table = Table(title="Architecture catalog")
    for col in ("name", "model", "type", "layers", "hidden", "heads/kv", "vocab", "tied", "source"):
        table.add_column(col)
    for key, entry in catalog.items():
        c = entry.config
        table.add_row(
            key,
            entry.display_name,
            c["model_type"],
            str(c["num_hidden_layers"]),
            str(c["hidden_size"]),
            f"{c['num_attention_heads']}/{c.get('num_key_value_heads', c['num_attention_heads'])}",
            str(c["vocab_size"]),
            "yes" if c.get("tie_word_embeddings") else "no",
            entry.source,
        )
    make_console(wide).print(fold_columns(table))
