"""The price catalog: dated, sourced prices shipped as data files, one per provider.

Three kinds of entry:

- ``gpu_rates``: renting one GPU for one hour (``usd_per_gpu_hour``; ``spot_usd_per_gpu_hour`` where known).
- ``services``: commercial fine-tuning (``train_usd_per_mtok`` per 1M billed training tokens, the epoch
  rule, whether validation tokens are billed, hosting and storage fees). ``train_usd_per_mtok: null``
  means the price is unknown, and every cost computed from it is unknown too.
- ``references``: reference results for scale (a project's GPU-hours at a cited rate, or a published cost).

Every entry must carry ``prices_checked`` (a date) and ``source`` (a URL): a price without them fails to
load. ``price_status`` says whether the figure was read on a copy of the provider's own page
(``confirmed``: ``prices_checked`` is the date of that copy) or only on a secondary source
(``unconfirmed``: ``secondary_source`` names it and ``prices_checked`` is the day it was seen there, never
shown as a confirmation). A service may carry a size bracket (``min_params_b`` / ``max_params_b``, billions of
base-model parameters) and a wind-down (``job_creation_ends``, with ``wind_down_note`` and ``wind_down_source``).
Users add or override entries (by ``id``) with their own files.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lorabench.errors import CatalogError

__all__ = [
    "Catalog",
    "GpuRate",
    "Reference",
    "ServicePrice",
    "load_catalog",
    "packaged_catalog",
]


class _Dated(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    prices_checked: dt.date
    source: str = Field(min_length=1)
    note: str | None = None
    provider: str = ""
    price_status: Literal["confirmed", "unconfirmed"] = "confirmed"
    secondary_source: str | None = None

    @field_validator("source")
    @classmethod
    def _source_is_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the URL the price was taken from (http:// or https://)")
        return value

    @field_validator("secondary_source")
    @classmethod
    def _secondary_named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must name where the unconfirmed figure was read (a URL where there is one)")
        return value

    @model_validator(mode="after")
    def _unconfirmed_names_its_source(self) -> _Dated:
        if self.price_status == "unconfirmed" and self.secondary_source is None:
            raise ValueError("price_status unconfirmed: give secondary_source (where the figure was read)")
        return self

    @property
    def confirmed(self) -> bool:
        """True when the price was read on a copy of the provider's own page."""
        return self.price_status == "confirmed"

    def checked_label(self) -> str:
        """``2026-10-08`` for a confirmed price; ``unconfirmed (seen 2026-11-28 on <secondary URL>)`` otherwise."""
        if self.confirmed:
            return self.prices_checked.isoformat()
        return f"unconfirmed (seen {self.prices_checked.isoformat()} on {self.secondary_source})"

    def age_days(self, today: dt.date) -> int:
        """Days from ``prices_checked`` to ``today``."""
        return (today - self.prices_checked).days


class GpuRate(_Dated):
    """Rental price of one GPU for one hour."""

    gpu: str = Field(min_length=1)
    usd_per_gpu_hour: float = Field(gt=0)
    spot_usd_per_gpu_hour: float | None = Field(default=None, gt=0)
    tier: str = "on-demand"


