from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.cost import load_catalog, packaged_catalog
from lorabench.errors import CatalogError


def test_every_packaged_entry_is_dated_and_sourced() -> None:
    catalog = packaged_catalog()
    entries = [*catalog.gpu_rates.values(), *catalog.services.values(), *catalog.references.values()]
    assert len(entries) > 30
    for entry in entries:
        assert entry.prices_checked.year >= 2024
        assert entry.source.startswith("https://")


def test_issue_prices_are_in_the_catalog() -> None:
    catalog = packaged_catalog()
    expected = {
        "gpt-4o-mini": 3.0,
        "gpt-4o": 25.0,
        "gpt-4.1": 25.0,
        "gpt-4.1-mini": 5.0,
        "gpt-4.1-nano": 1.5,
        "gpt-3.5-turbo": 8.0,
        "gemini-2.0-flash": 3.0,
        "gemini-2.5-flash": 5.0,
        "gemini-2.5-flash-lite": 1.5,
        "gemini-2.5-pro": 25.0,
    }
    for service, price in expected.items():
        assert catalog.service(service).train_usd_per_mtok == price
    assert catalog.service("gemini-2.0-flash-lite").train_usd_per_mtok is None  # unknown, not 0
    assert catalog.gpu_rate("finlora-a5000").usd_per_gpu_hour == 0.26
    assert catalog.gpu_rate("aws-p4d-a100-40gb").usd_per_gpu_hour == pytest.approx(32.77 / 8)
    assert catalog.reference("bloomberggpt").gpus == 512


def test_rates_for_gpu_resolve_aliases_cheapest_first() -> None:
    rates = packaged_catalog().rates_for_gpu("RTX A5000")
    assert [r.id for r in rates][:2] == ["finlora-a5000", "runpod-a5000"]
    assert [r.id for r in packaged_catalog().rates_for_gpu("a5000", provider="runpod")] == ["runpod-a5000"]


def test_lookup_errors_list_known_ids() -> None:
    with pytest.raises(CatalogError, match=r"unknown service 'gpt-5-ft'; known: .*gpt-4o-mini"):
        packaged_catalog().service("gpt-5-ft")
    with pytest.raises(CatalogError, match="unknown reference"):
        packaged_catalog().reference("palm")


