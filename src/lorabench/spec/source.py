"""What a config file said beside the RunSpec: keys not honoured (and why), notes, and dataset hints.

Every loader returns a :class:`Translation`; :func:`lorabench.spec.load_spec_source` turns it into a
:class:`LoadedSpec`, which commands print and write into their JSON records so that nothing a user wrote
is dropped without a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lorabench.spec.model import RunSpec

__all__ = [
    "NOT_MODELLED",
    "NO_EFFECT",
    "UNRECOGNISED",
    "ConfigKind",
    "DatasetHint",
    "IgnoreCategory",
    "IgnoredKey",
    "LoadedSpec",
    "Translation",
    "shown",
]

ConfigKind = Literal["lorabench", "axolotl", "llamafactory", "peft"]
IgnoreCategory = Literal["no effect on resources", "affects resources, not modelled", "not recognised"]

NO_EFFECT: IgnoreCategory = "no effect on resources"
NOT_MODELLED: IgnoreCategory = "affects resources, not modelled"
UNRECOGNISED: IgnoreCategory = "not recognised"


def shown(value: Any, limit: int = 60) -> str:
    """A short one-line rendering of a config value for messages."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class IgnoredKey:
    """One key of a config file that does not change the RunSpec."""

    key: str
    value: str
    category: IgnoreCategory
    reason: str

    def line(self) -> str:
        """``key = value: category (reason)``."""
        return f"{self.key} = {self.value}: {self.category} ({self.reason})"

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"key": self.key, "value": self.value, "category": self.category, "reason": self.reason}


@dataclass(frozen=True)
class DatasetHint:
    """A dataset a config file names: a local file ``lorabench run`` may train on, or a hub/registered name."""

    key: str
    reference: str
    path: Path | None = None
    fields: tuple[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key": self.key,
            "reference": self.reference,
            "path": None if self.path is None else str(self.path),
            "fields": None if self.fields is None else list(self.fields),
        }


@dataclass
class Translation:
    """A loader's output: raw RunSpec fields, plus everything it did not turn into a field."""

    raw: dict[str, Any] = field(default_factory=dict)
    ignored: list[IgnoredKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    datasets: list[DatasetHint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ignore(self, key: str, value: Any, category: IgnoreCategory, reason: str) -> None:
        """Record ``key`` as not honoured."""
        self.ignored.append(IgnoredKey(key, shown(value), category, reason))


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and what its config file said that the spec does not carry.

    Attributes:
        spec: The validated RunSpec.
        kind: The detected kind of the config file, or None without a file.
        path: The config file, or None.
        ignored_keys: Keys of the file not honoured, each with its category and reason.
        notes: How values were read (defaults of the source tool, approximations).
        datasets: Datasets the file names.
    """

    spec: RunSpec
    kind: ConfigKind | None = None
    path: Path | None = None
    ignored_keys: tuple[IgnoredKey, ...] = ()
    notes: tuple[str, ...] = ()
    datasets: tuple[DatasetHint, ...] = ()

    @property
    def resource_relevant_ignored(self) -> tuple[IgnoredKey, ...]:
        """Ignored keys that may change memory or time (not modelled, or not recognised)."""
        return tuple(k for k in self.ignored_keys if k.category != NO_EFFECT)

    def source_record(self) -> dict[str, Any]:
        """The JSON-ready ``config_source`` block for records."""
        return {
            "path": None if self.path is None else str(self.path),
            "kind": self.kind,
            "ignored_keys": [k.as_dict() for k in self.ignored_keys],
            "notes": list(self.notes),
            "datasets": [d.as_dict() for d in self.datasets],
        }
