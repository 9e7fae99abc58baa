"""ResourceCallback in a TRL ``SFTTrainer`` script (transformers + PEFT + TRL on CPU)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

pytestmark = pytest.mark.integration

trl = pytest.importorskip("trl", reason="TRL is not installed (pip install trl, in the dev extra)")


class _Capture(TrainerCallback):
    """Stands in for a ``report_to`` integration: keeps every log it is handed, registered after lorabench."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.logs.append(dict(logs or {}))


def test_callback_in_an_sft_trainer_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from lorabench.cli.main import main
    from lorabench.data import build_tokenizer, synthetic_dataset
    from lorabench.measure.callback import ResourceCallback
    from lorabench.models import resolve_model

    records = synthetic_dataset("headline", 16, seed=2)
    tokenizer = build_tokenizer([r["context"] + r["target"] for r in records], vocab_size=1024)
    rows = [{"input_ids": tokenizer(r["context"] + r["target"])["input_ids"][:48]} for r in records]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(resolve_model("tiny").config)
    model = get_peft_model(
        model,
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj"], use_rslora=True, task_type="CAUSAL_LM"),
    )
    args = trl.SFTConfig(
        output_dir=str(tmp_path / "trainer"),
        per_device_train_batch_size=2,
        max_steps=4,
        logging_steps=2,
        max_length=48,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
    )
    capture = _Capture()
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[capture],
    )
    ResourceCallback(out=tmp_path / "results" / "sft", warmup_steps=1).install(trainer)
    trainer.train()

    record = json.loads((tmp_path / "results" / "sft" / "result.json").read_text())
    metrics, spec = record["metrics"], record["spec"]
    assert record["steps"] == 4 and metrics["nonpad_tokens"] > 0 and "collator" in metrics["token_source"]
    assert (spec["method"], spec["rank"], spec["alpha"]) == ("rslora", 8, 16.0)
    assert sorted(spec["targets"]) == ["k_proj", "q_proj"] and spec["micro_batch"] == 2
    assert all("lorabench/wall_time_s" in log for log in capture.logs if "loss" in log)
    final = capture.logs[-1]
    assert "train_runtime" in final and final["lorabench/tokens_per_s_nonpad"] == metrics["tokens_per_s_nonpad"]

    capsys.readouterr()
    assert main(["report", str(tmp_path / "results"), "--out", str(tmp_path / "report"), "--no-plots"]) == 0
    assert "llama-rslora-r8-16bit" in (tmp_path / "report" / "report.md").read_text()
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "dataset: {tokens: 1000000}\nself_hosted:\n  - {name: sft, results: results/sft, usd_per_gpu_hour: 0.1}\n"
        "services: []\nreferences: []\n"
    )
    capsys.readouterr()
    assert main(["cost", str(scenario), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["provenance"]["time_s"]["kind"] == "measured"
