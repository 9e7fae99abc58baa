from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorabench.cli.main import main
from lorabench.cost import count_tokens
from tests.data.conftest import ROWS, write_with_datasets

FILES = {
    "alpaca": "alpaca.csv",
    "chat": "chat.jsonl",
    "sharegpt": "sharegpt_saved",
    "text": "text.parquet",
    "completion": "completion.json",
    "finlora": "finlora.jsonl",
}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", list(FILES))
def test_each_format_trains_in_run_and_is_counted_by_cost(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str
) -> None:
    path = write_with_datasets(ROWS[fmt], tmp_path / FILES[fmt])
    batching = "packed" if fmt in ("chat", "text") else "longest"
    code, out, err = _run(
        capsys,
        "run",
        "--model",
        "tiny",
        "--dataset",
        str(path),
        "--max-steps",
        "1",
        "--warmup-steps",
        "0",
        "--seq-len",
        "64",
        "--batch-size",
        "2",
        "--batching",
        batching,
        "--out",
        str(tmp_path / "run"),
        "--json",
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "ok" and record["steps"] == 1
    data = record["data"]
    assert (data["format"], data["format_detected"], data["records"], data["batching"]) == (fmt, True, 8, batching)
    assert record["metrics"]["nonpad_tokens"] > 0
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(f"dataset: {{path: {path}}}\nservices: [gpt-4o-mini]\n")
    code, out, err = _run(capsys, "cost", str(scenario), "--json")
    assert code == 0, err
    [row] = json.loads(out)
    counted = count_tokens(path)
    assert counted.data_format == fmt and counted.examples == 8
    assert row["billed_tokens"] == row["epochs"] * counted.total_tokens
    assert f"format {fmt}" in row["provenance"]["billed_tokens"]["method"]


def test_cost_counts_chat_exactly_with_a_local_tokenizer(tmp_path: Path) -> None:
    from lorabench.data import build_tokenizer, encode_rendered, render_records
    from tests.data.conftest import CHAT_TEMPLATE

    tok = build_tokenizer([str(r) for r in ROWS["chat"]], 400)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(str(tmp_path / "tok"))
    path = write_with_datasets(ROWS["chat"], tmp_path / "chat.jsonl")
    counted = count_tokens(path, tmp_path / "tok")
    rendered, _ = render_records(ROWS["chat"], "chat", tokenizer=tok)
    assert counted.exact and counted.total_tokens == sum(len(e) for e in encode_rendered(rendered, tok, 4096))
    capped = count_tokens(path, tmp_path / "tok", max_tokens_per_example=20)
    assert capped.max_tokens == 20 and capped.capped_examples == 8 and capped.total_tokens == 8 * 20


def test_data_command_prints_the_jobs_size_and_its_record_feeds_cost_and_estimate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, finlora: Path
) -> None:
    source = finlora / "fiqa_test.jsonl"
    record_path = tmp_path / "fiqa.json"
    args = ["data", str(source), "--model", "tiny", "--seq-len", "128", "--batch-size", "4"]
    code, out, err = _run(capsys, *args, "--out", str(record_path))
    assert code == 0, err
    for needle in ("format finlora (detected)", "tokens/epoch", "p99", "padding waste", "packed", "fallback"):
        assert needle in out
    code, out, _ = _run(capsys, *args, "--json")
    record = json.loads(out)
    assert record == json.loads(record_path.read_text())
    modes = record["batching"]
    assert set(modes) == {"pad_to_max", "longest", "length_grouped", "packed"}
    assert modes["pad_to_max"]["padded_tokens"] == modes["pad_to_max"]["rows"] * 128
    assert modes["packed"]["padding_waste_pct"] < modes["longest"]["padding_waste_pct"]
    assert modes["packed"]["steps_per_epoch"] < modes["longest"]["steps_per_epoch"]
    assert all(m["nonpad_tokens"] == record["tokens_per_epoch"] for m in modes.values())
    assert record["truncated"] == 0 and record["length_tokens"]["max"] <= 128
    assert not record["tokens_exact"]
    code, out, _ = _run(capsys, "data", str(source), "--model", "tiny", "--seq-len", "48", "--json")
    short = json.loads(out)
    assert short["truncated"] > 0 and len(short["truncated_records"]) == min(20, short["truncated"])
    assert short["length_tokens"]["max"] > 48 and short["tokens_per_epoch"] < short["tokens_per_epoch_untruncated"]
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(f"dataset: {{path: {record_path}}}\nservices: [gpt-4o-mini]\n")
    code, out, err = _run(capsys, "cost", str(scenario), "--json")
    assert code == 0, err
    assert json.loads(out)[0]["billed_tokens"] % record["tokens_per_epoch_untruncated"] == 0
    code, out, err = _run(
        capsys,
        "estimate",
        "--model",
        "tiny",
        "--gpu",
        "A5000",
        "--engine",
        "formula",
        "--tokens",
        str(record_path),
        "--json",
    )
    assert code == 0, err
    assert f'"tokens": {record["tokens_per_epoch"]}' in out


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        (
            [{"messages": [{"role": "user", "content": "hi"}, {"content": "x"}]}],
            "bad.jsonl:1: messages[1]: missing role",
        ),
        ([{"conversations": []}], "bad.jsonl:1: field conversations is an empty conversation"),
        (
            [{"prompt": "a", "completion": "b"}, {"prompt": "a", "completion": 3}],
            "bad.jsonl:2: field completion must be a string",
        ),
    ],
)
def test_bad_records_are_one_line_exit_2_and_nothing_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rows: list[object], needle: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for args in (
        ["data", str(path), "--model", "tiny"],
        ["run", "--model", "tiny", "--dataset", str(path), "--out", str(tmp_path / "never")],
    ):
        code, _, err = _run(capsys, *args)
        assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "never").exists()
