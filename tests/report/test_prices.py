from __future__ import annotations

from typing import Any

from lorabench.cost.scenario import CostRow
from lorabench.report.costs import prices_table, report_cost_table, saving_text
from lorabench.report.prices import collect_price_sources

from . import synthetic as syn

OPENAI = "https://platform.openai.com/docs/pricing"


def service_row(name: str, **prov: Any) -> CostRow:
    cost = {"kind": "catalog", "entry": "gpt-4o-mini", "prices_checked": "2026-11-28", "source": OPENAI}
    return CostRow.model_validate(
        {
            "name": name,
            "kind": "service",
            "cost_usd": 312.0,
            "epochs": 4.0,
            "provenance": {"epochs": {"kind": "input"}, "cost_usd": cost | {"train_usd_per_mtok": 3.0} | prov},
        }
    )


def test_rows_cite_one_numbered_source_per_dated_entry() -> None:
    rows = syn.cost_rows()
    sources, cited = collect_price_sources(rows)
    assert [s.entry for s in sources] == [
        "bloomberggpt",
        "aws-p4d-a100-40gb",
        "gemini-2.0-flash-lite-finlora",
        "gpt-4o-mini",
    ]
    assert all(s.prices_checked and s.source and s.source.startswith("https://") for s in sources)
    gemini = sources[2]  # its time and its published cost are one entry, one reference
    assert (gemini.what, gemini.price_usd, gemini.price_per) == ("published cost", 162.02, "job")
    assert cited[1].display() == "time: [3]; cost: [3]"
    default = next(
        c for row, c in zip(rows, cited, strict=True) if row.name.startswith("GPT-4o-mini (provider default")
    )
    assert default.display() == "epochs: rule; cost: [4]; tokens: input"


def test_unconfirmed_prices_and_wind_downs_are_shown_as_such() -> None:
    rows = [
        service_row(
            "GPT-4o-mini",
            price_status="unconfirmed",
            secondary_source="https://example.org/copy-of-the-price",
            job_creation_ends="2027-01-06",
            wind_down_note="OpenAI is winding down self-serve fine-tuning",
            wind_down_source="https://example.org/deprecations",
        )
    ]
    sources, cited = collect_price_sources(rows)
    (source,) = sources
    assert (source.status, source.secondary_source) == ("unconfirmed", "https://example.org/copy-of-the-price")
    assert source.checked_display == "seen 2026-11-28 (unconfirmed)"  # never shown as a confirmation date
    assert source.wind_down == "new fine-tuning jobs end 2027-01-06: OpenAI is winding down self-serve fine-tuning"
    table = prices_table(sources)
    assert table is not None
    assert table.rows[0][4:6] == [
        "seen 2026-11-28 (unconfirmed)",
        "unconfirmed (read on https://example.org/copy-of-the-price)",
    ]
    assert table.rows[0][7].startswith("new fine-tuning jobs end 2027-01-06")
    cost = report_cost_table(rows, cited, 1)
    assert cost is not None
    assert cost.rows[0][-1] == "epochs: input; cost: [1]; winding down: new fine-tuning jobs end 2027-01-06"


def test_an_availability_figure_is_a_notice_not_a_numbered_price() -> None:
    row = service_row("GPT-4o-mini", job_creation_ends="2027-01-06", wind_down_note="winding down")
    availability = {"kind": "catalog", "job_creation_ends": "2027-01-06", "note": "winding down", "source": OPENAI}
    row.provenance["availability"] = availability
    sources, cited = collect_price_sources([row])
    assert [s.entry for s in sources] == ["gpt-4o-mini"]
    assert cited[0].notices == ("new fine-tuning jobs end 2027-01-06",)  # once, though two figures say it
    assert cited[0].display() == "epochs: input; cost: [1]"


def test_status_spellings_and_a_missing_url() -> None:
    confirmed = collect_price_sources([service_row("a", confirmed=True)])[0][0]
    assert confirmed.status == "confirmed"
    stated = collect_price_sources([service_row("b", price_status="confirmed")])[0][0]
    assert stated.status == "confirmed"
    no_url = collect_price_sources([service_row("c", source="not a url")])[0][0]
    assert (no_url.status, no_url.source) == ("unconfirmed", None)


def test_saving_says_what_the_percentage_is() -> None:
    def row(**fields: Any) -> CostRow:
        return CostRow.model_validate({"name": "x", "kind": "service", "cost_usd": 1.0} | fields)

    assert saving_text(row(reduction_pct=94.84, x_vs_cheapest_self_hosted=19.4)) == "94.8%"
    assert saving_text(row(reduction_pct=99.99968, x_vs_cheapest_self_hosted=3e5)) == "99.9997%"
    assert saving_text(row(kind="self_hosted", reduction_pct=0.0, x_vs_cheapest_self_hosted=1.0)) == "cheapest"
    # a service cheaper than every self-hosted row: the LoRA method saves nothing
    assert saving_text(row(reduction_pct=-100.0, x_vs_cheapest_self_hosted=0.5)) == "none (this row costs 50.0% less)"
    assert saving_text(row()) == "n/a"
