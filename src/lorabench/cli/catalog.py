"""``lorabench catalog``: every price with its date, status and source; ``--stale DAYS`` lists what to re-check."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lorabench.cli.cost import CatalogOpt
from lorabench.cli.options import WideOpt, make_console

if TYPE_CHECKING:
    from lorabench.cost import Catalog

__all__ = ["catalog_command", "stale_entries"]


def stale_entries(catalog: Catalog, days: int, today: dt.date) -> list[dict[str, Any]]:
    """Entries whose ``prices_checked`` is more than ``days`` days before ``today``, oldest first."""
    found = []
    for section, entries in (
        ("gpu_rates", catalog.gpu_rates),
        ("services", catalog.services),
        ("references", catalog.references),
    ):
        for entry in entries.values():
            age = entry.age_days(today)
            if age > days:
                found.append(
                    {
                        "section": section,
                        "id": entry.id,
                        "provider": entry.provider,
                        "prices_checked": entry.prices_checked.isoformat(),
                        "age_days": age,
                        "price_status": entry.price_status,
                        "source": entry.source,
                        "secondary_source": entry.secondary_source,
                        "file": catalog.origin.get(f"{section}:{entry.id}"),
                    }
                )
    return sorted(found, key=lambda e: (-e["age_days"], e["id"]))


def catalog_command(
    catalog: CatalogOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every entry as JSON.")] = False,
    stale: Annotated[
        int | None,
        typer.Option("--stale", min=0, help="List only entries checked more than DAYS days ago (to re-check)."),
    ] = None,
    wide: WideOpt = False,
) -> None:
    """List GPU rental rates, fine-tuning service prices and reference results, with dates and sources."""
    from lorabench.cost import load_catalog
    from lorabench.units import NA

    loaded = load_catalog(catalog or [])
    console = make_console(wide)
    if stale is not None:
        today = dt.datetime.now(dt.timezone.utc).date()
        old = stale_entries(loaded, stale, today)
        if as_json:
            typer.echo(json.dumps({"today": today.isoformat(), "days": stale, "entries": old}, indent=2))
            return
        table = Table(title=f"Catalog entries checked more than {stale} days before {today.isoformat()}")
        for col in ("id", "section", "checked", "age (days)", "status", "source"):
            table.add_column(col, no_wrap=col == "id", overflow="fold")
        for e in old:
            source = (
                e["source"] if e["secondary_source"] is None else f"{e['source']} (seen on: {e['secondary_source']})"
            )
            table.add_row(e["id"], e["section"], e["prices_checked"], str(e["age_days"]), e["price_status"], source)
        console.print(table)
        console.print(f"{len(old)} of {len(loaded.gpu_rates) + len(loaded.services) + len(loaded.references)} entries")
        return
    if as_json:
        payload = {
            "gpu_rates": [e.model_dump(mode="json") for e in loaded.gpu_rates.values()],
            "services": [e.model_dump(mode="json") for e in loaded.services.values()],
            "references": [e.model_dump(mode="json") for e in loaded.references.values()],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    rates = Table(title="GPU rental (USD per GPU-hour)")
    for col in ("id", "provider", "gpu", "on-demand", "spot", "tier", "checked", "source"):
        rates.add_column(col, no_wrap=col == "id", overflow="fold")
    for r in loaded.gpu_rates.values():
        spot = NA if r.spot_usd_per_gpu_hour is None else f"{r.spot_usd_per_gpu_hour:.2f}"
        rates.add_row(r.id, r.provider, r.gpu, f"{r.usd_per_gpu_hour:.2f}", spot, r.tier, r.checked_label(), r.source)
    console.print(rates)
    services = Table(title="Fine-tuning services (USD per 1M tokens: training; serving the tuned model, in/out)")
    columns = ("id", "provider", "train", "serve in/out", "size bracket", "epochs rule", "validation billed")
    for col in (*columns, "checked", "source"):
        services.add_column(col, no_wrap=col == "id", overflow="fold")
    for s in loaded.services.values():
        price = NA if s.train_usd_per_mtok is None else f"{s.train_usd_per_mtok:.2f}"
        serve = NA
        if s.infer_output_usd_per_mtok is not None:
            serve_in = NA if s.infer_input_usd_per_mtok is None else f"{s.infer_input_usd_per_mtok:.2f}"
            serve = f"{serve_in}/{s.infer_output_usd_per_mtok:.2f}"
        source = s.source if s.infer_source in (None, s.source) else f"{s.source} (serving: {s.infer_source})"
        billed = NA if s.validation_tokens_billed is None else ("yes" if s.validation_tokens_billed else "no")
        bracket = s.bracket_label() or NA
        services.add_row(s.id, s.provider, price, serve, bracket, s.epochs_rule, billed, s.checked_label(), source)
    console.print(services)
    for s in loaded.services.values():
        label = s.wind_down_label()
        if label is not None:
            console.print(f"{s.id}: {label} [{s.wind_down_source}]")
    refs = Table(title="References")
    for col in ("id", "name", "kind", "checked", "source"):
        refs.add_column(col, no_wrap=col == "id", overflow="fold")
    for ref in loaded.references.values():
        refs.add_row(ref.id, ref.display_name, ref.kind, ref.checked_label(), ref.source)
    console.print(refs)
