"""Where each catalog-derived figure of the cost comparison came from: a numbered sources list for the page.

Every cost row keeps, per figure, a provenance mapping; a ``catalog`` one names the entry, its ``prices_checked``
date and its ``source`` URL. This module numbers the distinct entries ([1], [2], ...), reads whether each price was
confirmed on the provider's own page, and whether the service is being wound down. It reads what the saved record
holds first and falls back to the catalog shipped with lorabench (by entry id) for fields an older record lacks; it
tolerates both spellings the catalog has used (``price_status: confirmed|unconfirmed``, or a ``confirmed`` flag).
An entry that says nothing about confirmation is ``not stated`` unless it lacks a source URL (then ``unconfirmed``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lorabench.cost.scenario import CostRow

__all__ = ["PriceSource", "PriceStatus", "RowSources", "collect_price_sources", "safe_url"]

PriceStatus = Literal["confirmed", "unconfirmed", "not stated"]
# the priced figure of each kind of entry, by the key the cost layer writes into the provenance
_PRICE_KEYS = (
    ("usd_per_gpu_hour", "GPU rate", "GPU-hour"),
    ("train_usd_per_mtok", "fine-tuning price", "1M training tokens"),
    ("published_cost_usd", "published cost", "job"),
)
_FIELD_NAMES = {"time_s": "time", "cost_usd": "cost", "epochs": "epochs", "billed_tokens": "tokens", "fits": "fit"}


@dataclass(frozen=True)
class PriceSource:
    """One catalog entry a figure on the page came from.

    Attributes:
        ref: Its number on the page (``[1]``).
        entry: Catalog entry id.
        what: ``GPU rate``, ``fine-tuning price``, ``published cost`` or ``published figure`` (time only).
        price_usd: The priced figure in USD (None when the entry gave only a time).
        price_per: What ``price_usd`` is per (``GPU-hour``, ``1M training tokens``, ``job``).
        prices_checked: The date the catalog gives (ISO), if any.
        source: The URL the figure was taken from, if any.
        status: ``confirmed`` (read on the provider's own page), ``unconfirmed`` or ``not stated``.
        secondary_source: Where an unconfirmed figure was read.
        wind_down: The service's wind-down (date and note), when it is being wound down.
        wind_down_source: Where the wind-down is announced.
        file: The catalog file the entry came from.
        fields: The figures that used it (``Row name: cost``, ...).
    """

    ref: int
    entry: str
    what: str
    price_usd: float | None
    price_per: str | None
    prices_checked: str | None
    source: str | None
    status: PriceStatus
    secondary_source: str | None
    wind_down: str | None
    wind_down_source: str | None
    file: str | None
    fields: tuple[str, ...]

    @property
    def checked_display(self) -> str:
        """The date as the page shows it: an unconfirmed price's date is when it was seen, not a confirmation."""
        if self.prices_checked is None:
            return "no date"
        if self.status == "unconfirmed":
            return f"seen {self.prices_checked} (unconfirmed)"
        return self.prices_checked


@dataclass(frozen=True)
class RowSources:
    """Where one cost row's figures came from, in provenance order: ``(figure, kind)`` and catalog ``(figure, ref)``."""

    items: tuple[tuple[str, str | int], ...]
    notices: tuple[str, ...] = ()

    @property
    def refs(self) -> tuple[int, ...]:
        """The numbers of the catalog sources the row uses."""
        return tuple(dict.fromkeys(v for _, v in self.items if isinstance(v, int)))

    def display(self) -> str:
        """``time: predicted; cost: [1]``."""
        parts = [f"{_FIELD_NAMES.get(f, f)}: {f'[{v}]' if isinstance(v, int) else v}" for f, v in self.items]
        return "; ".join(parts) or "n/a"


def safe_url(value: Any) -> str | None:
    """The value if it is an http(s) URL (the only kind the page links), else None."""
    if isinstance(value, str) and value.startswith(("http://", "https://")) and not any(c.isspace() for c in value):
        return value
    return None


def _catalog_entry(entry_id: str) -> Any:
    """The packaged catalog's entry of that id (any kind), or None (unknown id, or the catalog cannot load)."""
    from lorabench.cost.catalog import packaged_catalog
    from lorabench.errors import LorabenchError

    try:
        catalog = packaged_catalog()
    except LorabenchError:
        return None
    for section in (catalog.gpu_rates, catalog.services, catalog.references):
        if entry_id in section:
            return section[entry_id]
    return None


def _field(prov: Mapping[str, Any], entry: Any, *names: str) -> Any:
    """The first of ``names`` the saved provenance holds, else the catalog entry's (when it is the same dated entry)."""
    for name in names:
        if prov.get(name) is not None:
            return prov[name]
    if entry is None:
        return None
    for name in names:
        value = getattr(entry, name, None)
        if value is not None and not callable(value):
            return value
    return None


def _status(prov: Mapping[str, Any], entry: Any, source: str | None) -> PriceStatus:
    raw = _field(prov, entry, "price_status", "status")
    if isinstance(raw, str) and raw.lower() in ("confirmed", "unconfirmed"):
        return "confirmed" if raw.lower() == "confirmed" else "unconfirmed"
    flag = _field(prov, entry, "confirmed")
    if isinstance(flag, bool):
        return "confirmed" if flag else "unconfirmed"
    return "unconfirmed" if source is None else "not stated"


def _wind_down(prov: Mapping[str, Any], entry: Any) -> tuple[str | None, str | None, str | None]:
    """The wind-down notice, its source, and the date job creation ends (each None when not being wound down)."""
    ends = _field(prov, entry, "job_creation_ends", "wind_down_date")
    note = _field(prov, entry, "wind_down_note")
    if ends is None and note is None:
        return None, None, None
    if isinstance(ends, (dt.date, dt.datetime)):
        ends = ends.isoformat()
    text = f"new fine-tuning jobs end {ends}" if ends is not None else ""
    if note:
        text = f"{text}: {note}" if text else str(note)
    return text, safe_url(_field(prov, entry, "wind_down_source")), None if ends is None else str(ends)


def _same_dated_entry(prov: Mapping[str, Any], entry: Any) -> Any:
    """The catalog entry only when it is the one the record priced (same date and source), else None."""
    if entry is None:
        return None
    checked = getattr(entry, "prices_checked", None)
    checked_iso = checked.isoformat() if isinstance(checked, dt.date) else checked
    if prov.get("prices_checked") not in (None, checked_iso) or prov.get("source") not in (None, entry.source):
        return None
    return entry


def collect_price_sources(rows: Sequence[CostRow]) -> tuple[list[PriceSource], list[RowSources]]:
    """Number the catalog entries the rows' figures came from.

    Args:
        rows: Cost rows in page order.

    Returns:
        The sources in first-use order, and per row its references (same order as ``rows``).
    """
    keyed: dict[tuple[Any, ...], dict[str, Any]] = {}
    per_row: list[RowSources] = []
    for row in rows:
        items: list[tuple[str, str | int]] = []
        notices: list[str] = []
        for field, prov in row.provenance.items():
            kind = str(prov.get("kind", "?"))
            if kind == "catalog" and "entry" not in prov and prov.get("job_creation_ends") is not None:
                # a service's availability (its wind-down), not a price: a notice on the row
                notices.append(f"new fine-tuning jobs end {prov['job_creation_ends']}")
                continue
            if kind != "catalog" or "entry" not in prov:
                items.append((field, kind))
                continue
            entry_id = str(prov.get("entry", "?"))
            price_key = next((k for k, _, _ in _PRICE_KEYS if prov.get(k) is not None), None)
            price = prov.get(price_key) if price_key else None
            key = (entry_id, prov.get("prices_checked"), prov.get("source"))
            known = keyed.get(key)
            if known is not None and price is not None and known["price_usd"] is None:  # a time entry priced later
                what, per = next((w, u) for k, w, u in _PRICE_KEYS if k == price_key)
                known.update(price_usd=float(price), price_per=per, what=what)
            if key not in keyed:
                entry = _same_dated_entry(prov, _catalog_entry(entry_id))
                source = safe_url(prov.get("source"))
                what, unit = next(((w, u) for k, w, u in _PRICE_KEYS if k == price_key), ("published figure", None))
                wind_down, wind_source, ends = _wind_down(prov, entry)
                keyed[key] = {
                    "ref": len(keyed) + 1,
                    "entry": entry_id,
                    "what": what,
                    "price_usd": float(price) if isinstance(price, (int, float)) else None,
                    "price_per": unit,
                    "prices_checked": None if prov.get("prices_checked") is None else str(prov["prices_checked"]),
                    "source": source,
                    "status": _status(prov, entry, source),
                    "secondary_source": safe_url(_field(prov, entry, "secondary_source")),
                    "wind_down": wind_down,
                    "wind_down_source": wind_source,
                    "wind_down_ends": ends,
                    "file": None if prov.get("file") is None else str(prov["file"]),
                    "fields": [],
                }
            keyed[key]["fields"].append(f"{row.name}: {_FIELD_NAMES.get(field, field)}")
            items.append((field, keyed[key]["ref"]))
        for ref in dict.fromkeys(v for _, v in items if isinstance(v, int)):
            ends = next(v for v in keyed.values() if v["ref"] == ref)["wind_down_ends"]
            if ends is not None:
                notices.append(f"new fine-tuning jobs end {ends}")
        per_row.append(RowSources(tuple(items), tuple(dict.fromkeys(notices))))
    sources = [
        PriceSource(**{**{k: x for k, x in v.items() if k != "wind_down_ends"}, "fields": tuple(v["fields"])})
        for v in keyed.values()
    ]
    return sources, per_row
