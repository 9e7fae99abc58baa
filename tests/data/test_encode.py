from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from lorabench.data import (
    IGNORE_INDEX,
    BatchStrategy,
    Example,
    batch_token_counts,
    build_tokenizer,
    collate,
    encode_examples,
    make_batches,
    pad_to_for,
    read_jsonl,
    synthetic_dataset,
)
from lorabench.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

STRATEGIES: tuple[BatchStrategy, ...] = ("pad_to_max", "longest", "length_grouped")


@pytest.fixture(scope="module")
def records() -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for task in ("sentiment", "headline", "ner", "xbrl", "formula"):
        out += synthetic_dataset(task, 60, seed=5)
    return out


@pytest.fixture(scope="module")
def tok(records: list[dict[str, str]]) -> PreTrainedTokenizerFast:
    return build_tokenizer([r["context"] + r["target"] for r in records], 1024)


def _labelled(example: Example) -> list[int]:
    return [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE_INDEX]


def test_labels_cover_only_target_and_eos(records: list[dict[str, str]], tok: PreTrainedTokenizerFast) -> None:
    examples = encode_examples(records, tok, seq_len=1024)
    assert len(examples) == len(records)
    assert (examples.truncated, examples.dropped) == (0, 0)
    for record, example in zip(records, examples, strict=True):
        assert len(example.input_ids) == len(example.labels)
        assert example.input_ids[0] == tok.bos_token_id and example.labels[0] == IGNORE_INDEX
        assert example.input_ids[-1] == tok.eos_token_id
        assert tok.decode(_labelled(example)) == record["target"] + "</s>"
        n_context = len(tok(record["context"], add_special_tokens=False)["input_ids"])
        assert example.labels[: 1 + n_context] == [IGNORE_INDEX] * (1 + n_context)
        assert tok.decode(example.input_ids) == "<s>" + record["context"] + record["target"] + "</s>"


def test_truncation_keeps_the_target(tok: PreTrainedTokenizerFast) -> None:
    record = {"context": "word " * 300 + "Answer: ", "target": "Kestrel Energy is an organization."}
    [example] = encode_examples([record], tok, seq_len=40)
    assert len(example) == 40
    assert example.input_ids[0] == tok.bos_token_id
    assert tok.decode(_labelled(example)) == record["target"] + "</s>"
    assert str(tok.decode(example.input_ids[1:])).endswith("word Answer: " + record["target"] + "</s>")
    encoded = encode_examples([record, {"context": "short", "target": "yes"}], tok, seq_len=40)
    assert (encoded.truncated, encoded.dropped, len(encoded)) == (1, 0, 2)


def test_examples_whose_target_does_not_fit_are_dropped(tok: PreTrainedTokenizerFast) -> None:
    long_target = {"context": "Q: ", "target": "a long answer " * 20}
    short = {"context": "Q: ", "target": "ok"}
    encoded = encode_examples([long_target, short, long_target], tok, seq_len=16)
    assert (len(encoded), encoded.dropped) == (1, 2)
    assert tok.decode(_labelled(encoded[0])) == "ok</s>"
    with pytest.raises(DataError, match="all 1 records dropped"):
        encode_examples([long_target], tok, seq_len=16)


def test_encode_bad_inputs(tok: PreTrainedTokenizerFast) -> None:
    with pytest.raises(DataError, match="no records"):
        encode_examples([], tok, seq_len=64)
    with pytest.raises(DataError, match="record 2: field target"):
        encode_examples([{"context": "a", "target": "b"}, {"context": "a"}], tok, seq_len=64)
    with pytest.raises(DataError, match="seq_len"):
        encode_examples([{"context": "a", "target": "b"}], tok, seq_len=1)


def test_collate_pads_right_and_masks(records: list[dict[str, str]], tok: PreTrainedTokenizerFast) -> None:
    batch = list(encode_examples(records[:5], tok, seq_len=512))
    lengths = [len(e) for e in batch]
    out = collate(batch, pad_id=tok.pad_token_id)
    assert set(out) == {"input_ids", "attention_mask", "labels"}
    for tensor in out.values():
        assert tensor.shape == (5, max(lengths)) and tensor.dtype == torch.long
    assert out["attention_mask"].sum(dim=1).tolist() == lengths
    for row, example in enumerate(batch):
        n = lengths[row]
        assert out["input_ids"][row, :n].tolist() == example.input_ids
        assert out["labels"][row, :n].tolist() == example.labels
        assert (out["input_ids"][row, n:] == tok.pad_token_id).all()
        assert (out["labels"][row, n:] == IGNORE_INDEX).all()
    assert batch_token_counts(out) == (5 * max(lengths), sum(lengths))

    fixed = collate(batch, pad_id=tok.pad_token_id, pad_to=512)
    assert fixed["input_ids"].shape == (5, 512)
    assert batch_token_counts(fixed) == (5 * 512, sum(lengths))


