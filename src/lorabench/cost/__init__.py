"""Cost: the dated, sourced price catalog, token counting, billing rules and cost scenarios."""

from lorabench.cost.catalog import Catalog, GpuRate, Reference, ServicePrice, load_catalog, packaged_catalog
from lorabench.cost.pricing import ServiceBill, openai_default_epochs, self_hosted_cost_usd, service_bill
from lorabench.cost.scenario import CostRow, Scenario, evaluate, load_scenario
from lorabench.cost.table import cost_table
from lorabench.cost.tokens import TokenCount, count_tokens

__all__ = [
    "Catalog",
    "CostRow",
    "GpuRate",
    "Reference",
    "Scenario",
    "ServiceBill",
    "ServicePrice",
    "TokenCount",
    "cost_table",
    "count_tokens",
    "evaluate",
    "load_catalog",
    "load_scenario",
    "openai_default_epochs",
    "packaged_catalog",
    "self_hosted_cost_usd",
    "service_bill",
]
