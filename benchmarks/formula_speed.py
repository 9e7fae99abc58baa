"""Print how long the formula engine takes per prediction, over a sweep of thousands of configurations.

Usage: python benchmarks/formula_speed.py [--model llama-3.1-8b] [--configs 2000]

The first call for a model builds its module graph on the meta device (timed on its own, once per model, method,
rank and targets); the sweep then predicts every combination of bits x rank x batch x seq len x checkpointing x
optimizer and reports the median and the slowest call, and the largest-batch search of `lorabench fit`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--configs", type=int, default=2000)
    args = parser.parse_args()

    from lorabench.predict.fit import largest_fitting
    from lorabench.predict.memory.formula import formula_memory
    from lorabench.spec import parse_spec

    specs = {}
    started = time.perf_counter()
    for bits, rank, ckpt, optimizer in itertools.product(
        (16, 8, 4), (4, 8), (True, False), ("adamw_torch", "adamw_8bit")
    ):
        spec = parse_spec({"model": args.model, "bits": bits, "rank": rank, "grad_ckpt": ckpt, "optimizer": optimizer})
        formula_memory(spec)  # builds (and caches) the module graph
        specs[(bits, rank, ckpt, optimizer)] = spec
    print(f"graphs and static components for {len(specs)} specs: {time.perf_counter() - started:.1f} s (once)")

    grid = list(itertools.product(specs.values(), (1, 2, 4, 8, 16, 32), (128, 256, 512, 1024, 2048, 4096)))
    grid = (grid * (args.configs // len(grid) + 1))[: args.configs]
    times = []
    t0 = time.perf_counter()
    for spec, batch, seq in grid:
        times.append(formula_memory(spec, "cuda", micro_batch=batch, seq_len=seq).seconds)
    wall = time.perf_counter() - t0
    print(
        f"{len(grid)} predictions in {wall:.3f} s: median {statistics.median(times) * 1e3:.3f} ms, "
        f"p99 {sorted(times)[int(0.99 * len(times))] * 1e3:.3f} ms, max {max(times) * 1e3:.3f} ms per call "
        "(target <= 1 ms)"
    )
    spec = specs[(4, 8, True, "adamw_torch")]
    t0 = time.perf_counter()
    found = largest_fitting(spec, "A5000", "batch")
    print(
        f"lorabench fit search (4-bit r8 ckpt, A5000, largest batch = {found.value}): "
        f"{(time.perf_counter() - t0) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
