from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lorabench.data.dataset import load_dataset_records
from lorabench.data.encode import MAX_CHARS_PER_TOKEN, encode_rendered
from lorabench.data.read import read_records
from lorabench.data.tokenizer import build_tokenizer
from lorabench.errors import DataError
from tests.data.conftest import ROWS, write_with_datasets


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("alpaca", "a.csv"),
        ("chat", "c.parquet"),
        ("sharegpt", "saved"),
        ("text", "t.json"),
        ("completion", "p.jsonl"),
        ("finlora", "f.tsv"),
    ],
)
def test_every_file_type_reads_back_and_its_format_is_detected(tmp_path: Path, fmt: str, name: str) -> None:
    rows = ROWS[fmt]
    if name.endswith(".tsv"):  # datasets writes CSV; a TSV is the same table with tabs
        import datasets

        datasets.Dataset.from_list(rows).to_csv(str(tmp_path / name), sep="\t", index=False)
        path = tmp_path / name
    else:
        path = write_with_datasets(rows, tmp_path / name)
    got = read_records(path)
    expected = [{k: (v if v is not None else "") for k, v in r.items()} for r in rows] if fmt == "alpaca" else rows
    assert got == expected
    loaded = load_dataset_records(str(path))
    assert (loaded.data_format, loaded.detected, loaded.unused_columns) == (fmt, True, ())


def test_a_dataset_dict_folder_reads_its_train_split(tmp_path: Path) -> None:
    import datasets

    data = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS["text"]), "test": datasets.Dataset.from_list(ROWS["text"][:1])}
    )
    data.save_to_disk(str(tmp_path / "dd"))
    assert len(read_records(tmp_path / "dd")) == len(ROWS["text"])


def test_real_finlora_files_stay_readable(finlora: Path) -> None:
    loaded = load_dataset_records(str(finlora / "fiqa_test.jsonl"))
    assert loaded.data_format == "finlora" and len(loaded.records) > 100


def _one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_bad_files_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"text": \n')
    with pytest.raises(DataError) as exc:
        read_records(bad)
    assert _one_line(exc).startswith(f"{bad}:2: malformed JSON")
    parquet = tmp_path / "broken.parquet"
    parquet.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError) as exc:
        read_records(parquet)
    assert _one_line(exc).startswith(f"{parquet}: cannot read as parquet")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match=r"unknown dataset file type \.txt"):
        read_records(tmp_path / "x.txt")
    with pytest.raises(DataError, match="no such file"):
        read_records(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no records"):
        read_records(empty)


def test_a_name_not_in_the_local_cache_is_one_clear_line() -> None:
    with pytest.raises(DataError) as exc:
        read_records("no-such-org/no-such-dataset-lorabench")
    assert "not in the local Hugging Face datasets cache" in _one_line(exc)
    assert "downloads nothing" in str(exc.value)


def test_records_that_do_not_fit_the_format_name_file_and_record(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    cases = [
        ({"messages": [{"content": "hi"}]}, "messages[0]: missing role"),
        ({"messages": []}, "empty conversation"),
        ({"messages": [{"role": "user", "content": 3}]}, "content must be a string"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "unknown role"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant turn"),
        ({"messages": "hello"}, "must be a list of turns"),
    ]
    for row, needle in cases:
        path.write_text(
            json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
            + "\n"
            + json.dumps(row)
            + "\n"
        )
        loaded = load_dataset_records(str(path), "chat")
        with pytest.raises(DataError) as exc:
            loaded.render(None)
        message = _one_line(exc)
        assert message.startswith(f"{path}:2: ") and needle in message, message


def test_format_override_and_field_mapping(tmp_path: Path) -> None:
    path = write_with_datasets([{"question": "2+2?", "answer": "4", "id": "x"}], tmp_path / "qa.jsonl")
    with pytest.raises(DataError, match="no known format"):
        load_dataset_records(str(path))
    loaded = load_dataset_records(str(path), "completion", "prompt=question,completion=answer")
    assert loaded.unused_columns == ("id",)
    [rendered], _ = loaded.render(None)
    assert rendered.segments == (("2+2?", False), ("4", True))
    with pytest.raises(DataError, match="needs column"):
        load_dataset_records(str(path), "alpaca")
    with pytest.raises(DataError, match="NAME=COLUMN"):
        load_dataset_records(str(path), "completion", "prompt")


def test_an_enormous_line_is_bounded_by_the_sequence_length(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("w") as handle:
        handle.write(json.dumps({"text": "short line"}) + "\n")
        handle.write(json.dumps({"text": "word " * 4_000_000}) + "\n")  # 20 MB on one line
    started = time.perf_counter()
    loaded = load_dataset_records(str(path))
    rendered, _ = loaded.render(None)
    tokenizer = build_tokenizer(["short line", "word word"], 300)
    encoded = encode_rendered(rendered, tokenizer, seq_len=32)
    assert time.perf_counter() - started < 30
    assert encoded.truncated == 1 and encoded.truncated_records == [1] and encoded.capped == 1
    assert len(encoded[1]) == 32
    # only the character bound was tokenized: at most one token per character of it, plus bos and eos
    assert encoded.full_lengths[1] <= MAX_CHARS_PER_TOKEN * 32 + 2
