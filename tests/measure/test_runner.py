"""Real fine-tuning runs on CPU: every method on `tiny`, records complete and honest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lorabench.measure.options import RunOptions
from lorabench.measure.runner import run_training
from lorabench.predict import account
from lorabench.spec import parse_spec

pytestmark = pytest.mark.integration

CASES = {
    "lora": ("lora", 16),
    "qlora": ("qlora", 4),
    "dora": ("dora", 16),
    "rslora": ("rslora", 16),
    "lora8": ("lora", 8),
}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, (method, bits) in CASES.items():
        spec = parse_spec({"model": "tiny", "method": method, "bits": bits, "seq_len": 64, "micro_batch": 4})
        folder = tmp_path_factory.mktemp(name)
        out[name] = run_training(spec, RunOptions(out=folder, max_steps=20, warmup_steps=2, examples=96))
        out[name]["_folder"] = folder
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_every_method_trains_with_falling_loss(records: dict[str, dict[str, Any]], name: str) -> None:
    record = records[name]
    assert record["status"] == "ok", record["message"]
    assert record["steps"] == 20
    assert record["final_loss"] < record["first_loss"]


@pytest.mark.parametrize("name", list(CASES))
def test_record_holds_every_field(records: dict[str, dict[str, Any]], name: str) -> None:
    record = records[name]
    saved = json.loads((record["_folder"] / "result.json").read_text())
    assert saved["schema"] == "lorabench.run" and saved["schema_version"] == 1
    assert saved["spec"]["method"] == CASES[name][0]
    env = saved["environment"]
    assert env["python"] and env["packages"]["torch"] and env["packages"]["peft"] and env["packages"]["bitsandbytes"]
    assert env["device_names"] and env["cpu"]
    metrics = saved["metrics"]
    for key in (
        "wall_time_s",
        "tokens_per_s_nonpad",
        "tokens_per_s_padded",
        "samples_per_s",
        "peak_allocated_bytes",
        "peak_rss_bytes",
    ):
        assert metrics[key] > 0, key
    assert metrics["tokens_per_s_nonpad"] <= metrics["tokens_per_s_padded"]
    assert "profiler" in metrics["counters"]["peak_allocated_bytes"]
    assert "RSS" in metrics["counters"]["peak_rss_bytes"] or "rss" in metrics["counters"]["peak_rss_bytes"].lower()
    # unknown on CPU is null, never 0
    assert metrics["energy_j"] is None and metrics["gpu_hours"] is None and metrics["cost_usd"] is None
    assert metrics["peak_reserved_bytes"] is None and metrics["nvml_peak_used_bytes"] is None
    assert len(metrics["step_times_s"]) == 20 and metrics["warmup_steps"] == 2
    assert metrics["wall_time_s"] >= sum(metrics["step_times_s"])
    spec = parse_spec(saved["spec"])
    assert saved["trainable_params"] == account(spec).trainable_params == saved["trainable_params_estimate"]
    adapter = record["_folder"] / "adapter"
    assert (adapter / "adapter_model.safetensors").stat().st_size == saved["adapter_file_bytes"] > 0
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny"


def test_quantized_base_uses_less_memory(records: dict[str, dict[str, Any]]) -> None:
    assert records["dora"]["trainable_params"] > records["lora"]["trainable_params"]
    assert records["rslora"]["trainable_params"] == records["lora"]["trainable_params"]


def test_cost_from_an_input_rate_on_cpu(tmp_path: Path) -> None:
    spec = parse_spec({"model": "tiny", "seq_len": 32, "micro_batch": 2})
    record = run_training(
        spec, RunOptions(out=tmp_path, max_steps=3, warmup_steps=1, examples=16, usd_per_gpu_hour=1.0)
    )
    metrics = record["metrics"]
    assert metrics["cost_usd"] == pytest.approx(metrics["wall_time_s"] / 3600)
    assert metrics["cost_provenance"]["kind"] == "input"


def test_missing_weights_is_bad_input_not_a_result(tmp_path: Path) -> None:
    # a model directory without weights and without --random-weights is bad input, not a failed run
    bad = tmp_path / "model"
    bad.mkdir()
    from transformers import LlamaConfig

    LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        vocab_size=300,
    ).save_pretrained(bad)
    from lorabench.errors import ModelError

    with pytest.raises(ModelError, match="no local safetensors weights"):
        run_training(
            parse_spec({"model": str(bad), "seq_len": 32, "micro_batch": 2}),
            RunOptions(out=tmp_path / "x", max_steps=3, warmup_steps=1, examples=16),
        )
    assert not (tmp_path / "x" / "result.json").exists()
    record = run_training(
        parse_spec({"model": str(bad), "seq_len": 32, "micro_batch": 2}),
        RunOptions(out=tmp_path / "y", max_steps=3, warmup_steps=1, examples=16, random_weights=True),
    )
    assert record["status"] == "ok"
    assert record["model"]["key"] == "model"


def test_autocast_spec_runs_the_forward_under_bf16_autocast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    import torch.nn.functional as F

    real_linear = F.linear
    seen: set[torch.dtype] = set()

    def observed_linear(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = real_linear(*args, **kwargs)
        seen.add(out.dtype)
        return out

    monkeypatch.setattr(F, "linear", observed_linear)
    spec = parse_spec({"model": "tiny", "seq_len": 16, "micro_batch": 2, "autocast": True})
    record = run_training(spec, RunOptions(out=tmp_path, max_steps=1, warmup_steps=0, examples=4))
    assert record["status"] == "ok", record["message"]
    assert record["spec"]["autocast"] is True
    assert seen == {torch.bfloat16}  # base and adapter linears alike, whatever the base's CPU dtype


def test_pure_bf16_spec_trains_bf16_adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from lorabench import recipe

    real_prepare = recipe.prepare_for_training
    dtypes: set[torch.dtype] = set()

    def observed_prepare(base: Any, spec: Any) -> Any:
        model = real_prepare(base, spec)
        dtypes.update(p.dtype for name, p in model.named_parameters() if "lora_" in name)
        return model

    monkeypatch.setattr(recipe, "prepare_for_training", observed_prepare)
    spec = parse_spec({"model": "tiny", "seq_len": 16, "micro_batch": 2, "pure_bf16": True})
    record = run_training(spec, RunOptions(out=tmp_path, max_steps=2, warmup_steps=0, examples=8, cpu_dtype="bf16"))
    assert record["status"] == "ok", record["message"]
    assert dtypes == {torch.bfloat16}  # PEFT's default would upcast them to fp32
