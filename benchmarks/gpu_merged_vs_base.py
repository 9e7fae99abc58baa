"""Is a merged LoRA model as fast as its base? Interleaved timing of base, a copy of the base, and merged.

    PYTHONPATH=src python benchmarks/gpu_merged_vs_base.py --out DIR            # CUDA, ~1.5 min on one H200
    PYTHONPATH=src python benchmarks/gpu_merged_vs_base.py --out DIR --dry-run  # `tiny` on the CPU

`lorabench infer` measures its variants one after another (base, unmerged, merged), so a drift of the machine
during the run (clocks, other processes, allocator state) lands on one variant. Here three models live side by side
on the device: the base, an identical copy of it (the noise floor: the same weights in other memory), and the base
merged with a random LoRA r8 q/k/v adapter (PEFT ``merge_and_unload``); each round times one greedy generation of
each, in rotating order, with :func:`lorabench.infer.timing.timed_generate` (CUDA events). DIR/merged_vs_base.json
holds every round's time per output token and the medians.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "merged-vs-base")))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from lorabench.infer.timing import timed_generate
    from lorabench.models import resolve_model
    from lorabench.models.build import quiet_hf

    started = time.perf_counter()
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        print("no CUDA device; use --dry-run", file=sys.stderr)
        return 2
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    if not cuda:
        torch.set_num_threads(1)
    ref = resolve_model("llama-3.1-8b" if cuda else "tiny")
    torch.manual_seed(0)
    with quiet_hf(), device:
        base = AutoModelForCausalLM.from_config(ref.config, dtype=torch.bfloat16).eval()
    copy_of_base = copy.deepcopy(base).eval()
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj"], init_lora_weights=False)
    with quiet_hf():
        merged = get_peft_model(copy.deepcopy(base), lora).merge_and_unload().eval()
    models: dict[str, Any] = {"base": base, "base-copy": copy_of_base, "merged": merged}
    cells = [(1, 128, 64), (8, 512, 64)] if cuda else [(1, 32, 16), (4, 64, 16)]
    generator = torch.Generator().manual_seed(0)
    results: dict[str, dict[str, list[float]]] = {}
    names = list(models)
    with torch.no_grad():
        for batch, prompt, new in cells:
            key = f"b{batch}-p{prompt}-n{new}"
            ids = torch.randint(10, int(ref.config.vocab_size), (batch, prompt), generator=generator).to(device)
            for model in models.values():  # warm-up, not counted
                timed_generate(model, ids, new)
            per: dict[str, list[float]] = {name: [] for name in names}
            for round_ in range(args.rounds):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    timing = timed_generate(models[name], ids, new)
                    per[name].append(timing.time_per_output_token_s or 0.0)
            results[key] = per
            medians = {name: statistics.median(v) for name, v in per.items()}
            print(
                f"{key}: "
                + ", ".join(f"{n} {m * 1e3:.2f} ms/token" for n, m in medians.items())
                + f"; merged/base {medians['merged'] / medians['base']:.3f}, copy/base "
                f"{medians['base-copy'] / medians['base']:.3f}",
                flush=True,
            )
    summary = {
        "schema": "lorabench.merged_vs_base",
        "schema_version": 1,
        "device": torch.cuda.get_device_name(device) if cuda else "cpu (dry run)",
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": ref.display_name,
        "weights": "random, bf16",
        "clock": "CUDA events around timed_generate's loop" if cuda else "time.perf_counter",
        "order": "rotating per round (base, base-copy, merged)",
        "time_per_output_token_s": results,
        "medians_s": {k: {n: statistics.median(v) for n, v in per.items()} for k, per in results.items()},
        "created_by": "benchmarks/gpu_merged_vs_base.py",
        "elapsed_s": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "merged_vs_base.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
