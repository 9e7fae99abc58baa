from __future__ import annotations

import re
import statistics
from pathlib import Path

import pytest

from lorabench.data import SYNTHETIC_TASKS, read_jsonl, synthetic_dataset, write_jsonl
from lorabench.errors import DataError

INSTRUCTION_TASKS = ("sentiment", "headline", "ner", "xbrl")


def _words(records: list[dict[str, str]]) -> list[int]:
    return [len(r["context"].split()) for r in records]


@pytest.fixture(scope="module")
def datasets() -> dict[str, list[dict[str, str]]]:
    return {task: synthetic_dataset(task, 400, seed=0) for task in SYNTHETIC_TASKS}


def test_tasks_are_the_five_finlora_shapes() -> None:
    assert SYNTHETIC_TASKS == ("sentiment", "headline", "ner", "xbrl", "formula")


@pytest.mark.parametrize("task", SYNTHETIC_TASKS)
def test_deterministic_for_a_seed(task: str) -> None:
    assert synthetic_dataset(task, 50, seed=7) == synthetic_dataset(task, 50, seed=7)
    assert synthetic_dataset(task, 50, seed=7) != synthetic_dataset(task, 50, seed=8)
    # a longer dataset starts with the shorter one
    assert synthetic_dataset(task, 80, seed=7)[:50] == synthetic_dataset(task, 50, seed=7)


def test_records_are_valid(datasets: dict[str, list[dict[str, str]]]) -> None:
    for task, records in datasets.items():
        assert len(records) == 400
        for record in records:
            assert set(record) == {"context", "target"}, task
            assert isinstance(record["context"], str) and record["context"].strip(), task
            assert isinstance(record["target"], str) and record["target"].strip(), task
        assert len({r["context"] for r in records}) > 300, f"{task}: too many duplicate prompts"


@pytest.mark.parametrize("task", INSTRUCTION_TASKS)
def test_instruction_prompt_shape(datasets: dict[str, list[dict[str, str]]], task: str) -> None:
    for record in datasets[task]:
        assert re.fullmatch(r"Instruction: [^\n]+\nInput: .+\nAnswer: ", record["context"], re.DOTALL), record


def test_targets_follow_each_task(datasets: dict[str, list[dict[str, str]]]) -> None:
    assert {r["target"] for r in datasets["sentiment"]} == {"negative", "neutral", "positive"}
    assert {r["target"] for r in datasets["headline"]} == {"Yes", "No"}
    for record in datasets["ner"]:
        text = record["context"].split("\nInput: ")[1]
        for item in record["target"].removesuffix(".").split(", "):
            name, kind = item.split(" is ")
            assert kind in {"a person", "an organization", "a location"}
            assert name in text
    for record in datasets["xbrl"]:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", record["target"])
        value = re.search(r'tag for "([^"]+)"', record["context"])
        assert value is not None
        assert record["context"].split("\nInput: ")[1].count(value.group(1)) == 1
    for record in datasets["formula"]:
        assert record["context"].startswith("Use formula ") and record["context"].endswith(". Answer:")
        assert re.fullmatch(r"-?\d+\.\d{2}", record["target"])


def test_formula_answers_are_computed(datasets: dict[str, list[dict[str, str]]]) -> None:
    checked = 0
    for record in datasets["formula"]:
        ear = re.search(r"of a ([\d.]+)% nominal rate compounded (\w+(?:-\w+)?)\?", record["context"])
        if ear:
            n = {"semi-annually": 2, "quarterly": 4, "monthly": 12, "daily": 365}[ear.group(2)]
            expected = (1 + float(ear.group(1)) / 100 / n) ** n - 1
            assert record["target"] == f"{expected:.2f}"
            checked += 1
        fv = re.search(
            r"If \$([\d,]+) is invested at ([\d.]+)% compounded (\w+), .* after (\d+) years", record["context"]
        )
        if fv:
            n = {"annually": 1, "quarterly": 4, "monthly": 12}[fv.group(3)]
            principal, rate, years = float(fv.group(1).replace(",", "")), float(fv.group(2)), int(fv.group(4))
            assert record["target"] == f"{principal * (1 + rate / 100 / n) ** (n * years):.2f}"
            checked += 1
    assert checked > 20


def test_lengths_are_right_skewed_and_differ_by_task(datasets: dict[str, list[dict[str, str]]]) -> None:
    medians = {}
    for task, records in datasets.items():
        words = _words(records)
        assert statistics.mean(words) > statistics.median(words), f"{task}: not right-skewed"
        assert max(words) > 1.5 * statistics.median(words), f"{task}: no long tail"
        medians[task] = statistics.median(words)
    assert medians["headline"] < medians["sentiment"] < medians["ner"] < medians["formula"] < medians["xbrl"]
    assert medians["formula"] > 1.5 * medians["sentiment"]


@pytest.mark.parametrize(("task", "n"), [("poetry", 5), ("sentiment", 0), ("ner", -3)])
def test_bad_arguments_list_the_tasks(task: str, n: int) -> None:
    with pytest.raises(DataError) as err:
        synthetic_dataset(task, n)
    message = str(err.value)
    assert all(name in message for name in SYNTHETIC_TASKS)
    assert "\n" not in message


def test_write_jsonl_round_trips_atomically(tmp_path: Path) -> None:
    records = synthetic_dataset("formula", 30, seed=1)
    path = tmp_path / "sub" / "formula.jsonl"
    write_jsonl(records, path)
    assert read_jsonl(path) == records
    write_jsonl(records[:3], path)  # overwrite in place
    assert read_jsonl(path) == records[:3]
    assert sorted(p.name for p in path.parent.iterdir()) == ["formula.jsonl"]


def test_write_jsonl_rejects_bad_records(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    with pytest.raises(DataError, match="no records"):
        write_jsonl([], path)
    with pytest.raises(DataError, match="record 1 must map field names to strings"):
        write_jsonl([{"context": "a", "target": "b"}, {"context": "a", "target": 3}], path)  # type: ignore[dict-item]
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_jsonl_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot write dataset"):
        write_jsonl([{"context": "a", "target": "b"}], blocker / "d.jsonl")
