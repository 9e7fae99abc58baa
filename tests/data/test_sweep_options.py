from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorabench.errors import DataError
from lorabench.measure.sweep import check_datasets, load_sweep
from tests.data.conftest import ROWS, write_with_datasets


def test_a_sweep_takes_format_fields_and_packing_and_checks_records_first(tmp_path: Path) -> None:
    data = write_with_datasets(
        [{"q": r["instruction"], "a": r["output"]} for r in ROWS["alpaca"]], tmp_path / "qa.parquet"
    )
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "base: {model: tiny, seq_len: 64}\nmatrix: {rank: [4, 8]}\n"
        f"options: {{dataset: {data}, format: alpaca, fields: 'instruction=q,output=a', batching: packed, "
        "max_steps: 3}\n"
    )
    sweep = load_sweep(matrix, tmp_path / "out", 1)
    assert {(r.options.format, r.options.batching) for r in sweep.runs} == {("alpaca", "packed")}
    check_datasets(sweep)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "x", "output": "y"}) + "\n" + json.dumps({"instruction": "x"}) + "\n")
    matrix.write_text(f"base: {{model: tiny}}\nmatrix: {{rank: [4]}}\noptions: {{dataset: {bad}}}\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: field output is missing"):
        check_datasets(load_sweep(matrix, tmp_path / "out2", 1))
