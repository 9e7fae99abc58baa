from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from lorabench.cli.config_source import DEFAULT_DATASET, choose_dataset, ignored_key_lines
from lorabench.cli.main import main
from lorabench.spec import load_spec_source

DATA = Path(__file__).parents[1] / "spec" / "data"


def _axolotl(tmp_path: Path, dataset: str, fields: str = "") -> Path:
    path = tmp_path / "ax.yml"
    path.write_text(
        f"base_model: tiny\nadapter: lora\nlora_r: 4\nsequence_len: 64\ndatasets:\n  - path: {dataset}\n{fields}"
    )
    return path


def test_the_configs_local_finlora_jsonl_is_used(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"context": "Is this positive?", "target": "yes"}) + "\n")
    fields = "    type:\n      field_instruction: context\n      field_output: target\n"
    loaded = load_spec_source(_axolotl(tmp_path, "train.jsonl", fields))
    err = io.StringIO()
    dataset, choice = choose_dataset(None, loaded, err)
    assert dataset == str(data)
    assert choice == {"source": "config", "dataset": str(data), "config_dataset": "train.jsonl"}
    assert f"training on {data}" in err.getvalue()


@pytest.mark.parametrize(
    ("dataset", "make", "needle"),
    [
        ("mhenrichsen/alpaca_2k_test", False, "is not a local file"),
        ("missing.jsonl", False, "cannot read dataset"),
        ("alpaca.jsonl", True, "missing field(s) context, target"),
    ],
)
def test_an_unusable_config_dataset_is_said_on_stderr_and_in_the_record(
    tmp_path: Path, dataset: str, make: bool, needle: str
) -> None:
    if make:
        (tmp_path / dataset).write_text(json.dumps({"instruction": "hi", "output": "there"}) + "\n")
    loaded = load_spec_source(_axolotl(tmp_path, dataset))
    err = io.StringIO()
    chosen, choice = choose_dataset(None, loaded, err)
    assert chosen == DEFAULT_DATASET
    assert choice["source"] == "default" and choice["config_dataset"] == dataset
    assert needle in choice["reason"]
    line = err.getvalue()
    assert line.count("\n") == 1 and needle in line and f"training on {DEFAULT_DATASET} instead" in line


def test_the_flag_wins(tmp_path: Path) -> None:
    loaded = load_spec_source(_axolotl(tmp_path, "x.jsonl"))
    assert choose_dataset("synthetic:ner", loaded, io.StringIO()) == (
        "synthetic:ner",
        {"source": "--dataset", "dataset": "synthetic:ner"},
    )


def test_ignored_key_lines_name_the_file() -> None:
    loaded = load_spec_source(DATA / "axolotl" / "llama-3_lora-8b.yml")
    lines = ignored_key_lines(loaded)
    assert any("not honoured: sample_packing = True: affects resources, not modelled" in line for line in lines)
    assert any("with no effect on resources ignored:" in line and "lr_scheduler" in line for line in lines)
    assert all(str(loaded.path) in line for line in lines)


def test_estimate_json_carries_ignored_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["estimate", "--config", str(DATA / "axolotl" / "mistral_qlora.yml"), "--engine", "none", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    record = json.loads(out)
    assert record["model"]["key"] == "mistral-7b-v0.1"
    assert record["config_source"]["kind"] == "axolotl"
    keys = {k["key"]: k["category"] for k in record["ignored_keys"]}
    assert keys["sample_packing"] == "affects resources, not modelled"
    assert "not honoured: sample_packing" in err


@pytest.mark.integration
def test_run_trains_on_the_configs_dataset(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"context": f"Is {i} up?", "target": "yes"}) + "\n" for i in range(16)))
    config = _axolotl(tmp_path, "train.jsonl")
    out = tmp_path / "r"
    code = main(
        [
            "run",
            "--config",
            str(config),
            "--max-steps",
            "3",
            "--warmup-steps",
            "1",
            "--batch-size",
            "2",
            "--seq-len",
            "32",
            "--out",
            str(out),
            "--json",
        ]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads(stdout)
    assert record["dataset_choice"] == {"source": "config", "dataset": str(data), "config_dataset": "train.jsonl"}
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk["dataset_choice"]["dataset"] == str(data)
    assert on_disk["schema"] == "lorabench.run"
    assert f"training on {data}" in err
