from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorabench.cost import ServicePrice, openai_default_epochs, self_hosted_cost_usd, service_bill


def _service(**kw: object) -> ServicePrice:
    base: dict[str, object] = {
        "id": "svc",
        "display_name": "Svc",
        "train_usd_per_mtok": 3.0,
        "prices_checked": dt.date(2026, 11, 28),
        "source": "https://example.com/pricing",
    }
    return ServicePrice.model_validate(base | kw)


@pytest.mark.parametrize(
    ("examples", "epochs"),
    [
        (1, 25),
        (3, 25),
        (4, 25),
        (5, 20),
        (10, 10),
        (33, 3),
        (34, 3),
        (100, 3),
        (8333, 3),
        (8334, 2),
        (12_500, 2),
        (12_501, 1),
        (167_000, 1),
    ],
)
def test_openai_default_epoch_rule(examples: int, epochs: int) -> None:
    assert openai_default_epochs(examples) == epochs


@given(st.integers(1, 10**7))
def test_default_epochs_always_in_range(examples: int) -> None:
    assert 1 <= openai_default_epochs(examples) <= 25


def test_default_epochs_rejects_empty() -> None:
    with pytest.raises(ValueError, match="examples"):
        openai_default_epochs(0)


def test_seed_gpt_4o_mini_bill() -> None:
    bill = service_bill(_service(), 26_000_000, 4)
    assert bill.billed_tokens == 104_000_000
    assert bill.cost_usd == pytest.approx(312.00)
    # with OpenAI's own default for ~167k examples (1 epoch)
    assert service_bill(_service(), 26_000_000, openai_default_epochs(167_000)).cost_usd == pytest.approx(78.00)


def test_validation_tokens_billed_only_where_the_provider_bills_them() -> None:
    free = service_bill(_service(validation_tokens_billed=False), 1_000_000, 2, validation_tokens=500_000)
    billed = service_bill(_service(validation_tokens_billed=True), 1_000_000, 2, validation_tokens=500_000)
    assert free.billed_tokens == 2_000_000
    assert billed.billed_tokens == 3_000_000


def test_unknown_price_gives_unknown_cost_not_zero() -> None:
    bill = service_bill(_service(train_usd_per_mtok=None), 1_000_000, 1)
    assert bill.cost_usd is None
    assert bill.billed_tokens == 1_000_000


def test_minimum_charge() -> None:
    bill = service_bill(_service(min_charge_usd=5.0), 1000, 1)
    assert bill.cost_usd == 5.0
    assert bill.min_charge_applied


@pytest.mark.parametrize(("hours", "usd"), [(14.9, 15.50), (14.1, 14.66), (15.9, 16.54), (14.5, 15.08)])
def test_seed_self_hosted_costs(hours: float, usd: float) -> None:
    assert round(self_hosted_cost_usd(hours, 4, 0.26), 2) == usd
