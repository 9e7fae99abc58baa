"""ResourceCallback in a plain Hugging Face Trainer script (transformers + PEFT on CPU)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

pytestmark = pytest.mark.integration


class _Capture(TrainerCallback):
    """Stands in for a ``report_to`` integration: keeps every log it is handed, registered after lorabench."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.logs.append(dict(logs or {}))


def _trainer(
    tmp_path: Path, steps: int = 6, extra: list[TrainerCallback] | None = None, **options: Any
) -> tuple[Any, Any, _Capture]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from lorabench.data import build_tokenizer, synthetic_dataset
    from lorabench.models import resolve_model

    records = synthetic_dataset("headline", 32, seed=1)
    tokenizer = build_tokenizer([r["context"] + r["target"] for r in records], vocab_size=1024)
    features = []
    for r in records:
        ids = tokenizer(r["context"] + r["target"])["input_ids"][:64]
        features.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ids})
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(resolve_model("tiny").config)
    model = get_peft_model(
        model,
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        learning_rate=1e-4,
        optim="adamw_torch",
        max_steps=steps,
        logging_steps=2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        **options,
    )
    capture = _Capture()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=features,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
        callbacks=[capture, *(extra or [])],
    )
    return trainer, model, capture


def test_callback_in_a_plain_trainer_script(tmp_path: Path) -> None:
    from lorabench.measure.callback import ResourceCallback

    trainer, model, capture = _trainer(tmp_path)
    callback = ResourceCallback(out=tmp_path / "run", warmup_steps=1).install(trainer)  # the one added line
    trainer.train()
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["schema"] == "lorabench.run" and record["status"] == "ok"
    assert record["steps"] == 6
    metrics = record["metrics"]
    assert metrics["tokens_per_s_nonpad"] > 0 and metrics["tokens_per_s_padded"] >= metrics["tokens_per_s_nonpad"]
    assert metrics["padded_tokens"] > metrics["nonpad_tokens"] > 0
    assert metrics["peak_allocated_bytes"] > 0 and metrics["energy_j"] is None
    assert "collator" in metrics["token_source"]
    assert record["trainable_params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert callback.record is not None
    summary = next(h for h in trainer.state.log_history if "train_runtime" in h)
    assert summary["lorabench/wall_time_s"] == metrics["wall_time_s"]
    # A logger registered after lorabench (as report_to integrations are) sees its figures in every log.
    running = [log for log in capture.logs if "loss" in log]
    assert len(running) == 3  # steps 2, 4, 6
    walls = [log["lorabench/wall_time_s"] for log in running]
    assert walls == sorted(walls) and walls[0] > 0
    assert all(log["lorabench/tokens_per_s_nonpad"] > 0 for log in running)
    final = capture.logs[-1]
    assert "train_runtime" in final  # the Trainer's last log carries the final figures
    assert final["lorabench/wall_time_s"] == metrics["wall_time_s"] >= walls[-1]
    assert final["lorabench/tokens_per_s_nonpad"] == metrics["tokens_per_s_nonpad"]
    assert final["lorabench/peak_allocated_bytes"] == metrics["peak_allocated_bytes"] > 0


def test_inferred_spec_and_notes_and_report_and_cost_accept_the_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lorabench.cli.main import main
    from lorabench.measure.callback import ResourceCallback

    trainer, _, _ = _trainer(tmp_path, steps=2)
    ResourceCallback(out=tmp_path / "results" / "run", warmup_steps=0).install(trainer)
    trainer.train()
    record = json.loads((tmp_path / "results" / "run" / "result.json").read_text())
    spec = record["spec"]
    assert (spec["rank"], spec["alpha"], spec["dropout"]) == (4, 8.0, 0.1)
    assert sorted(spec["targets"]) == ["q_proj", "v_proj"] and spec["method"] == "lora" and spec["bits"] == 16
    assert (spec["micro_batch"], spec["grad_accum"], spec["learning_rate"]) == (2, 2, 1e-4)
    assert spec["optimizer"] == "adamw_torch" and spec["grad_ckpt"] is False
    assert spec["hardware"] == {"gpu": None, "count": 1}
    assert spec["seq_len"] <= 64
    notes = " | ".join(record["notes"])
    for field in ("model:", "epochs:", "seq_len:", "hardware.gpu:", "no effect on resources ignored: task_type"):
        assert field in notes
    assert {"key": "task_type", "value": "'CAUSAL_LM'"}.items() <= record["ignored_keys"][0].items()
    assert spec["model"] == "llama"  # the tiny model's model_type: built from a config, it names no checkpoint

    capsys.readouterr()
    assert main(["report", str(tmp_path / "results"), "--out", str(tmp_path / "report"), "--no-plots"]) == 0
    capsys.readouterr()
    assert "llama-r4-16bit" in (tmp_path / "report" / "report.md").read_text()  # the measured run is a row
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "dataset: {tokens: 1000000}\n"
        "self_hosted:\n  - {name: callback-run, results: results/run, usd_per_gpu_hour: 0.1}\n"
        "services: []\nreferences: []\n"
    )
    assert main(["cost", str(scenario), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == "callback-run" and rows[0]["provenance"]["time_s"]["kind"] == "measured"


def test_passed_as_a_callback_without_install(tmp_path: Path) -> None:
    from lorabench.measure.callback import ResourceCallback

    callback = ResourceCallback(out=tmp_path / "run", warmup_steps=0)
    trainer, _, capture = _trainer(tmp_path, steps=2, extra=[callback], include_num_input_tokens_seen="non_padding")
    trainer.train()
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    metrics = record["metrics"]
    assert metrics["nonpad_tokens"] > 0 and metrics["tokens_per_s_nonpad"] > 0
    assert "num_input_tokens_seen (non_padding)" in metrics["token_source"]
    assert metrics["padded_tokens"] is None and metrics["tokens_per_s_padded"] is None  # not counted: unknown
    assert record["spec"]["rank"] == 4
    # Registered after the capture (as after report_to loggers): the Trainer runs it too late for them.
    assert not any(k.startswith("lorabench/") for log in capture.logs for k in log)
