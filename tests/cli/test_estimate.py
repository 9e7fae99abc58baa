from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lorabench.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_figures_from_estimate_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "estimate", "--model", "llama-3.1-8b", "--rank", "8", "--json")
    record = json.loads(out)
    assert code == 0
    assert record["base_params"] == 8_030_261_248
    assert record["trainable_params"] == 4_718_592
    assert round(record["weights_bytes"] / 1e9, 2) == 16.08
    assert record["spec"]["rank"] == 8
    code, out, _ = run(capsys, "estimate", "--model", "llama-3.1-8b", "--rank", "4", "--json")
    assert json.loads(out)["trainable_params"] == 2_359_296


def test_dora_adds_one_magnitude_per_output_feature(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "estimate", "--model", "llama-3.1-8b", "--method", "dora", "--json")
    record = json.loads(out)
    assert record["trainable_breakdown"]["dora_magnitude_params"] == 32 * (4096 + 1024 + 1024)
    assert record["trainable_params"] == 4_718_592 + 196_608


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "estimate", "--model", "llama-3.1-8b", "--bits", "4", "--targets", "q_proj,k_proj,v_proj"
    )
    assert code == 0
    assert "total as loaded" in out
    assert "16.08 GB" in out  # 16-bit column
    assert "8,030,261,248" in out


def test_config_file_and_out_file(capsys: pytest.CaptureFixture[str], finlora: Path, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "estimate.json"
    code, out, _ = run(
        capsys, "estimate", "--config", str(finlora / "axolotl_example.yml"), "--out", str(target), "--json"
    )
    assert code == 0
    saved = json.loads(target.read_text())
    assert saved == json.loads(out)
    assert saved["spec"]["bits"] == 8
    assert saved["model"]["key"] == "llama-3.1-8b"
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "gpt-17"], "unknown model 'gpt-17'"),
        (["--model", "tiny", "--rank", "0"], "rank:"),
        (["--model", "tiny", "--rank", "-3"], "rank:"),
        (["--model", "tiny", "--bits", "3"], "bits:"),
        (["--model", "tiny", "--bits", "x"], "--bits"),
        (["--model", "tiny", "--method", "qlora", "--bits", "16"], "qlora means a 4-bit"),
        (["--model", "tiny", "--targets", "q_proj,c_attn"], "c_attn not found"),
        (["--model", "tiny", "--method", "adalora"], "method:"),
        (["--config", "/nonexistent/spec.yaml"], "cannot read config file"),
        (["--rank", "8"], "no model given"),
        (["--model", "tiny", "--bogus"], "No such option"),
        (["--model", "tiny", "--seq-len", "0"], "seq_len:"),
        (["--model", "tiny", "--seq-len", "-5"], "seq_len:"),
        (["--model", "tiny", "--batch-size", "0"], "micro_batch:"),
        (["--model", "tiny", "--gpu", "GTX-9999"], "GTX-9999"),
        (["--model", "tiny", "--engine", "magic"], "--engine: must be simulate, formula or none"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], needle: str
) -> None:
    out_file = tmp_path / "never.json"
    code, out, err = run(capsys, "estimate", *args, "--out", str(out_file))
    assert code == 2
    assert needle in err
    assert err.startswith("lorabench: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert out == ""
    assert not out_file.exists()


def test_malformed_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "adapter_config.json"
    bad.write_text('{"r": 8, "target_modules": ["q_proj"],')
    code, _, err = run(capsys, "estimate", "--config", str(bad))
    assert code == 2
    assert f"{bad}: malformed JSON" in err


def test_models_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    assert json.loads(out)["llama-3.1-8b"]["config"]["vocab_size"] == 128256


@pytest.mark.integration
def test_console_script_exit_status() -> None:
    """The installed entry point behaves like main(): one line, exit 2, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "lorabench.cli.main", "estimate", "--model", "tiny", "--bits", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "bits:" in proc.stderr


def test_formula_engine_agrees_with_simulate_on_the_seed_config(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("estimate", "--model", "llama-3.1-8b", "--bits", "4", "--rank", "8", "--targets", "q_proj,k_proj,v_proj")
    args += ("--batch-size", "4", "--seq-len", "512", "--json")
    code, out, _ = run(capsys, *args, "--engine", "formula")
    formula = json.loads(out)
    assert code == 0
    assert formula["engine"] == "formula"
    assert sum(formula["breakdown"].values()) == formula["peak_allocated_bytes"]
    assert formula["device_total_bytes"] > formula["peak_allocated_bytes"]
    assert "formula" in formula["memory_provenance"]
    code, out, _ = run(capsys, *args, "--engine", "simulate")
    simulated = json.loads(out)
    # static components are exact in both engines; the dynamic ones are fitted (held-out full-size error <= 5%)
    for name in ("weights", "quant_constants", "adapter", "optimizer_state"):
        assert formula["breakdown"][name] == simulated["breakdown"][name], name
    error = formula["peak_allocated_bytes"] / simulated["peak_allocated_bytes"] - 1
    assert abs(error) < 0.05


def test_estimate_prints_no_time_for_a_card_the_run_does_not_fit(capsys: pytest.CaptureFixture[str]) -> None:
    from lorabench.cli.main import main

    args = ["estimate", "--model", "llama-3.1-8b", "--bits", "16", "--tokens", "1000000", "--engine", "formula"]
    assert main([*args, "--gpu", "RTX4090", "--wide"]) == 0
    out = capsys.readouterr().out
    assert "not on: A5000, RTX3090, RTX4090" in out
    assert "predicted time: none — the run does not fit on 1×RTX4090" in out
    assert " h (80% band" not in out
    assert main([*args, "--gpu", "RTX4090", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["predicted_time_s"] is None and record["predicted_time_interval_s"] is None
    assert "does not fit on 1xRTX4090" in record["predicted_time_note"]
    assert record["time"]["fits"] is False and record["time"]["time_s"] > 0  # the roofline's figure is kept
    assert main([*args, "--gpu", "A100-80GB", "--wide"]) == 0
    assert "h (80% band" in capsys.readouterr().out
