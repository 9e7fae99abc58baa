"""A dataset as the trainers see it: read, its format detected or given, rendered and tokenized.

Sources: any supported file or folder, a cached dataset name, or a synthetic task.

This is what ``lorabench run``, ``sweep``, ``data`` and ``cost`` share, so they count the same tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lorabench.data.formats import (
    FORMATS,
    DataFormat,
    Rendered,
    detect_format,
    parse_fields,
    render_records,
    required_columns,
)
from lorabench.data.read import read_dataset
from lorabench.data.synthetic import synthetic_dataset
from lorabench.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["SYNTHETIC_PREFIX", "LoadedDataset", "load_dataset_records", "training_texts"]

SYNTHETIC_PREFIX = "synthetic:"
_OPTIONAL = {"alpaca": ("input",)}


@dataclass(frozen=True)
class LoadedDataset:
    """The rows of a dataset and how they will be read.

    Attributes:
        source: The path, cached name, or ``synthetic:TASK``.
        records: The rows as read.
        data_format: The format used.
        detected: True when the format was found from the columns, False when given.
        fields: Column renaming (canonical field -> column).
        unused_columns: Columns the format does not read (reported, never trained on).
        lines: The line of each record in a JSON Lines file (for messages), else None.
    """

    source: str
    records: list[dict[str, Any]]
    data_format: DataFormat
    detected: bool
    fields: dict[str, str] = field(default_factory=dict)
    unused_columns: tuple[str, ...] = ()
    lines: tuple[int, ...] | None = None

    def render(self, tokenizer: PreTrainedTokenizerBase | None = None) -> tuple[list[Rendered], str | None]:
        """Render every record (see :func:`lorabench.data.formats.render_records`)."""
        return render_records(self.records, self.data_format, self.fields, tokenizer, self.source, self.lines)

    def describe(self) -> dict[str, Any]:
        """What was read and how, for records and JSON output."""
        return {
            "dataset": self.source,
            "format": self.data_format,
            "format_detected": self.detected,
            "fields": dict(self.fields),
            "unused_columns": list(self.unused_columns),
            "records": len(self.records),
        }


def load_dataset_records(
    source: str,
    data_format: str | None = None,
    fields: str | Mapping[str, str] | None = None,
    examples: int = 256,
    seed: int = 0,
) -> LoadedDataset:
    """Read a dataset and settle its format.

    Args:
        source: A dataset file or folder, a dataset name in the local Hugging Face cache, or ``synthetic:TASK``
            (``examples`` records from :func:`lorabench.data.synthetic.synthetic_dataset`).
        data_format: One of :data:`lorabench.data.formats.FORMATS`; None detects it from the columns.
        fields: Column renaming, ``"output=answer,instruction=question"`` or a mapping.
        examples: Records of a synthetic dataset.
        seed: Seed of a synthetic dataset.

    Returns:
        The rows, their format and the columns left unread.

    Raises:
        DataError: Unreadable dataset, unknown format, or columns that fit no format (or not the one given).
    """
    mapping = parse_fields(fields)
    lines = None
    if source.startswith(SYNTHETIC_PREFIX):
        records: list[dict[str, Any]] = list(synthetic_dataset(source.removeprefix(SYNTHETIC_PREFIX), examples, seed))
    else:
        records, lines = read_dataset(source)
    columns: list[str] = []
    for record in records:
        if isinstance(record, dict):
            columns += [c for c in record if c not in columns]
    if data_format is None:
        chosen = detect_format(columns, mapping)
    elif data_format not in FORMATS:
        raise DataError(f"--format: unknown format {data_format!r} (choose one of: {', '.join(FORMATS)})")
    else:
        chosen = data_format  # type: ignore[assignment]
        missing = [c for c in required_columns(chosen, mapping) if c not in columns]
        if missing:
            raise DataError(
                f"{source}: format {chosen} needs column(s) {', '.join(missing)} "
                f"(columns: {', '.join(columns) or '(none)'}); map them with --fields"
            )
    read = set(required_columns(chosen, mapping)) | {mapping.get(f, f) for f in _OPTIONAL.get(chosen, ())}
    return LoadedDataset(
        source=source,
        records=records,
        data_format=chosen,
        detected=data_format is None,
        fields=mapping,
        unused_columns=tuple(c for c in columns if c not in read),
        lines=tuple(lines) if lines is not None else None,
    )


def training_texts(rendered: Sequence[Rendered], limit_chars: int) -> list[str]:
    """The rendered texts, each cut at ``limit_chars`` (to train a fallback tokenizer in bounded time)."""
    return [r.text[:limit_chars] for r in rendered]
