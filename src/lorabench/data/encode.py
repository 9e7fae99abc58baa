"""Causal-LM encoding with the loss on trainable segments only, padding, packing and batching strategies.

A FinLoRA example is ``bos + context + target + eos``; labels are ``-100`` (ignored by the loss) on bos and the
context and equal the input ids on the target and eos (transformers shifts labels inside the model). Each
segment of a rendered record (:mod:`lorabench.data.formats`) is tokenized separately, so the labelled tokens
decode exactly to the trainable text.

Before tokenizing, a segment longer than :data:`MAX_CHARS_PER_TOKEN` x ``seq_len`` characters is cut (the end of
a prompt is kept, the start of anything else): no token covers that many characters in the tokenizers
lorabench meets, so the cut text still holds more than ``seq_len`` tokens, and time and memory stay bounded by
the sequence length even for a record of tens of megabytes. Such a record is counted as truncated.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from lorabench.errors import DataError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from lorabench.data.formats import Rendered

__all__ = [
    "IGNORE_INDEX",
    "MAX_CHARS_PER_TOKEN",
    "MEGA_BATCH_FACTOR",
    "BatchStrategy",
    "EncodedExamples",
    "Example",
    "batch_token_counts",
    "collate",
    "encode_examples",
    "encode_rendered",
    "make_batches",
    "model_inputs",
    "pack_examples",
    "pad_to_for",
]

IGNORE_INDEX = -100
# Like transformers' group_by_length: examples are sorted by length inside mega-batches of this many batches.
MEGA_BATCH_FACTOR = 50

# A segment is cut at this many characters per token of seq_len before tokenizing (see the module docstring).
MAX_CHARS_PER_TOKEN = 64

BatchStrategy = Literal["pad_to_max", "longest", "length_grouped", "packed"]
_STRATEGIES: tuple[str, ...] = get_args(BatchStrategy)


@dataclass(frozen=True)
class Example:
    """One encoded training example, or one packed row of several (``lengths`` gives each one's tokens)."""

    input_ids: list[int]
    labels: list[int]
    lengths: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


class EncodedExamples(list[Example]):
    """The encoded examples (a plain list) plus how many records were truncated or dropped.

    ``full_lengths`` holds every record's tokens before truncation (dropped ones included; a record cut at the
    character bound counts what was left, a lower bound), ``capped`` how many were cut at that bound, and
    ``truncated_records`` / ``dropped_records`` the indices of those records.
    """

    def __init__(
        self,
        examples: Sequence[Example] = (),
        truncated: int = 0,
        dropped: int = 0,
        full_lengths: Sequence[int] = (),
        capped: int = 0,
        truncated_records: Sequence[int] = (),
        dropped_records: Sequence[int] = (),
    ) -> None:
        super().__init__(examples)
        self.truncated = truncated
        self.dropped = dropped
        self.full_lengths = list(full_lengths)
        self.capped = capped
        self.truncated_records = list(truncated_records)
        self.dropped_records = list(dropped_records)


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
    from lorabench.data.formats import render_records

    _check_seq_len(seq_len)
    if not records:
        raise DataError("cannot encode: no records given")
    rendered, _ = render_records(records, "finlora")
    return encode_rendered(rendered, tokenizer, seq_len)


def _cap(segments: Sequence[tuple[str, bool]], keep_end: bool, limit: int) -> tuple[list[tuple[str, bool]], bool]:
    """Cut segments longer than ``limit`` characters (prompts keep their end when ``keep_end``)."""
    out: list[tuple[str, bool]] = []
    cut = False
    used = 0
    for text, trainable in segments:
        if keep_end:
            if len(text) > limit:
                text, cut = (text[-limit:] if not trainable else text[:limit]), True
        else:
            room = max(0, limit - used)
            if len(text) > room:
                text, cut = text[:room], True
            used += len(text)
        out.append((text, trainable))
    return out, cut


def encode_rendered(
    rendered: Sequence[Rendered], tokenizer: PreTrainedTokenizerBase, seq_len: int, char_limit: int | None = None
) -> EncodedExamples:
    """Encode rendered records (:func:`lorabench.data.formats.render_records`) with loss on trainable segments.

    An example is ``[bos]`` (when the record asks for it and the tokenizer has one), each segment's tokens, and
    a trainable ``eos`` (when the record asks for it). Too long: a record with ``keep_end`` (one response at the
    end) loses prompt tokens from the left and is dropped when the response alone does not fit; any other keeps
    its first ``seq_len`` tokens and is dropped when no trainable token is left. Segments are first cut at
    ``char_limit`` characters (default :data:`MAX_CHARS_PER_TOKEN` x ``seq_len``).

    Raises:
        DataError: No records, a tokenizer without an eos token, ``seq_len`` below 2, or every record dropped.
    """
    _check_seq_len(seq_len)
    if not rendered:
        raise DataError("cannot encode: no records given")
    eos = tokenizer.eos_token_id
    if not isinstance(eos, int):
        raise DataError(f"tokenizer {type(tokenizer).__name__} has no eos token; cannot mark where targets end")
    bos = tokenizer.bos_token_id
    limit = MAX_CHARS_PER_TOKEN * seq_len if char_limit is None else char_limit
    capped_flags: list[bool] = []
    texts: list[str] = []
    shapes: list[list[bool]] = []
    for record in rendered:
        segments, cut = _cap(record.segments, record.keep_end, limit)
        capped_flags.append(cut)
        texts += [text for text, _ in segments]
        shapes.append([trainable for _, trainable in segments])
    ids_all = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    examples: list[Example] = []
    full_lengths: list[int] = []
    truncated_at: list[int] = []
    dropped_at: list[int] = []
    position = 0
    for index, (record, flags) in enumerate(zip(rendered, shapes, strict=True)):
        pieces = ids_all[position : position + len(flags)]
        position += len(flags)
        prefix = [bos] if record.bos and isinstance(bos, int) else []
        ids: list[int] = list(prefix)
        labels: list[int] = [IGNORE_INDEX] * len(prefix)
        first_trainable = None
        for piece, trainable in zip(pieces, flags, strict=True):
            if trainable and first_trainable is None:
                first_trainable = len(ids)
            ids += piece
            labels += piece if trainable else [IGNORE_INDEX] * len(piece)
        if record.eos:
            first_trainable = len(ids) if first_trainable is None else first_trainable
            ids.append(eos)
            labels.append(eos)
        full_lengths.append(len(ids))
        cut = capped_flags[index]
        if len(ids) > seq_len:
            cut = True
            if record.keep_end and first_trainable is not None:
                answer = len(ids) - first_trainable
                room = seq_len - len(prefix) - answer
                if room < 0:
                    dropped_at.append(index)
                    continue
                keep = slice(first_trainable - room, None)
                ids, labels = prefix + ids[keep], labels[: len(prefix)] + labels[keep]
            else:
                ids, labels = ids[:seq_len], labels[:seq_len]
        if all(label == IGNORE_INDEX for label in labels):
            dropped_at.append(index)
            continue
        if cut:
            truncated_at.append(index)
        examples.append(Example(input_ids=ids, labels=labels))
    if not examples:
        raise DataError(
            f"all {len(rendered)} records dropped: no record's target (trainable part) fits seq_len {seq_len}"
        )
    return EncodedExamples(
        examples,
        truncated=len(truncated_at),
        dropped=len(dropped_at),
        full_lengths=full_lengths,
        capped=sum(capped_flags),
        truncated_records=truncated_at,
        dropped_records=dropped_at,
    )


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
    packed = any(example.lengths is not None for example in batch)
    position_ids = torch.zeros((len(batch), length), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
        if packed:
            start = 0
            for size in [*(example.lengths or (n,)), length - n]:  # the padding tail is a sequence of its own
                position_ids[row, start : start + size] = torch.arange(size, dtype=torch.long)
                start += size
    tensors = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    if packed:
        tensors["position_ids"] = position_ids
    return tensors


def model_inputs(tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The keyword arguments of the model's forward: a packed batch goes without its attention mask and cache.

    With ``position_ids`` that restart at every packed sequence and no attention mask, transformers finds the
    sequence boundaries itself (``find_packed_sequence_indices``): flash attention takes its varlen path and
    sdpa / eager build a block-diagonal causal mask, as with TRL's ``padding_free`` and
    ``DataCollatorWithFlattening``. It looks only when no key/value cache is passed, and a model whose config
    says ``use_cache`` makes one even in training, so ``use_cache=False`` goes with packed batches (without it
    the packed examples would attend to each other). The mask is kept in the collated batch only to count
    non-pad tokens.
    """
    if "position_ids" in tensors:
        return {**{k: v for k, v in tensors.items() if k != "attention_mask"}, "use_cache": False}
    return dict(tensors)


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
        ``seq_len`` for ``pad_to_max`` (every batch is padded to the full sequence length), else None
        (``packed`` rows are padded to the longest row of their batch).

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
    ``packed`` (Axolotl's ``sample_packing``, TRL's ``packing``) packs the shuffled examples into rows of at
    most ``seq_len`` tokens (:func:`pack_examples`), shuffles the rows and cuts them into batches of
    ``batch_size`` rows. The last batch may be smaller.

    Args:
        examples: Encoded examples, none longer than ``seq_len``.
        batch_size: Examples per batch (positive).
        strategy: ``pad_to_max``, ``longest``, ``length_grouped`` or ``packed``.
        seq_len: The sequence length the examples were encoded for.
        seed: Random seed; the same inputs and seed always give the same batches.

    Returns:
        The batches; together they hold every example exactly once (``packed``: inside packed rows).

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
    if strategy == "packed":
        rows = pack_examples([examples[i] for i in order], seq_len)
        rng.shuffle(rows)
        return [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
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


def pack_examples(examples: Sequence[Example], seq_len: int) -> list[Example]:
    """Pack examples into rows of at most ``seq_len`` tokens, best-fit decreasing (as TRL's ``bfd`` packing).

    Each row concatenates whole examples (none is split) and records their lengths, so :func:`collate` can give
    position ids that restart at every example and the attention stays within each one. The first label of
    every packed example is ``-100``: it must not be predicted from the previous example's last token (as
    ``DataCollatorWithFlattening`` does).

    Raises:
        DataError: An example longer than ``seq_len``.
    """
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]), reverse=True)
    free: list[tuple[int, int]] = []  # (room left, row), sorted
    rows: list[list[int]] = []
    for index in order:
        size = len(examples[index])
        if size > seq_len:
            raise DataError(f"example {index} has {size} tokens, more than seq_len {seq_len}")
        spot = bisect.bisect_left(free, (size, -1))
        if spot == len(free):
            rows.append([index])
            room, row = seq_len - size, len(rows) - 1
        else:
            room, row = free.pop(spot)
            rows[row].append(index)
            room -= size
        if room > 0:
            bisect.insort(free, (room, row))
    packed: list[Example] = []
    for members in rows:
        ids: list[int] = []
        labels: list[int] = []
        for index in members:
            example = examples[index]
            ids += example.input_ids
            labels += [IGNORE_INDEX, *example.labels[1:]]
        packed.append(Example(ids, labels, tuple(len(examples[i]) for i in members)))
    return packed
