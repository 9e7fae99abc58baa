"""Count a dataset's training tokens: exactly with a local tokenizer, or an estimate that says so."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lorabench.data import read_jsonl
from lorabench.errors import DataError

__all__ = ["CHARS_PER_TOKEN", "TokenCount", "count_tokens"]

# OpenAI's rule of thumb for English text ("1 token ~= 4 characters"); used only when no tokenizer is at hand.
CHARS_PER_TOKEN = 4.0


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


def _percentile(sorted_values: Sequence[int], q: float) -> int:
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def count_tokens(
    path: Path, tokenizer: Path | None = None, fields: Sequence[str] = ("context", "target")
) -> TokenCount:
    """Count the tokens of every example (the chosen fields concatenated).

    Args:
        path: A JSONL dataset.
        tokenizer: A local directory holding a Hugging Face tokenizer; without one, tokens are estimated as
            characters / 4 and labelled as an estimate.
        fields: Which fields of each record make up the training text.

    Returns:
        Totals, the method used and the per-example distribution.

    Raises:
        DataError: The dataset is missing, empty or malformed, or the tokenizer cannot be loaded.
    """
    records = read_jsonl(path, fields)
    texts = ["".join(r[f] for f in fields) for r in records]
    if tokenizer is not None:
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(tokenizer), local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{tokenizer}: cannot load a tokenizer from it ({exc})") from None
        counts = [len(ids) for ids in tok(texts, add_special_tokens=True)["input_ids"]]
        method, exact = f"exact: tokenizer at {tokenizer}", True
    else:
        counts = [max(1, math.ceil(len(t) / CHARS_PER_TOKEN)) for t in texts]
        method, exact = "estimate: characters / 4 (OpenAI's rule of thumb for English; no tokenizer given)", False
    ordered = sorted(counts)
    return TokenCount(
        path=str(path),
        examples=len(counts),
        total_tokens=sum(counts),
        method=method,
        exact=exact,
        min_tokens=ordered[0],
        mean_tokens=sum(counts) / len(counts),
        p50_tokens=_percentile(ordered, 0.50),
        p90_tokens=_percentile(ordered, 0.90),
        p99_tokens=_percentile(ordered, 0.99),
        max_tokens=ordered[-1],
    )