class ServicePrice(_Dated):
    """A commercial fine-tuning service's training price and billing rules.

    ``infer_input_usd_per_mtok`` / ``infer_output_usd_per_mtok`` are what serving the fine-tuned model costs
    per 1M tokens, where known (``infer_source`` names where they were read when it is not ``source``).
    """

    display_name: str = Field(min_length=1)
    train_usd_per_mtok: float | None = Field(gt=0)
    epochs_rule: Literal["openai_default", "fixed", "unknown"] = "unknown"
    default_epochs: int | None = Field(default=None, ge=1)
    validation_tokens_billed: bool | None = None
    min_charge_usd: float | None = Field(default=None, ge=0)
    hosting_usd_per_hour: float | None = Field(default=None, ge=0)
    storage_usd_per_month: float | None = Field(default=None, ge=0)
    model_size_bracket: str | None = None  # free text as the provider words it; the check uses min/max_params_b
    infer_input_usd_per_mtok: float | None = Field(default=None, gt=0)
    infer_output_usd_per_mtok: float | None = Field(default=None, gt=0)
    infer_source: str | None = None
    min_params_b: float | None = Field(default=None, ge=0)
    max_params_b: float | None = Field(default=None, gt=0)
    job_creation_ends: dt.date | None = None
    wind_down_note: str | None = None
    wind_down_source: str | None = None

    @field_validator("infer_source", "wind_down_source")
    @classmethod
    def _infer_source_is_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be the URL the figure was taken from (http:// or https://)")
        return value

    @model_validator(mode="after")
    def _bracket_and_wind_down(self) -> ServicePrice:
        low, high = self.min_params_b, self.max_params_b
        if low is not None and high is not None and low >= high:
            raise ValueError(f"min_params_b ({low}) must be below max_params_b ({high})")
        if self.job_creation_ends is not None and (self.wind_down_note is None or self.wind_down_source is None):
            raise ValueError("job_creation_ends: give wind_down_note and wind_down_source too")
        return self

    def bracket_label(self) -> str | None:
        """``up to 16B``, ``over 16B up to 80B``, ``over 80B``; None when the service has no size bracket."""
        low, high = self.min_params_b, self.max_params_b
        if low is None and high is None:
            return None
        if high is None:
            return f"over {low:g}B"
        if low is None or low == 0:
            return f"up to {high:g}B"
        return f"over {low:g}B up to {high:g}B"

    def covers_params(self, params: int) -> bool:
        """Whether a base model of ``params`` parameters is in the size bracket (True without one).

        In the bracket: above ``min_params_b`` (exclusive) and at most ``max_params_b``.
        """
        billions = params / 1e9
        if self.min_params_b is not None and billions <= self.min_params_b:
            return False
        return self.max_params_b is None or billions <= self.max_params_b

    def wind_down_label(self, today: dt.date | None = None) -> str | None:
        """``job creation ends 2027-01-06: <note>`` (``ended`` once past); None without a wind-down."""
        if self.job_creation_ends is None:
            return None
        day = today or dt.datetime.now(dt.timezone.utc).date()
        verb = "ended" if day >= self.job_creation_ends else "ends"
        return f"being wound down: job creation {verb} {self.job_creation_ends.isoformat()} ({self.wind_down_note})"


class Reference(_Dated):
    """A reference result: a project's compute at a cited rate, or a published cost."""

    display_name: str = Field(min_length=1)
    kind: Literal["project", "published_result"]
    gpu: str | None = None
    gpus: int | None = Field(default=None, ge=1)
    time_s: float | None = Field(default=None, gt=0)
    rate_id: str | None = None
    cost_usd: float | None = Field(default=None, gt=0)


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1]
    provider: str = Field(min_length=1)
    gpu_rates: list[Any] = []
    services: list[Any] = []
    references: list[Any] = []


@dataclass
class Catalog:
    """All loaded entries by id, with the file each came from."""

    gpu_rates: dict[str, GpuRate] = field(default_factory=dict)
    services: dict[str, ServicePrice] = field(default_factory=dict)
    references: dict[str, Reference] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def service(self, name: str) -> ServicePrice:
        """Find a service by id or display name (case-insensitive).

        Raises:
            CatalogError: No such service; the message lists the known ids.
        """
        found = _find(self.services, name)
        if found is None:
            raise CatalogError(f"unknown service {name!r}; known: {', '.join(sorted(self.services))}")
        return found

    def reference(self, name: str) -> Reference:
        """Find a reference by id or display name (case-insensitive).

        Raises:
            CatalogError: No such reference.
        """
        found = _find(self.references, name)
        if found is None:
            raise CatalogError(f"unknown reference {name!r}; known: {', '.join(sorted(self.references))}")
        return found

    def gpu_rate(self, rate_id: str) -> GpuRate:
        """Find a GPU rate by id.

        Raises:
            CatalogError: No such rate.
        """
        if rate_id not in self.gpu_rates:
            raise CatalogError(f"unknown GPU rate {rate_id!r}; known: {', '.join(sorted(self.gpu_rates))}")
        return self.gpu_rates[rate_id]

    def rates_for_gpu(self, gpu: str, provider: str | None = None) -> list[GpuRate]:
        """On-demand rates for a GPU (any alias the hardware catalog knows), cheapest first."""
        key = _gpu_key(gpu)
        rates = [r for r in self.gpu_rates.values() if _gpu_key(r.gpu) == key]
        if provider is not None:
            rates = [r for r in rates if r.provider.lower() == provider.lower()]
        return sorted(rates, key=lambda r: (r.usd_per_gpu_hour, r.id))


_Named = TypeVar("_Named", ServicePrice, Reference)


def _find(entries: Mapping[str, _Named], name: str) -> _Named | None:
    low = name.strip().lower()
    for key, entry in entries.items():
        if low in (key.lower(), entry.display_name.lower()):
            return entry
    return None


def _gpu_key(name: str) -> str:
    from lorabench.hardware import resolve_gpu

    return resolve_gpu(name).key


