"""Causal-LM encoding with the loss on target tokens only, padding, and batching strategies.

An example is ``bos + context + target + eos``; labels are ``-100`` (ignored by the loss) on bos and the
context and equal the input ids on the target and eos (transformers shifts labels inside the model). Context
and target are tokenized separately, so the labelled tokens decode exactly to the target.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from lorabench.errors import DataError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "IGNORE_INDEX",
    "MEGA_BATCH_FACTOR",
    "BatchStrategy",
    "EncodedExamples",
    "Example",
    "batch_token_counts",
    "collate",
    "encode_examples",
    "make_batches",
    "pad_to_for",
]

IGNORE_INDEX = -100
# Like transformers' group_by_length: examples are sorted by length inside mega-batches of this many batches.
MEGA_BATCH_FACTOR = 50

BatchStrategy = Literal["pad_to_max", "longest", "length_grouped"]
_STRATEGIES: tuple[str, ...] = get_args(BatchStrategy)


@dataclass(frozen=True)
class Example:
    """One encoded training example."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


class EncodedExamples(list[Example]):
    """The encoded examples (a plain list) plus how many records were truncated or dropped."""

    def __init__(self, examples: Sequence[Example] = (), truncated: int = 0, dropped: int = 0) -> None:
        super().__init__(examples)
        self.truncated = truncated
        self.dropped = dropped


def _check_seq_len(seq_len: int) -> None:
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 2:
        raise DataError(f"seq_len must be an integer of at least 2 (got {seq_len!r})")


def encode_examples(
    records: Sequence[Mapping[str, str]], tokenizer: PreTrainedTokenizerBase, seq_len: int
) -> EncodedExamples:
    """Encode ``{"context", "target"}`` records for causal-LM fine-tuning with loss on the target only.

    Each example is ``[bos] + context + target + [eos]`` (no bos when the tokenizer has none). When that is
    longer than ``seq_len`` the context is cut from the left, so the end of the prompt and the whole target
    survive; a record whose bos + target + eos alone exceeds ``seq_len`` is dropped and counted.

    Args:
        records: Records with string ``context`` and ``target`` fields (e.g. from :func:`read_jsonl`).
        tokenizer: A Hugging Face tokenizer with an eos token.
        seq_len: Maximum tokens per example (at least 2).

    Returns:
        The examples in record order, with ``truncated`` and ``dropped`` counts.

    Raises:
        DataError: No records, a record without string ``context``/``target`` (its index is given), a tokenizer
            without an eos token, ``seq_len`` below 2, or every record dropped.
    """
    _check_seq_len(seq_len)
    if not records:
        raise DataError("cannot encode: no records given")
    for index, record in enumerate(records):
        for field in ("context", "target"):
            if not isinstance(record.get(field), str):
                raise DataError(f"record {index}: field {field} is missing or not a string")
    eos = tokenizer.eos_token_id
    if not isinstance(eos, int):
        raise DataError(f"tokenizer {type(tokenizer).__name__} has no eos token; cannot mark where targets end")
    bos = tokenizer.bos_token_id
    prefix = [bos] if isinstance(bos, int) else []
    contexts = tokenizer([r["context"] for r in records], add_special_tokens=False)["input_ids"]
    targets = tokenizer([r["target"] for r in records], add_special_tokens=False)["input_ids"]

    examples: list[Example] = []
    truncated = dropped = 0
    for context, target in zip(contexts, targets, strict=True):
        answer = [*target, eos]
        room = seq_len - len(prefix) - len(answer)
        if room < 0:
            dropped += 1
            continue
        if len(context) > room:
            context = context[len(context) - room :]
            truncated += 1
        masked = len(prefix) + len(context)
        examples.append(Example(input_ids=[*prefix, *context, *answer], labels=[IGNORE_INDEX] * masked + answer))
    if not examples:
        raise DataError(f"all {len(records)} records dropped: every target is longer than seq_len {seq_len}")
    return EncodedExamples(examples, truncated=truncated, dropped=dropped)


