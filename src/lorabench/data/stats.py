"""A dataset's true size for a run, from the same rendering and batching the runner uses.

Examples, tokens per epoch, the length distribution, truncation, and the padding and steps per epoch under each
batching mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from lorabench.data.dataset import LoadedDataset, training_texts
from lorabench.data.encode import (
    IGNORE_INDEX,
    MAX_CHARS_PER_TOKEN,
    BatchStrategy,
    EncodedExamples,
    encode_rendered,
    make_batches,
    pad_to_for,
)
from lorabench.data.tokenizer import build_tokenizer, load_tokenizer
from lorabench.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["DATA_RECORD_KIND", "FALLBACK_VOCAB", "choose_tokenizer", "dataset_stats", "job_tokens", "percentile"]

DATA_RECORD_KIND = "lorabench.data"
# Vocabulary of the fallback BPE when no model says otherwise (``lorabench run`` caps a model's vocab at this too).
FALLBACK_VOCAB = 32_000
_SHOWN_INDICES = 20


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """The nearest-rank percentile ``q`` (0-1) of sorted values."""
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def choose_tokenizer(
    loaded: LoadedDataset, tokenizer_dir: Path | None, vocab_size: int | None, seq_len: int
) -> tuple[PreTrainedTokenizerBase, str, bool]:
    """A local tokenizer, else the byte-level BPE ``lorabench run`` trains on the dataset without one.

    Returns:
        The tokenizer, how it was chosen (a sentence naming the fallback when there is one), and whether the
        counts are the model's own (a local tokenizer).

    Raises:
        DataError: ``tokenizer_dir`` given but holds no loadable tokenizer.
    """
    if tokenizer_dir is not None:
        local = load_tokenizer(tokenizer_dir)
        if local is None:
            raise DataError(f"{tokenizer_dir}: no tokenizer there (tokenizer.json, tokenizer.model, vocab.json ...)")
        return local, f"exact: the local tokenizer at {tokenizer_dir}", True
    rendered, _ = loaded.render(None)
    vocab = min(vocab_size, FALLBACK_VOCAB) if vocab_size else FALLBACK_VOCAB
    built = build_tokenizer(training_texts(rendered, MAX_CHARS_PER_TOKEN * seq_len), vocab_size=vocab)
    how = (
        f"fallback: byte-level BPE trained offline on this dataset (vocab {len(built)}), as `lorabench run` "
        "uses without a local tokenizer; no local tokenizer, so these counts are not the model's own"
    )
    return built, how, False


def _lengths(values: Sequence[int]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "mean": sum(ordered) / len(ordered),
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
    }


def _batching(
    examples: EncodedExamples, micro_batch: int, grad_accum: int, world: int, seq_len: int, seed: int
) -> dict[str, dict[str, Any]]:
    modes: dict[str, dict[str, Any]] = {}
    for mode in get_args(BatchStrategy):
        strategy: BatchStrategy = mode
        batches = make_batches(examples, micro_batch, strategy, seq_len, seed)
        pad_to = pad_to_for(strategy, seq_len)
        padded = sum(len(b) * (pad_to or max(len(e) for e in b)) for b in batches)
        nonpad = sum(len(e) for b in batches for e in b)
        per_rank = math.ceil(len(batches) / world)
        modes[mode] = {
            "batches": len(batches),
            "rows": sum(len(b) for b in batches),
            "padded_tokens": padded,
            "nonpad_tokens": nonpad,
            "padding_tokens": padded - nonpad,
            "padding_waste_pct": 100.0 * (padded - nonpad) / padded if padded else 0.0,
            "steps_per_epoch": math.ceil(per_rank / grad_accum),
        }
    return modes


def dataset_stats(
    loaded: LoadedDataset,
    tokenizer: PreTrainedTokenizerBase,
    tokenizer_how: str,
    exact: bool,
    seq_len: int,
    micro_batch: int,
    grad_accum: int = 1,
    world: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """The dataset's record for a run shape (what ``lorabench data --json`` prints).

    Args:
        loaded: The dataset (:func:`lorabench.data.dataset.load_dataset_records`).
        tokenizer: The tokenizer to count with (:func:`choose_tokenizer`).
        tokenizer_how: How the tokenizer was chosen (copied into the record).
        exact: Whether the tokenizer is the model's own.
        seq_len: The run's sequence length (truncation, pad_to_max and packing rows).
        micro_batch: Rows per micro-batch.
        grad_accum: Micro-batches per optimizer step.
        world: Data-parallel processes (each takes every ``world``-th batch).
        seed: Seed of the data order (as ``lorabench run``).

    Returns:
        ``kind``, the dataset's description, tokenizer, token totals, the length distribution before truncation,
        truncation, and per batching mode the padded and real tokens, padding waste and steps per epoch.

    Raises:
        DataError: A record that does not fit its format, or every record dropped.
    """
    rendered, template = loaded.render(tokenizer if exact else None)
    examples = encode_rendered(rendered, tokenizer, seq_len)
    trainable = sum(sum(1 for label in e.labels if label != IGNORE_INDEX) for e in examples)
    tokens = sum(len(e) for e in examples)
    return {
        "kind": DATA_RECORD_KIND,
        **loaded.describe(),
        "tokenizer": tokenizer_how,
        "tokens_exact": exact,
        "chat_template": template,
        "seq_len": seq_len,
        "micro_batch": micro_batch,
        "grad_accum": grad_accum,
        "world_size": world,
        "examples": len(examples),
        "tokens_per_epoch": tokens,
        "trainable_tokens_per_epoch": trainable,
        "tokens_per_epoch_untruncated": sum(examples.full_lengths),
        "length_tokens": _lengths(examples.full_lengths),
        "truncated": examples.truncated,
        "truncated_records": examples.truncated_records[:_SHOWN_INDICES],
        "cut_at_char_bound": examples.capped,
        "char_bound": MAX_CHARS_PER_TOKEN * seq_len,
        "dropped": examples.dropped,
        "dropped_records": examples.dropped_records[:_SHOWN_INDICES],
        "batching": _batching(examples, micro_batch, grad_accum, world, seq_len, seed),
    }


def job_tokens(value: str, seq_len: int, micro_batch: int, epochs: float, model: str | None = None) -> int:
    """Tokens a whole job processes, from a count, a ``lorabench data --json`` record, or a dataset.

    A record gives its ``tokens_per_epoch`` (after truncation at its sequence length); a dataset is counted as
    :func:`dataset_stats` does for ``seq_len`` (the model's local tokenizer, else the named fallback). Either is
    multiplied by ``epochs``.

    Raises:
        DataError: Not a positive integer, a readable data record or a readable dataset.
    """
    text = value.strip().replace("_", "").replace(",", "")
    if text.lstrip("+-").isdigit():
        if int(text) <= 0:
            raise DataError(f"--tokens: must be a positive number of tokens, a data record or a dataset (got {value})")
        return int(text)
    from lorabench.cost.tokens import read_data_record
    from lorabench.data.dataset import load_dataset_records

    record = read_data_record(Path(value))
    if record is None:
        loaded = load_dataset_records(value)
        tokenizer_dir = None
        vocab = None
        if model is not None:
            from lorabench.models import resolve_model

            resolved = resolve_model(model)
            if resolved.local_dir is not None and load_tokenizer(resolved.local_dir) is not None:
                tokenizer_dir = resolved.local_dir
            vocab = int(getattr(resolved.config, "vocab_size", 0) or 0) or None
        tok, how, exact = choose_tokenizer(loaded, tokenizer_dir, vocab, seq_len)
        record = dataset_stats(loaded, tok, how, exact, seq_len, micro_batch)
    return max(1, round(int(record["tokens_per_epoch"]) * epochs))