def _describe(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()))
    if error.get("type") == "extra_forbidden":
        return (
            f"{loc}: unknown key (allowed: schema_version, provider, gpu_rates, services, references, or entry fields)"
        )
    if error.get("type") == "missing":
        why = {
            "prices_checked": "required: every price needs the date it was checked",
            "source": "required: every price needs the URL it came from",
        }.get(loc, "required")
        return f"{loc}: {why}"
    msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{loc}: {msg} (got {error.get('input')!r})"


def _parse_file(path: str, text: str) -> tuple[str, list[tuple[str, BaseModel]]]:
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:  # RecursionError: nesting too deep
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CatalogError(f"{path}: malformed YAML{where}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: expected a mapping with schema_version, provider and entries")
    try:
        parsed = _CatalogFile.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(f"{path}: {_describe(exc.errors()[0])}") from None
    entries: list[tuple[str, BaseModel]] = []
    kinds: tuple[tuple[str, type[_Dated], list[Any]], ...] = (
        ("gpu_rates", GpuRate, parsed.gpu_rates),
        ("services", ServicePrice, parsed.services),
        ("references", Reference, parsed.references),
    )
    for section, model, raw_entries in kinds:
        for index, raw in enumerate(raw_entries):
            label = f"{section}[{index}]" + (f" ({raw.get('id')})" if isinstance(raw, dict) and "id" in raw else "")
            if not isinstance(raw, dict):
                raise CatalogError(f"{path}: {label}: expected a mapping")
            try:
                entry = model.model_validate({**raw, "provider": raw.get("provider", parsed.provider)})
            except ValidationError as exc:
                problems = "; ".join(_describe(e) for e in exc.errors())
                raise CatalogError(f"{path}: {label}: {problems}") from None
            entries.append((section, entry))
    return parsed.provider, entries


def _add(catalog: Catalog, origin: str, entries: Iterable[tuple[str, BaseModel]]) -> None:
    for section, entry in entries:
        if isinstance(entry, GpuRate):
            _gpu_key(entry.gpu)  # unknown GPU names fail at load, naming the catalog
            catalog.gpu_rates[entry.id] = entry
        elif isinstance(entry, ServicePrice):
            catalog.services[entry.id] = entry
        elif isinstance(entry, Reference):
            catalog.references[entry.id] = entry
        catalog.origin[f"{section}:{getattr(entry, 'id', '')}"] = origin


def _check_links(catalog: Catalog) -> None:
    for ref in catalog.references.values():
        if ref.rate_id is not None and ref.rate_id not in catalog.gpu_rates:
            raise CatalogError(f"reference {ref.id!r}: rate_id {ref.rate_id!r} is not a GPU rate in the catalog")
        if ref.kind == "project" and (ref.gpus is None or ref.time_s is None or ref.rate_id is None):
            raise CatalogError(f"reference {ref.id!r}: a project needs gpus, time_s and rate_id")
        if ref.kind == "published_result" and ref.cost_usd is None:
            raise CatalogError(f"reference {ref.id!r}: a published result needs cost_usd")


@functools.cache
def packaged_catalog() -> Catalog:
    """The catalog shipped with lorabench (cached).

    Raises:
        CatalogError: A packaged file is invalid (a packaging bug).
    """
    catalog = Catalog()
    folder = resources.files("lorabench.cost").joinpath("catalog")
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            try:
                _, entries = _parse_file(f"catalog/{item.name}", item.read_text("utf-8"))
                _add(catalog, f"lorabench/cost/catalog/{item.name}", entries)
            except CatalogError as exc:
                raise CatalogError(f"packaged {exc}") from None
    _check_links(catalog)
    return catalog


def load_catalog(extra: Sequence[Path] = ()) -> Catalog:
    """The packaged catalog plus user files; a user entry with an existing id replaces it.

    Args:
        extra: User catalog files in the same schema.

    Returns:
        A new catalog (the packaged one is not modified).

    Raises:
        CatalogError: A file is unreadable or invalid; the message names the file, entry and field.
    """
    base = packaged_catalog()
    catalog = Catalog(dict(base.gpu_rates), dict(base.services), dict(base.references), dict(base.origin))
    for path in extra:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"{path}: cannot read catalog file ({exc})") from None
        if not text.strip():
            raise CatalogError(f"{path}: catalog file is empty")
        _, entries = _parse_file(str(path), text)
        try:
            _add(catalog, str(path), entries)
        except CatalogError as exc:
            raise CatalogError(f"{path}: {exc}") from None
    _check_links(catalog)
    return catalog