def test_user_file_overrides_and_extends(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text(
        "schema_version: 1\nprovider: mycloud\n"
        "gpu_rates:\n  - {id: runpod-a5000, gpu: A5000, usd_per_gpu_hour: 0.19, prices_checked: 2026-11-01,"
        " source: 'https://example.com/p'}\n"
        "services:\n  - {id: my-ft, display_name: My FT, train_usd_per_mtok: 0.1, prices_checked: 2026-11-01,"
        " source: 'https://example.com/s'}\n"
    )
    catalog = load_catalog([user])
    assert catalog.gpu_rate("runpod-a5000").usd_per_gpu_hour == 0.19
    assert catalog.gpu_rate("runpod-a5000").provider == "mycloud"
    assert catalog.service("My FT").train_usd_per_mtok == 0.1
    assert packaged_catalog().gpu_rate("runpod-a5000").usd_per_gpu_hour == 0.29  # packaged one untouched


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            "services:\n  - {id: x, display_name: X, train_usd_per_mtok: 1.0, source: 'https://e.com'}\n",
            "prices_checked: required: every price needs the date",
        ),
        (
            "services:\n  - {id: x, display_name: X, train_usd_per_mtok: 1.0, prices_checked: 2026-01-01}\n",
            "source: required: every price needs the URL",
        ),
        (
            "services:\n  - {id: x, display_name: X, train_usd_per_mtok: 1.0, prices_checked: 2026-01-01,"
            " source: nope}\n",
            "source: must be the URL",
        ),
        (
            "gpu_rates:\n  - {id: y, gpu: A5000, usd_per_gpu_hour: -1, prices_checked: 2026-01-01, source: 'https://e.com'}\n",
            "usd_per_gpu_hour",
        ),
        (
            "gpu_rates:\n  - {id: y, gpu: Voodoo5, usd_per_gpu_hour: 1, prices_checked: 2026-01-01, source: 'https://e.com'}\n",
            "unknown GPU 'Voodoo5'",
        ),
        (
            "gpu_rates:\n  - {id: y, gpu: A5000, usd_per_gpu_hour: 1, prices_checked: someday, source: 'https://e.com'}\n",
            "prices_checked",
        ),
        ("services: [1, 2]\n", "services[0]: expected a mapping"),
        ("prices: []\n", "unknown"),
    ],
)
def test_bad_catalog_files_fail_loudly(tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("schema_version: 1\nprovider: p\n" + body)
    with pytest.raises(CatalogError) as err:
        load_catalog([path])
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_unreadable_and_empty_catalog_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read catalog file"):
        load_catalog([tmp_path / "absent.yaml"])
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(CatalogError, match="empty"):
        load_catalog([empty])
    wrong_version = tmp_path / "v2.yaml"
    wrong_version.write_text("schema_version: 2\nprovider: p\n")
    with pytest.raises(CatalogError, match="schema_version"):
        load_catalog([wrong_version])


def test_fine_tuned_serving_prices_carry_their_source() -> None:
    from lorabench.cost import packaged_catalog
    from lorabench.infer.cost import api_inference_prices

    mini = packaged_catalog().services["gpt-4o-mini"]
    assert mini.infer_input_usd_per_mtok == 0.30 and mini.infer_output_usd_per_mtok == 1.20
    prices = {p["service"]: p for p in api_inference_prices()}
    assert prices["gpt-4o-mini"]["source"].startswith("https://")
    assert prices["gpt-4o-mini"]["prices_checked"] == "2026-04-07"  # the TokenMix copy's date
    assert "gpt-4.1-nano" not in prices  # unknown stays unknown, never 0


def test_every_packaged_entry_states_its_price_status() -> None:
    from importlib import resources

    import yaml

    folder = resources.files("lorabench.cost").joinpath("catalog")
    for item in folder.iterdir():
        if not item.name.endswith(".yaml"):
            continue
        data = yaml.safe_load(item.read_text("utf-8"))
        for section in ("gpu_rates", "services", "references"):
            for raw in data.get(section, []):
                assert raw.get("price_status") in ("confirmed", "unconfirmed"), (item.name, raw["id"])
    catalog = packaged_catalog()
    for entry in [*catalog.gpu_rates.values(), *catalog.services.values(), *catalog.references.values()]:
        label = entry.checked_label()
        if entry.confirmed:
            assert label == entry.prices_checked.isoformat()
        else:
            assert entry.secondary_source
            assert label.startswith("unconfirmed (seen ") and entry.secondary_source in label


def _one_service(tmp_path: Path, fields: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        "schema_version: 1\nprovider: me\nservices:\n  - {id: s, display_name: S, train_usd_per_mtok: 1.0, "
        f"prices_checked: 2026-01-01, source: 'https://e.com', {fields}}}\n"
    )
    return path


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ("price_status: unconfirmed", "give secondary_source"),
        ("price_status: maybe", "price_status"),
        ("min_params_b: 16, max_params_b: 8", "must be below max_params_b"),
        ("job_creation_ends: 2027-01-06", "give wind_down_note and wind_down_source"),
        ("job_creation_ends: 2027-01-06, wind_down_note: x, wind_down_source: nope", "wind_down_source"),
    ],
)
def test_bad_status_bracket_and_wind_down_fields(tmp_path: Path, fields: str, needle: str) -> None:
    with pytest.raises(CatalogError, match=needle):
        load_catalog([_one_service(tmp_path, fields)])


def test_size_brackets_and_wind_down_labels() -> None:
    import datetime as dt

    catalog = packaged_catalog()
    small, mid = catalog.service("fireworks-lora-up-to-16b"), catalog.service("fireworks-lora-16b-80b")
    assert small.bracket_label() == "up to 16B" and mid.bracket_label() == "over 16B up to 80B"
    assert small.covers_params(8_030_261_248) and not small.covers_params(16_100_000_000)
    assert mid.covers_params(16_100_000_000) and not mid.covers_params(8_030_261_248)
    assert not mid.covers_params(405_000_000_000)
    assert catalog.service("gpt-4o-mini").bracket_label() is None
    for name in ("together-lora-up-to-16b", "together-lora-17b-69b", "together-lora-70b-100b"):
        assert catalog.service(name).bracket_label() is not None
    gpt = catalog.service("gpt-4o-mini")
    assert gpt.job_creation_ends == dt.date(2027, 1, 6)
    assert "job creation ends 2027-01-06" in (gpt.wind_down_label(dt.date(2026, 12, 2)) or "")
    assert "job creation ended 2027-01-06" in (gpt.wind_down_label(dt.date(2027, 2, 1)) or "")
    assert catalog.service("together-lora-up-to-16b").wind_down_label() is None


def test_stale_entries_are_the_old_ones_oldest_first() -> None:
    import datetime as dt

    from lorabench.cli.catalog import stale_entries

    catalog = packaged_catalog()
    old = stale_entries(catalog, 300, dt.date(2026, 12, 2))
    assert [e["id"] for e in old][:1] in (["codestral"], ["mistral-large-24.11"], ["mistral-nemo"], ["mistral-small"])
    assert {e["id"] for e in old} == {"codestral", "mistral-large-24.11", "mistral-nemo", "mistral-small"}
    assert all(e["age_days"] == 710 and e["price_status"] == "unconfirmed" for e in old)
    assert stale_entries(catalog, 100_000, dt.date(2026, 12, 2)) == []
    everything = stale_entries(catalog, 0, dt.date(2030, 1, 1))
    assert len(everything) == len(catalog.gpu_rates) + len(catalog.services) + len(catalog.references)