def collate(batch: Sequence[Example], pad_id: int, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Right-pad a batch into tensors.

    Args:
        batch: Encoded examples.
        pad_id: Token id written into padding positions of ``input_ids``.
        pad_to: Pad every row to this length (see :func:`pad_to_for`); None pads to the longest example.

    Returns:
        ``input_ids``, ``attention_mask`` (1 on real tokens) and ``labels`` (``-100`` on padding), each an
        int64 tensor of shape ``(len(batch), length)``.

    Raises:
        DataError: An empty batch, or an example longer than ``pad_to``.
    """
    import torch

    if not batch:
        raise DataError("cannot collate an empty batch")
    longest = max(len(example) for example in batch)
    length = longest if pad_to is None else pad_to
    if longest > length:
        raise DataError(f"cannot pad to {pad_to}: the batch holds an example of {longest} tokens")
    input_ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), length), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def batch_token_counts(batch_tensors: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """Count the token positions a collated batch occupies, with and without padding.

    Args:
        batch_tensors: A batch from :func:`collate` (``input_ids`` and ``attention_mask``).

    Returns:
        ``(padded_tokens, nonpad_tokens)``: all positions (batch size x padded length), which is what the
        model computes on, and the real tokens among them (the attention mask's sum).
    """
    return int(batch_tensors["input_ids"].numel()), int(batch_tensors["attention_mask"].sum().item())


def pad_to_for(strategy: BatchStrategy, seq_len: int) -> int | None:
    """The ``pad_to`` argument of :func:`collate` for a batching strategy.

    Returns:
        ``seq_len`` for ``pad_to_max`` (every batch is padded to the full sequence length), else None.

    Raises:
        DataError: Unknown strategy.
    """
    _check_strategy(strategy)
    return seq_len if strategy == "pad_to_max" else None


def _check_strategy(strategy: str) -> None:
    if strategy not in _STRATEGIES:
        raise DataError(f"unknown batching strategy {strategy!r} (choose one of: {', '.join(_STRATEGIES)})")


def make_batches(
    examples: Sequence[Example], batch_size: int, strategy: BatchStrategy, seq_len: int, seed: int = 0
) -> list[list[Example]]:
    """Split examples into batches in a seeded random order.

    ``pad_to_max`` and ``longest`` shuffle the examples and cut the order into batches (they differ only in
    how :func:`collate` pads; see :func:`pad_to_for`). ``length_grouped`` works like transformers'
    ``group_by_length``: it shuffles, sorts each mega-batch of ``50 x batch_size`` examples by length
    (longest first), cuts it into batches, then shuffles the batches, so each batch holds similar lengths.
    The last batch may be smaller.

    Args:
        examples: Encoded examples, none longer than ``seq_len``.
        batch_size: Examples per batch (positive).
        strategy: ``pad_to_max``, ``longest`` or ``length_grouped``.
        seq_len: The sequence length the examples were encoded for.
        seed: Random seed; the same inputs and seed always give the same batches.

    Returns:
        The batches; together they hold every example exactly once.

    Raises:
        DataError: No examples, a non-positive batch size, an unknown strategy, or an example longer than
            ``seq_len``.
    """
    _check_strategy(strategy)
    _check_seq_len(seq_len)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise DataError(f"batch_size must be a positive integer (got {batch_size!r})")
    if not examples:
        raise DataError("cannot batch: no examples given")
    for index, example in enumerate(examples):
        if len(example) > seq_len:
            raise DataError(f"example {index} has {len(example)} tokens, more than seq_len {seq_len}")
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    if strategy == "length_grouped":
        mega = MEGA_BATCH_FACTOR * batch_size
        grouped: list[int] = []
        for start in range(0, len(order), mega):
            grouped.extend(sorted(order[start : start + mega], key=lambda i: len(examples[i]), reverse=True))
        chunks = _chunk(grouped, batch_size)
        rng.shuffle(chunks)
    else:
        chunks = _chunk(order, batch_size)
    return [[examples[i] for i in chunk] for chunk in chunks]


def _chunk(order: list[int], size: int) -> list[list[int]]:
    return [order[start : start + size] for start in range(0, len(order), size)]
