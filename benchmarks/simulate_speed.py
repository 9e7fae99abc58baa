"""Print how long the memory simulation takes for a full Llama-3.1-8B LoRA step (batch 4, seq 512).

Usage: python benchmarks/simulate_speed.py [--model llama-3.1-8b] [--batch 4] [--seq-len 512] [--device cuda]

Library imports (transformers, PEFT, bitsandbytes: several seconds on a small machine) are timed on their own;
each configuration is then simulated twice, cold (first use of the model classes) and warm.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = parser.parse_args()

    started = time.perf_counter()
    import bitsandbytes  # noqa: F401
    import peft  # noqa: F401
    import torch
    import transformers  # noqa: F401

    from lorabench.predict.memory.simulation.engine import simulate
    from lorabench.spec import parse_spec

    imports_s = time.perf_counter() - started
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; library imports {imports_s:.1f} s")
    print(f"{'config':<34} {'run':<5} {'seconds':>8} {'peak GB':>9}  phase")
    for bits, method in ((16, "lora"), (4, "qlora")):
        spec = parse_spec({"model": args.model, "bits": bits, "method": method, "rank": 8})
        label = f"{args.model} {method} r8 {bits}-bit b{args.batch} s{args.seq_len}"
        for run in ("cold", "warm"):
            result = simulate(spec, args.device, micro_batch=args.batch, seq_len=args.seq_len)
            peak_gb = result.peak_allocated_bytes / 1e9
            print(f"{label:<34} {run:<5} {result.seconds:>8.2f} {peak_gb:>9.3f}  {result.peak_phase}")


if __name__ == "__main__":
    main()
