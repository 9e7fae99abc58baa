"""Billing arithmetic: self-hosted GPU-hours x rate, and commercial services' token billing."""

from __future__ import annotations

from dataclasses import dataclass

from lorabench.cost.catalog import ServicePrice

__all__ = [
    "OPENAI_EPOCH_RULE_SOURCE",
    "ServiceBill",
    "openai_default_epochs",
    "self_hosted_cost_usd",
    "service_bill",
]

OPENAI_EPOCH_RULE_SOURCE = (
    "https://cookbook.openai.com/examples/chat_finetuning_data_prep "
    "(TARGET_EPOCHS=3, MIN_TARGET_EXAMPLES=100, MAX_TARGET_EXAMPLES=25000, epochs clamped to 1..25)"
)


def openai_default_epochs(examples: int) -> int:
    """Epochs OpenAI picks when ``n_epochs`` is "auto", following its data-preparation cookbook.

    Start at 3; if examples x 3 < 100 use 100 // examples (at most 25); if examples x 3 > 25,000 use
    25,000 // examples (at least 1).

    Args:
        examples: Training examples in the file (must be >= 1).

    Returns:
        The default number of epochs.

    Raises:
        ValueError: ``examples`` < 1.
    """
    if examples < 1:
        raise ValueError(f"examples must be >= 1, got {examples}")
    epochs = 3
    if examples * epochs < 100:
        epochs = min(25, 100 // examples)
    elif examples * epochs > 25_000:
        epochs = max(1, 25_000 // examples)
    return epochs


@dataclass(frozen=True)
class ServiceBill:
    """What one fine-tuning job costs on a service; ``cost_usd`` None when the price is unknown."""

    billed_tokens: int
    cost_usd: float | None
    min_charge_applied: bool


def service_bill(
    service: ServicePrice, tokens_per_epoch: int, epochs: float, validation_tokens: int = 0
) -> ServiceBill:
    """Bill tokens x epochs (plus validation tokens where the provider bills them) at the catalog price.

    Args:
        service: The catalog entry.
        tokens_per_epoch: Training tokens in the file.
        epochs: Epochs the job runs.
        validation_tokens: Validation tokens per epoch (billed only if the service says so).

    Returns:
        Billed tokens and cost.
    """
    per_epoch = tokens_per_epoch + (validation_tokens if service.validation_tokens_billed else 0)
    billed = round(per_epoch * epochs)
    if service.train_usd_per_mtok is None:
        return ServiceBill(billed, None, False)
    cost = billed / 1e6 * service.train_usd_per_mtok
    if service.min_charge_usd is not None and cost < service.min_charge_usd:
        return ServiceBill(billed, service.min_charge_usd, True)
    return ServiceBill(billed, cost, False)


def self_hosted_cost_usd(hours: float, gpus: int, usd_per_gpu_hour: float) -> float:
    """Wall-clock hours x GPUs x rate (GPUs are billed for the whole wall clock)."""
    return hours * gpus * usd_per_gpu_hour
