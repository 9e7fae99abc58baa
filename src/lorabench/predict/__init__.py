"""Predictions made before a run: parameters, weight bytes (and later memory and time)."""

from lorabench.predict.estimate import ESTIMATE_SCHEMA, ESTIMATE_SCHEMA_VERSION, estimate, estimate_record
from lorabench.predict.memory.params import BITS, Accounting, Component, account, modules_kept_unquantized
from lorabench.predict.memory.storage import LinearStorage, linear_storage

__all__ = [
    "BITS",
    "ESTIMATE_SCHEMA",
    "ESTIMATE_SCHEMA_VERSION",
    "Accounting",
    "Component",
    "LinearStorage",
    "account",
    "estimate",
    "estimate_record",
    "linear_storage",
    "modules_kept_unquantized",
]
