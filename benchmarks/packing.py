"""What packing gains: non-pad tokens/s for pad_to_max vs longest vs packed, and the predicted peak of packed batches.

    python benchmarks/packing.py [STEPS] [throughput] [memory]

Part 1 trains `tiny` (LoRA r8, batch 8, seq 256) on FinLoRA's fpb_test.jsonl (short sentiment prompts) with
each batching mode through the measurement runner with the trackers off (wall clock and token counts only:
the CPU profiler's cost grows with every new batch shape, which differs between modes); each mode runs 2 and
2 + STEPS steps and the rate is the difference (setup cancels); ratios are vs pad_to_max. Part 2 measures
the CPU peak of two real training steps (PyTorch profiler allocator events) for a batch padded to seq_len
and for a packed batch (rows of whole examples, position ids restarting per example, no attention mask) and
compares both
with the simulation's prediction at seq_len (``simulate(device="cpu", padding="padded")``: transformers builds
a 4-D block mask from packed position ids just as it builds one from a padding mask).
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from _common import FINLORA, run

THROUGHPUT_MODES = ("pad_to_max", "longest", "packed")


def throughput(steps: int) -> None:
    path = FINLORA / "fpb_test.jsonl"
    print(f"tiny LoRA r8, batch 8, seq 256, {steps} steps each, CPU, {path.name}: non-pad tokens/s")
    rates = {}
    for batching in THROUGHPUT_MODES:
        records = [
            run(
                {"model": "tiny", "seq_len": 256, "micro_batch": 8},
                dataset=str(path),
                max_steps=n,
                warmup_steps=1,
                batching=batching,
                trackers=False,  # the CPU profiler's cost grows with new shapes, which differ between modes
            )
            for n in (2, 2 + steps)
        ]
        short, long = (r["metrics"] for r in records)
        # the same seeded order: the long run's last `steps` steps are the difference of the two runs
        nonpad = long["nonpad_tokens"] - short["nonpad_tokens"]
        padded = long["padded_tokens"] - short["padded_tokens"]
        rates[batching] = nonpad / (long["wall_time_s"] - short["wall_time_s"])
        print(
            f"  {batching:11s} {rates[batching]:9,.0f} tok/s ({100 * (1 - nonpad / padded):4.1f}% padding, "
            f"{records[1]['data']['batches_per_epoch']} batches/epoch)"
        )
    base = rates["pad_to_max"]
    print(f"  packed {rates['packed'] / base:.2f}x, longest {rates['longest'] / base:.2f}x vs pad_to_max")


def measured_peak(spec: Any, packed: bool) -> tuple[int, float]:
    """Static bytes + the peak of two real steps on CPU, and the share of non-pad tokens in the batch."""
    import torch

    from lorabench.data import build_tokenizer, collate, encode_examples, make_batches, model_inputs
    from lorabench.data.synthetic import synthetic_dataset
    from lorabench.measure.trackers.cpu_memory import CpuTensorMemory
    from lorabench.models import resolve_model
    from lorabench.models.build import quiet_hf
    from lorabench.models.load import load_for_training
    from lorabench.recipe import make_optimizer, prepare_for_training, training_step

    resolved = resolve_model(spec.model)
    records = synthetic_dataset("sentiment", 64, seed=0)
    tokenizer = build_tokenizer([r["context"] + r["target"] for r in records], 4096)
    examples = encode_examples(records, tokenizer, spec.seq_len)
    if packed:
        rows = make_batches(examples, spec.micro_batch, "packed", spec.seq_len)[0]
        batch = collate(rows, 0)
    else:
        batch = collate(examples[: spec.micro_batch], 0, pad_to=spec.seq_len)
    share = float(batch["attention_mask"].sum()) / batch["input_ids"].numel()
    gc.collect()
    with CpuTensorMemory() as setup, quiet_hf():
        base = load_for_training(resolved, spec, torch.device("cpu"), random_weights=True, seed=0)
        model = prepare_for_training(base, spec)
        del base
        model.train()
        optimizer = make_optimizer(spec, [p for p in model.parameters() if p.requires_grad])
        gc.collect()
    inputs = model_inputs(batch)
    with CpuTensorMemory() as steps, quiet_hf():
        for _ in range(2):
            training_step(model, [inputs], optimizer, spec.grad_accum)
    static, peak = setup.final_live_bytes, steps.result.value if steps.result else None
    assert static is not None and peak is not None, "the CPU memory counter returned no figure"
    del model, optimizer
    gc.collect()
    return int(static) + int(peak), share


def memory() -> None:
    from lorabench.predict.memory.simulation.engine import simulate
    from lorabench.spec import parse_spec

    print("tiny LoRA r8, seq 128, CPU: measured peak vs simulate(cpu, padded at seq_len)")
    for batch in (2, 4):
        spec = parse_spec({"model": "tiny", "seq_len": 128, "micro_batch": batch})
        predicted = simulate(spec, "cpu", padding="padded").peak_allocated_bytes
        for packed in (False, True):
            peak, share = measured_peak(spec, packed)
            label = "packed" if packed else "padded"
            print(
                f"  batch {batch} {label:6s} ({100 * share:5.1f}% real tokens): measured {peak / 1e6:8.3f} MB, "
                f"predicted {predicted / 1e6:8.3f} MB, error {100 * (predicted / peak - 1):+.2f}%"
            )


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    parts = sys.argv[2:] or ["throughput", "memory"]
    if "throughput" in parts:
        throughput(steps)
    if "memory" in parts:
        memory()


if __name__ == "__main__":
    main()
