"""``lorabench catalog``: every price with its date and source."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from lorabench.cli.cost import CatalogOpt
from lorabench.cli.options import WideOpt, make_console

__all__ = ["catalog_command"]


def catalog_command(
    catalog: CatalogOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every entry as JSON.")] = False,
    wide: WideOpt = False,
) -> None:
    """List GPU rental rates, fine-tuning service prices and reference results, with dates and sources."""
    from lorabench.cost import load_catalog
    from lorabench.units import NA

    loaded = load_catalog(catalog or [])
    if as_json:
        payload = {
            "gpu_rates": [e.model_dump(mode="json") for e in loaded.gpu_rates.values()],
            "services": [e.model_dump(mode="json") for e in loaded.services.values()],
            "references": [e.model_dump(mode="json") for e in loaded.references.values()],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console = make_console(wide)
    rates = Table(title="GPU rental (USD per GPU-hour)")
    for col in ("id", "provider", "gpu", "on-demand", "spot", "tier", "checked", "source"):
        rates.add_column(col, no_wrap=col == "id", overflow="fold")
    for r in loaded.gpu_rates.values():
        spot = NA if r.spot_usd_per_gpu_hour is None else f"{r.spot_usd_per_gpu_hour:.2f}"
        rates.add_row(
            r.id, r.provider, r.gpu, f"{r.usd_per_gpu_hour:.2f}", spot, r.tier, str(r.prices_checked), r.source
        )
    console.print(rates)
    services = Table(title="Fine-tuning services (USD per 1M tokens: training; serving the tuned model, in/out)")
    for col in ("id", "provider", "train", "serve in/out", "epochs rule", "validation billed", "checked", "source"):
        services.add_column(col, no_wrap=col == "id", overflow="fold")
    for s in loaded.services.values():
        price = NA if s.train_usd_per_mtok is None else f"{s.train_usd_per_mtok:.2f}"
        billed = NA if s.validation_tokens_billed is None else ("yes" if s.validation_tokens_billed else "no")
        serve = NA
        if s.infer_output_usd_per_mtok is not None:
            serve_in = NA if s.infer_input_usd_per_mtok is None else f"{s.infer_input_usd_per_mtok:.2f}"
            serve = f"{serve_in}/{s.infer_output_usd_per_mtok:.2f}"
        source = s.source if s.infer_source in (None, s.source) else f"{s.source} (serving: {s.infer_source})"
        services.add_row(s.id, s.provider, price, serve, s.epochs_rule, billed, str(s.prices_checked), source)
    console.print(services)
    refs = Table(title="References")
    for col in ("id", "name", "kind", "checked", "source"):
        refs.add_column(col, no_wrap=col == "id", overflow="fold")
    for ref in loaded.references.values():
        refs.add_row(ref.id, ref.display_name, ref.kind, str(ref.prices_checked), ref.source)
    console.print(refs)
