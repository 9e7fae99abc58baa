"""What padding to the sequence length costs: non-pad tokens/s for pad_to_max vs longest vs length_grouped.

    python benchmarks/padding.py [STEPS]

FinLoRA's Axolotl config pads every batch to sequence_len. Runs on FinLoRA's fpb_test.jsonl (short sentiment
prompts) and financebench_train.jsonl (long contexts) with `tiny`, LoRA r8, batch 8; ratios are vs pad_to_max.
"""

from __future__ import annotations

import sys

from _common import FINLORA, run

CASES = [("fpb_test.jsonl", 256), ("financebench_train.jsonl", 1024)]


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"tiny LoRA r8, batch 8, {steps} steps each, CPU; non-pad tokens/s (padded share of computed tokens)")
    for name, seq_len in CASES:
        path = FINLORA / name
        rates = {}
        for batching in ("pad_to_max", "longest", "length_grouped"):
            record = run(
                {"model": "tiny", "seq_len": seq_len, "micro_batch": 8},
                dataset=str(path),
                max_steps=steps,
                warmup_steps=2,
                batching=batching,
            )
            m = record["metrics"]
            rates[batching] = m["tokens_per_s_nonpad"]
            pad_share = 1 - m["nonpad_tokens"] / m["padded_tokens"]
            print(
                f"  {name:26s} seq {seq_len:5d} {batching:15s} {m['tokens_per_s_nonpad']:9,.0f} tok/s "
                f"({100 * pad_share:4.1f}% padding)"
            )
        base = rates["pad_to_max"]
        print(
            f"  {name}: longest {rates['longest'] / base:.2f}x, length_grouped {rates['length_grouped'] / base:.2f}x "
            "vs pad_to_max"
        )


if __name__ == "__main__":
    main()
