from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.data import read_jsonl
from lorabench.errors import DataError


def test_reads_finlora_file(finlora: Path) -> None:
    records = read_jsonl(finlora / "fpb_test.jsonl")
    assert len(records) == 1212
    assert set(records[0]) == {"context", "target"}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "no records"),
        ("\n\n", "no records"),
        ('{"context": "a", "target": "b"}\n{"context": "a", \n', ":2: malformed JSON"),
        ('{"context": "a"}\n', ":1: missing field(s) target"),
        ("[1, 2]\n", ":1: expected a JSON object"),
        ('{"context": 1, "target": "b"}\n', ":1: field(s) context must be strings"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        read_jsonl(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read dataset"):
        read_jsonl(tmp_path / "absent.jsonl")
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8"):
        read_jsonl(binary)
