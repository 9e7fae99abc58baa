"""Count a dataset's billed tokens: its records as rendered for training, exact or a labelled estimate.

Chat records go through the tokenizer's chat template; without a local tokenizer the count is characters / 4
and says so. A ``lorabench data --json`` record can stand in for the dataset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorabench.errors import DataError

__all__ = ["CHARS_PER_TOKEN", "TokenCount", "count_tokens", "read_data_record"]

# OpenAI's rule of thumb for English text ("1 token ~= 4 characters"); used only when no tokenizer is at hand.
CHARS_PER_TOKEN = 4.0
_DEFAULT_FIELDS = ("context", "target")
_RECORD_BYTES = 16 * 2**20
# Without a per-example cap every token is counted; the bound keeps encoding finite for absurd records.
_UNCAPPED = 10**7


@dataclass(frozen=True)
class TokenCount:
    """Tokens in one dataset, how they were counted, and their distribution per example."""

    path: str
    examples: int
    total_tokens: int
    method: str
    exact: bool
    min_tokens: int
    mean_tokens: float
    p50_tokens: int
    p90_tokens: int
    p99_tokens: int
    max_tokens: int
    data_format: str | None = None
    capped_examples: int = 0


def _percentile(sorted_values: Sequence[int], q: float) -> int:
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def read_data_record(path: Path) -> dict[str, Any] | None:
    """The ``lorabench data --json`` record in ``path``, or None when the file is not one.

    Raises:
        DataError: The file is a data record but lacks its token figures.
    """
    if path.suffix.lower() != ".json" or not path.is_file() or path.stat().st_size > _RECORD_BYTES:
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    from lorabench.data.stats import DATA_RECORD_KIND

    if not isinstance(obj, dict) or obj.get("kind") != DATA_RECORD_KIND:
        return None
    for key in ("tokens_per_epoch", "tokens_per_epoch_untruncated", "examples", "length_tokens"):
        if key not in obj:
            raise DataError(f"{path}: data record lacks {key} (write it again with `lorabench data --json`)")
    return obj


def _from_record(path: Path, record: Mapping[str, Any], cap: int | None) -> TokenCount:
    lengths = record["length_tokens"]
    total = int(record["tokens_per_epoch_untruncated"])
    capped = 0
    if cap is not None and int(lengths["max"]) > cap:
        raise DataError(
            f"{path}: a data record holds no per-example lengths to cap at {cap} tokens; count the dataset instead"
        )
    exact = bool(record.get("tokens_exact"))
    return TokenCount(
        path=str(path),
        examples=int(record["records"]) if "records" in record else int(record["examples"]),
        total_tokens=total,
        method=f"from data record {path} ({record.get('tokenizer')}); tokens before truncation at seq_len",
        exact=exact,
        min_tokens=int(lengths["min"]),
        mean_tokens=float(lengths["mean"]),
        p50_tokens=int(lengths["p50"]),
        p90_tokens=int(lengths["p90"]),
        p99_tokens=int(lengths["p99"]),
        max_tokens=int(lengths["max"]),
        data_format=record.get("format"),
        capped_examples=capped,
    )


def count_tokens(
    path: Path,
    tokenizer: Path | None = None,
    fields: Sequence[str] = _DEFAULT_FIELDS,
    *,
    data_format: str | None = None,
    columns: str | Mapping[str, str] | None = None,
    max_tokens_per_example: int | None = None,
) -> TokenCount:
    """Count the tokens of every example as rendered for training (what a fine-tuning service bills).

    Args:
        path: A dataset (any file or folder :func:`lorabench.data.read.read_records` reads), or the JSON record
            of ``lorabench data --json``.
        tokenizer: A local directory holding a Hugging Face tokenizer; chat records are rendered with its chat
            template. Without one, tokens are estimated as characters / 4 of the rendered text and labelled so.
        fields: Legacy: flat fields concatenated as the training text. The default means "detect the format".
        data_format: The dataset's format (default: detected from the columns).
        columns: Column renaming for the format (``"output=answer"``).
        max_tokens_per_example: Count at most this many tokens per example (a service's per-example cap).

    Returns:
        Totals, the method used and the per-example distribution.

    Raises:
        DataError: The dataset is missing, empty or malformed, or the tokenizer cannot be loaded.
    """
    from lorabench.data.dataset import load_dataset_records
    from lorabench.data.encode import MAX_CHARS_PER_TOKEN, encode_rendered
    from lorabench.data.formats import Rendered
    from lorabench.data.tokenizer import load_tokenizer

    if max_tokens_per_example is not None and max_tokens_per_example < 2:
        raise DataError(f"max_tokens_per_example must be at least 2 (got {max_tokens_per_example})")
    record = read_data_record(path)
    if record is not None:
        return _from_record(path, record, max_tokens_per_example)
    cap = max_tokens_per_example or _UNCAPPED
    tok = None
    if tokenizer is not None:
        tok = load_tokenizer(tokenizer)
        if tok is None:
            raise DataError(f"{tokenizer}: cannot load a tokenizer from it (no tokenizer files)")
    if tuple(fields) != _DEFAULT_FIELDS and data_format is None:
        loaded = load_dataset_records(str(path), "text", {"text": fields[0]}) if fields else None
        rows = loaded.records if loaded is not None else []
        for index, row in enumerate(rows):
            for f in fields:
                if not isinstance(row.get(f), str):
                    raise DataError(f"{path}: record {index}: field {f} is missing or not a string")
        rendered = [Rendered(((("".join(row[f] for f in fields)), True),), keep_end=False) for row in rows]
        kind = "fields " + "+".join(fields)
    else:
        loaded = load_dataset_records(str(path), data_format, columns)
        rendered, _ = loaded.render(tok)
        kind = f"format {loaded.data_format}"
    if not rendered:
        raise DataError(f"{path}: dataset has no records")
    if tok is not None:
        limit = MAX_CHARS_PER_TOKEN * cap
        full = encode_rendered(rendered, tok, _UNCAPPED, char_limit=limit).full_lengths
        method, exact = f"exact: tokenizer at {tokenizer}, records rendered as {kind}", True
    else:
        limit = MAX_CHARS_PER_TOKEN * cap
        full = [max(1, math.ceil(min(len(r.text), limit) / CHARS_PER_TOKEN)) for r in rendered]
        method, exact = (
            f"estimate: characters / 4 of the records rendered as {kind} (OpenAI's rule of thumb for English; "
            "no tokenizer given)",
            False,
        )
    counts = [min(n, cap) for n in full]
    ordered = sorted(counts)
    return TokenCount(
        path=str(path),
        examples=len(counts),
        total_tokens=sum(counts),
        method=method + (f"; at most {cap:,} tokens per example" if max_tokens_per_example else ""),
        exact=exact,
        min_tokens=ordered[0],
        mean_tokens=sum(counts) / len(counts),
        p50_tokens=_percentile(ordered, 0.50),
        p90_tokens=_percentile(ordered, 0.90),
        p99_tokens=_percentile(ordered, 0.99),
        max_tokens=ordered[-1],
        data_format=None if tuple(fields) != _DEFAULT_FIELDS and data_format is None else kind.split()[-1],
        capped_examples=sum(1 for n in full if n > cap),
    )
