from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorabench.data import SPECIAL_TOKENS, build_tokenizer, load_tokenizer, synthetic_dataset
from lorabench.data.tokenizer import MIN_VOCAB_SIZE
from lorabench.errors import DataError
from lorabench.models.catalog import resolve_model


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    texts: list[str] = []
    for task in ("sentiment", "ner", "xbrl", "formula"):
        texts += [r["context"] + r["target"] for r in synthetic_dataset(task, 150, seed=3)]
    return texts


@pytest.mark.parametrize("vocab_size", [MIN_VOCAB_SIZE, 512, 2048])
def test_vocab_never_exceeds_the_bound(corpus: list[str], vocab_size: int) -> None:
    tok = build_tokenizer(corpus, vocab_size)
    assert len(tok) <= vocab_size
    ids = [i for row in tok(corpus, add_special_tokens=False)["input_ids"] for i in row]
    assert max(ids) < vocab_size


def test_fits_the_tiny_model(corpus: list[str]) -> None:
    vocab = resolve_model("tiny").config.vocab_size
    assert vocab == 4096
    tok = build_tokenizer(corpus, vocab)
    assert len(tok) <= vocab
    # a larger vocabulary merges more: fewer tokens for the same text than a small one
    small = build_tokenizer(corpus, 512)
    assert len(tok(corpus[0])["input_ids"]) < len(small(corpus[0])["input_ids"])


def test_special_tokens(corpus: list[str]) -> None:
    tok = build_tokenizer(corpus, 512)
    assert (tok.pad_token, tok.bos_token, tok.eos_token, tok.unk_token) == SPECIAL_TOKENS
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok("Answer: neutral")["input_ids"] == tok("Answer: neutral", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    "text",
    [
        "Instruction: What is the sentiment?\nInput: $NWH - shares rose 3.2% to EUR 41.5 million .\nAnswer: ",
        "Formula: r_a = r_f + \u03b2 (r_m - r_f), \u2211 \u20ac 12,000",
        "Z\u00fcrich \u2014 \u65e5\u672c  \t double  space",
        "",
    ],
)
def test_round_trip(corpus: list[str], text: str) -> None:
    tok = build_tokenizer(corpus, 512)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids  # byte-level: nothing is unknown
    assert tok.decode(ids) == text


def test_training_is_deterministic(corpus: list[str]) -> None:
    assert build_tokenizer(corpus, 700).get_vocab() == build_tokenizer(corpus, 700).get_vocab()


def test_bad_inputs() -> None:
    with pytest.raises(DataError, match=f"at least {MIN_VOCAB_SIZE}"):
        build_tokenizer(["hello"], MIN_VOCAB_SIZE - 1)
    with pytest.raises(DataError, match="no non-empty texts"):
        build_tokenizer(["", ""], 512)
    with pytest.raises(DataError, match="no non-empty texts"):
        build_tokenizer([], 512)


def test_load_saved_tokenizer(tmp_path: Path, corpus: list[str]) -> None:
    tok = build_tokenizer(corpus, 512)
    tok.save_pretrained(str(tmp_path))
    loaded = load_tokenizer(tmp_path)
    assert loaded is not None
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded(corpus[:3])["input_ids"] == tok(corpus[:3])["input_ids"]
    assert loaded.pad_token == "<pad>"


def test_load_uses_eos_as_missing_pad(tmp_path: Path, corpus: list[str]) -> None:
    tok = build_tokenizer(corpus, 512)
    tok.pad_token = None
    tok.save_pretrained(str(tmp_path))
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["pad_token"] is None
    loaded = load_tokenizer(tmp_path)
    assert loaded is not None
    assert loaded.pad_token == loaded.eos_token == "</s>"
    assert loaded.pad_token_id == 2


def test_load_without_a_tokenizer(tmp_path: Path) -> None:
    assert load_tokenizer(tmp_path) is None
    assert load_tokenizer(tmp_path / "absent") is None
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "LlamaTokenizer"}')
    assert load_tokenizer(tmp_path) is None  # a config without any vocabulary file is not a tokenizer


@pytest.mark.parametrize(
    "content", ["{garbage", "{}", '{"version": "1.0", "added_tokens": [], "model": {"type": "X"}}']
)
def test_load_broken_tokenizer(tmp_path: Path, content: str) -> None:
    (tmp_path / "tokenizer.json").write_text(content)
    with pytest.raises(DataError) as err:
        load_tokenizer(tmp_path)
    assert str(tmp_path) in str(err.value)
    assert "cannot load its tokenizer" in str(err.value)
    assert "\n" not in str(err.value)
