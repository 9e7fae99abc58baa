"""ResourceCallback in a plain Hugging Face Trainer script (transformers + PEFT on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.integration


def test_callback_in_a_plain_trainer_script(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from lorabench.data import build_tokenizer, synthetic_dataset
    from lorabench.measure.callback import ResourceCallback
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
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        per_device_train_batch_size=4,
        max_steps=6,
        logging_steps=2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=features, data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True)
    )
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
    assert any("lorabench/wall_time_s" in h for h in trainer.state.log_history)
