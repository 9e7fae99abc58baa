from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorabench.errors import DataError
from lorabench.report import COST_SCHEMA, COST_SCHEMA_VERSION, collect_records, cost_record

from . import synthetic as syn


def test_empty_folder_is_a_clear_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no lorabench records in .* \(looked for result.json run records, estimate"):
        collect_records(tmp_path)


def test_foreign_folder_is_a_data_error(tmp_path: Path) -> None:
    syn.write(tmp_path, "package.json", {"name": "left-pad"})
    syn.write(tmp_path, "deep/er/config.json", [1, 2, 3])
    (tmp_path / "broken.json").write_text("{not json", "utf-8")
    (tmp_path / "readme.txt").write_text("hello", "utf-8")
    with pytest.raises(DataError, match="no lorabench records"):
        collect_records(tmp_path)


def test_missing_folder_and_file_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        collect_records(tmp_path / "nope")
    file = syn.write(tmp_path, "result.json", syn.run(peak=1e9))
    with pytest.raises(DataError, match="is not a folder"):
        collect_records(file)


def test_records_are_found_recursively_and_others_ignored(tmp_path: Path) -> None:
    syn.seed_folder(tmp_path)
    sources = collect_records(tmp_path)
    assert len(sources.runs) == 6
    assert len(sources.estimates) == 12
    assert len(sources.cost_files) == 1 and len(sources.cost_rows) == 8
    assert sources.ignored == 1  # the adapter_config.json; notes.txt is not JSON at all
    run = next(r for r in sources.runs if r.model_key == "tiny")
    assert run.dataset == "synthetic:sentiment" and run.peak_counter is not None


def test_a_malformed_record_names_its_file(tmp_path: Path) -> None:
    record = syn.run(peak=1e9)
    record["metrics"]["peak_allocated_bytes"] = "lots"
    syn.write(tmp_path, "r/result.json", record)
    with pytest.raises(DataError, match=r"r/result.json: metrics.peak_allocated_bytes: expected a non-negative number"):
        collect_records(tmp_path)


def test_a_bad_spec_names_file_and_field(tmp_path: Path) -> None:
    record = syn.estimate()
    record["spec"]["rank"] = 0
    syn.write(tmp_path, "e.json", record)
    with pytest.raises(DataError, match=r"e.json: spec: rank"):
        collect_records(tmp_path)


def test_an_unknown_version_is_refused(tmp_path: Path) -> None:
    syn.write(tmp_path, "e.json", {**syn.estimate(), "schema_version": 7})
    with pytest.raises(DataError, match=r"lorabench\.estimate record version 7 is not supported"):
        collect_records(tmp_path)


def test_cost_record_round_trips(tmp_path: Path) -> None:
    rows = syn.cost_rows()
    record = cost_record(rows)
    assert record["schema"] == COST_SCHEMA == "lorabench.cost"
    assert record["schema_version"] == COST_SCHEMA_VERSION == 1
    json.dumps(record, allow_nan=False)  # JSON-ready as it is
    syn.write(tmp_path, "cost.json", record)
    assert list(collect_records(tmp_path).cost_rows) == rows


def test_a_bad_cost_row_names_file_and_row(tmp_path: Path) -> None:
    record = syn.cost()
    record["rows"][2]["kind"] = "magic"
    syn.write(tmp_path, "cost.json", record)
    with pytest.raises(DataError, match=r"cost.json: rows\[2\]: kind"):
        collect_records(tmp_path)
