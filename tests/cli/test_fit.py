from __future__ import annotations

import json

import pytest

from lorabench.cli import main as cli
from lorabench.predict.fit import largest_fitting
from lorabench.spec import parse_spec


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


SPEC = ("--model", "llama-3.1-8b", "--bits", "4", "--rank", "8", "--targets", "q_proj,k_proj,v_proj")


def test_fit_json_matches_the_search(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "fit", "--gpu", "a5000", *SPEC, "--batch-size", "4", "--seq-len", "512", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["schema"] == "lorabench.fit" and record["gpu"] == "A5000" and record["engine"] == "formula"
    spec = parse_spec({"model": "llama-3.1-8b", "bits": 4, "rank": 8, "micro_batch": 4, "seq_len": 512})
    batch = largest_fitting(spec, "A5000", "batch")
    length = largest_fitting(spec, "A5000", "seq_len")
    assert record["largest_micro_batch"]["value"] == batch.value
    assert record["largest_seq_len"]["value"] == length.value
    assert record["largest_micro_batch"]["device_total_bytes"] <= record["vram_bytes"]
    assert record["largest_seq_len"]["fixed_batch"] == 4
    assert record["spec"]["hardware"]["gpu"] == "a5000"


def test_fit_text_and_more_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "fit", "--gpu", "T4", "--gpus", "2", *SPEC, "--grad-ckpt", "--optimizer", "adamw_8bit")
    assert code == 0, err
    assert "2×T4" in out and "ddp" in out
    assert "largest micro batch at seq len 512:" in out and "largest seq len at micro batch 4:" in out
    code, out, err = run(capsys, "fit", "--gpu", "T4", "--model", "llama-3.1-70b", "--bits", "16")
    assert code == 0, err
    assert "none -- even 1 needs" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--gpu", "Z9000", *SPEC), "lorabench: error: unknown GPU 'Z9000'; known: "),
        (("--gpu", "T4", *SPEC, "--seq-len", "0"), "lorabench: error: invalid run spec from command line: seq_len"),
        (("--gpu", "T4", *SPEC, "--batch-size", "0"), "lorabench: error: invalid run spec from command line: micro"),
        (("--gpu", "T4", *SPEC, "--seq-len", "-5"), "lorabench: error: invalid run spec from command line: seq_len"),
        (("--gpu", "T4", "--gpus", "0", *SPEC), "lorabench: error: invalid run spec from command line: hardware"),
        ((*SPEC,), "lorabench: error: lorabench fit: Missing option '--gpu'"),
        (("--gpu", "T4"), "lorabench: error: no model given"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, "fit", *args)
    assert code == 2 and out == ""
    assert err.startswith(message), err
    assert err.count("\n") == 1
