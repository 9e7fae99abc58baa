from __future__ import annotations

import pytest
import torch

from lorabench.data import IGNORE_INDEX, Example, collate, make_batches, model_inputs, pack_examples
from lorabench.errors import DataError


def _examples(lengths: list[int]) -> list[Example]:
    out = []
    for n, size in enumerate(lengths):
        ids = [10 + (n * 7 + i) % 50 for i in range(size)]
        out.append(Example(ids, [IGNORE_INDEX, *ids[1:]]))
    return out


def test_packing_keeps_every_example_whole_within_seq_len() -> None:
    examples = _examples([5, 17, 3, 9, 30, 1, 12, 8, 8, 2])
    rows = pack_examples(examples, seq_len=32)
    assert all(len(row) <= 32 for row in rows)
    assert sorted(n for row in rows for n in row.lengths or ()) == sorted(len(e) for e in examples)
    assert sum(len(r) for r in rows) == sum(len(e) for e in examples)
    assert len(rows) == 3  # 95 tokens in the fewest rows of 32: 30+2, 17+12+3, 9+8+8+5+1
    for row in rows:  # the first label of every packed example is masked
        start = 0
        for size in row.lengths or ():
            assert row.labels[start] == IGNORE_INDEX
            start += size
    with pytest.raises(DataError, match="more than seq_len"):
        pack_examples(_examples([40]), 32)


def test_packed_batches_get_position_ids_that_restart_and_no_mask() -> None:
    batches = make_batches(_examples([5, 17, 3, 9, 30, 1, 12, 8]), 2, "packed", 32, seed=0)
    assert sum(n for b in batches for row in b for n in row.lengths or ()) == 85
    tensors = collate(batches[0], pad_id=0)
    row = batches[0][0]
    expected = [p for size in row.lengths or () for p in range(size)]
    assert tensors["position_ids"][0, : len(row)].tolist() == expected
    inputs = model_inputs(tensors)
    assert "attention_mask" not in inputs and "position_ids" in inputs and inputs["use_cache"] is False
    assert "position_ids" not in collate(_examples([3, 4]), pad_id=0)


def test_a_packed_row_gives_the_same_loss_as_the_examples_apart() -> None:
    from transformers import AutoModelForCausalLM

    from lorabench.models import resolve_model

    torch.manual_seed(0)
    config = resolve_model("tiny").config
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32).eval()
    examples = _examples([7, 12, 5])
    apart = collate(examples, pad_id=0)
    [packed_row] = pack_examples(examples, seq_len=32)
    packed = collate([packed_row], pad_id=0)
    with torch.no_grad():
        loss_apart = model(**model_inputs(apart)).loss
        loss_packed = model(**model_inputs(packed)).loss
        # without the restarting position ids the examples would attend to each other: a different loss
        leaky = model(input_ids=packed["input_ids"], labels=packed["labels"]).loss
    assert float(loss_packed) == pytest.approx(float(loss_apart), rel=1e-5)
    assert abs(float(leaky) - float(loss_apart)) > 1e-4
