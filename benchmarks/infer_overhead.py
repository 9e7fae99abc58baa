"""Serving overhead of an unmerged LoRA adapter: base vs unmerged vs merged output tokens/s, one side-by-side run.

    PYTHONPATH=src python benchmarks/infer_overhead.py [--model tiny] [--threads 1] [--repeats 5]

Creates a random LoRA r8 q/k/v adapter with PEFT, runs the ``lorabench infer`` grid (batch 1 and 4, prompt 32 and
128 tokens, 16 new tokens) for base, unmerged and merged in one process, and prints each cell's output tokens/s and
the ratios unmerged/base and merged/base (merged should be ~1: same architecture; unmerged pays PEFT's extra LoRA
matmuls per adapted layer and token). Records are written into a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_infer import make_adapter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    from lorabench.infer.options import InferOptions
    from lorabench.infer.runner import run_inference

    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        adapter = Path(tmp) / "adapter"
        make_adapter(args.model, adapter, device, seed=0)
        summary = run_inference(
            InferOptions(
                model=args.model,
                out=Path(tmp) / "records",
                adapters=(adapter,),
                batch_sizes=(1, 4),
                prompt_lens=(32, 128),
                max_new_tokens=16,
                warmup=1,
                repeats=args.repeats,
                random_weights=True,
                cpu_threads=args.threads if device.type == "cpu" else None,
            )
        )
    tps = {(r["variant"], r["batch_size"], r["prompt_len"]): r["output_tokens_per_s"] for r in summary["rows"]}
    print(f"{args.model} on {summary['device']} (threads {torch.get_num_threads()}), repeats {args.repeats}")
    print(
        f"{'batch':>5} {'prompt':>6} {'base tok/s':>11} {'unmerged':>9} {'merged':>9} {'unm/base':>9} {'mrg/base':>9}"
    )
    ratios: dict[str, list[float]] = {"unmerged": [], "merged": []}
    for batch in (1, 4):
        for prompt in (32, 128):
            base, unm, mrg = (tps[(v, batch, prompt)] for v in ("base", "unmerged", "merged"))
            ratios["unmerged"].append(unm / base)
            ratios["merged"].append(mrg / base)
            print(f"{batch:>5} {prompt:>6} {base:>11.1f} {unm:>9.1f} {mrg:>9.1f} {unm / base:>9.2f} {mrg / base:>9.2f}")
    for name, values in ratios.items():
        print(f"mean {name}/base tokens/s ratio: {sum(values) / len(values):.2f}")
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