def test_collate_bad_inputs() -> None:
    with pytest.raises(DataError, match="empty batch"):
        collate([], pad_id=0)
    with pytest.raises(DataError, match="cannot pad to 2"):
        collate([Example([1, 2, 3], [-100, 2, 3])], pad_id=0, pad_to=2)


def test_pad_to_for() -> None:
    assert pad_to_for("pad_to_max", 256) == 256
    assert pad_to_for("longest", 256) is None
    assert pad_to_for("length_grouped", 256) is None
    with pytest.raises(DataError, match="unknown batching strategy 'bucket'"):
        pad_to_for("bucket", 256)  # type: ignore[arg-type]


def _fake(lengths: list[int]) -> list[Example]:
    return [Example(list(range(n)), list(range(n))) for n in lengths]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_make_batches_covers_every_example_once(strategy: BatchStrategy) -> None:
    examples = _fake([(i * 37) % 90 + 1 for i in range(203)])
    batches = make_batches(examples, 8, strategy, seq_len=100, seed=1)
    assert sorted(id(e) for b in batches for e in b) == sorted(id(e) for e in examples)
    assert sum(len(b) == 8 for b in batches) == 25 and sum(len(b) == 3 for b in batches) == 1
    again = make_batches(examples, 8, strategy, seq_len=100, seed=1)
    assert [[id(e) for e in b] for b in batches] == [[id(e) for e in b] for b in again]
    other = make_batches(examples, 8, strategy, seq_len=100, seed=2)
    assert [[id(e) for e in b] for b in batches] != [[id(e) for e in b] for b in other]


def test_pad_to_max_and_longest_share_an_order() -> None:
    examples = _fake([(i * 13) % 40 + 1 for i in range(50)])
    a = make_batches(examples, 4, "pad_to_max", seq_len=64, seed=3)
    b = make_batches(examples, 4, "longest", seq_len=64, seed=3)
    assert [[id(e) for e in x] for x in a] == [[id(e) for e in x] for x in b]


def test_length_grouped_groups_similar_lengths() -> None:
    examples = _fake([(i * 37) % 90 + 1 for i in range(400)])

    def spread(strategy: BatchStrategy) -> int:
        batches = make_batches(examples, 8, strategy, seq_len=100, seed=0)
        return sum(max(map(len, b)) - min(map(len, b)) for b in batches)

    assert spread("length_grouped") * 5 < spread("longest")


def test_make_batches_bad_inputs() -> None:
    examples = _fake([3, 5])
    with pytest.raises(DataError, match="batch_size"):
        make_batches(examples, 0, "longest", seq_len=8, seed=0)
    with pytest.raises(DataError, match="unknown batching strategy"):
        make_batches(examples, 2, "random", seq_len=8, seed=0)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no examples"):
        make_batches([], 2, "longest", seq_len=8, seed=0)
    with pytest.raises(DataError, match="example 1 has 5 tokens, more than seq_len 4"):
        make_batches(examples, 2, "longest", seq_len=4, seed=0)


def test_length_grouping_saves_padding_on_fpb(finlora: Path) -> None:
    records = read_jsonl(finlora / "fpb_test.jsonl")
    tok = build_tokenizer([r["context"] + r["target"] for r in records], 1024)
    seq_len = 256
    examples = encode_examples(records, tok, seq_len)
    assert (len(examples), examples.dropped) == (1212, 0)
    totals: dict[str, tuple[int, int]] = {}
    for strategy in STRATEGIES:
        padded = nonpad = 0
        for batch in make_batches(examples, 8, strategy, seq_len, seed=0):
            p, n = batch_token_counts(collate(batch, tok.pad_token_id, pad_to_for(strategy, seq_len)))
            padded, nonpad = padded + p, nonpad + n
        totals[strategy] = (padded, nonpad)
    real = sum(len(e) for e in examples)
    assert all(nonpad == real for _, nonpad in totals.values())
    assert totals["pad_to_max"][0] == 1212 * seq_len
    assert totals["length_grouped"][0] < totals["longest"][0] < totals["pad_to_max"][0]
    assert totals["length_grouped"][0] < 1.1 * real  # grouping leaves little padding
