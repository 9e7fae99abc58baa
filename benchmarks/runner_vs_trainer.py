"""lorabench's runner vs a plain Hugging Face Trainer + PEFT on the same spec and data (tokens/s ratio).

    python benchmarks/runner_vs_trainer.py [STEPS]

Both sides: tiny, LoRA r8 on q/k/v, bf16 base, batch 4, the same synthetic sentiment examples padded to the
longest of each batch, AdamW, measured by the same tracker (lorabench's ResourceCallback on the Trainer side),
non-padded tokens/s over the steps after warm-up. Ratio = runner / Trainer; target >= 1.0.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from _common import run

SPEC = {"model": "tiny", "seq_len": 128, "micro_batch": 4, "dropout": 0.05}


def trainer_tokens_per_s(steps: int) -> float:
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from lorabench.data import build_tokenizer, encode_examples, synthetic_dataset
    from lorabench.measure.callback import ResourceCallback
    from lorabench.methods import lora_config
    from lorabench.models import resolve_model
    from lorabench.models.load import load_for_training
    from lorabench.spec import parse_spec

    spec = parse_spec(SPEC)
    records = synthetic_dataset("sentiment", 256, seed=0)
    tokenizer = build_tokenizer([r["context"] + r["target"] for r in records], vocab_size=4096)
    tokenizer.padding_side = "right"
    examples = encode_examples(records, tokenizer, spec.seq_len)
    features = [
        {"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels} for e in examples
    ]
    model = get_peft_model(
        load_for_training(resolve_model("tiny"), spec, torch.device("cpu"), True, 0), lora_config(spec)
    )
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=4,
            max_steps=steps,
            learning_rate=2e-4,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            logging_steps=10_000,
            lr_scheduler_type="constant",
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=features,
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
        )
        callback = ResourceCallback(out=Path(tmp) / "run", warmup_steps=2).install(trainer)
        trainer.train()
    assert callback.record is not None
    return float(callback.record["metrics"]["tokens_per_s_nonpad"])


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    ours, theirs = [], []
    for _ in range(2):  # interleaved
        ours.append(
            run(SPEC, max_steps=steps, warmup_steps=2, examples=256, batching="longest")["metrics"][
                "tokens_per_s_nonpad"
            ]
        )
        theirs.append(trainer_tokens_per_s(steps))
    a, b = max(ours), max(theirs)
    print(f"tiny LoRA r8, batch 4, {steps} steps, best of 2 interleaved runs each, CPU")
    print(f"non-pad tokens/s: lorabench runner {a:,.0f}, HF Trainer + PEFT {b:,.0f}")
    print(f"ratio runner / Trainer: {a / b:.2f} (target >= 1.0)")


if __name__ == "__main__":
    main()
