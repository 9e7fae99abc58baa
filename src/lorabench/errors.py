"""The exception hierarchy: one root, one subclass per kind of problem.

Every error a user can cause (a bad flag, a malformed file, an unknown model) is a
:class:`LorabenchError`. The CLI prints its message as one line on stderr and exits with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "ConfigError",
    "DataError",
    "LorabenchError",
    "MeasurementError",
    "ModelError",
]


class LorabenchError(Exception):
    """Root of every expected lorabench error; its message is meant for the user."""


class ConfigError(LorabenchError):
    """A run spec, config file or command-line value is invalid."""


class ModelError(LorabenchError):
    """A model cannot be resolved, or a spec does not fit its architecture."""


class DataError(LorabenchError):
    """A dataset file is missing, empty or malformed."""


class CatalogError(LorabenchError):
    """A catalog file (architectures, GPUs, prices) is invalid or lacks an entry."""


class MeasurementError(LorabenchError):
    """A measurement could not be taken or recorded."""
