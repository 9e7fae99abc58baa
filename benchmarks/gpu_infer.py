"""GPU inference benchmark: Llama-3.1-8B (random weights, bf16) with a random LoRA r8 q/k/v adapter on one GPU.

    PYTHONPATH=src python benchmarks/gpu_infer.py --out DIR            # on a CUDA machine, < 4 min on one H200
    PYTHONPATH=src python benchmarks/gpu_infer.py --out DIR --dry-run  # same code path, `tiny` on the CPU

Builds the catalog model from its config (random weights, no download), creates a random LoRA adapter with PEFT
(r8, alpha 16, q/k/v; ``init_lora_weights=False`` so the adapter changes the outputs) and saves it, then runs the
``lorabench infer`` grid: batch 1 and 8, prompt 128 and 512 tokens, 64 new tokens, for the base, the adapter
unmerged, merged, and the 4-bit NF4 base with and without the adapter. Each cell is a ``lorabench.infer`` record in
DIR (``lorabench report DIR`` renders them); DIR/gpu_infer.json holds the summary, the GPU name and the timings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if Path("/dev/shm").is_dir():  # the 4-bit load saves the random bf16 weights first: keep them in RAM
    os.environ.setdefault("TMPDIR", "/dev/shm")

import torch


def make_adapter(model_key: str, folder: Path, device: torch.device, seed: int) -> float:
    """Save a random LoRA r8 q/k/v adapter for ``model_key`` into ``folder``; returns seconds taken."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from lorabench.models import resolve_model
    from lorabench.models.build import quiet_hf

    start = time.perf_counter()
    ref = resolve_model(model_key)
    torch.manual_seed(seed)
    with quiet_hf(), device:
        base = AutoModelForCausalLM.from_config(ref.config, dtype=torch.bfloat16)
        config = LoraConfig(
            r=8,
            lora_alpha=16,
            target_modules=["q_proj", "k_proj", "v_proj"],
            lora_dropout=0.0,
            init_lora_weights=False,
            task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(base, config)
        for cfg in peft_model.peft_config.values():
            cfg.base_model_name_or_path = model_key
        peft_model.save_pretrained(folder, safe_serialization=True)
    del base, peft_model
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dry-run", action="store_true", help="tiny on the CPU, small grid (checks the code path)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-quant", action="store_true", help="skip the 4-bit variants (no bitsandbytes)")
    args = parser.parse_args(argv)

    from lorabench.infer.options import InferOptions
    from lorabench.infer.runner import run_inference

    cuda = torch.cuda.is_available()
    if not cuda and not args.dry_run:
        print("no CUDA device: run with --dry-run to check the code path on the CPU", file=sys.stderr)
        return 2
    quant = not args.no_quant and importlib.util.find_spec("bitsandbytes") is not None
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    model = "tiny" if args.dry_run else "llama-3.1-8b"
    grid: dict[str, Any] = (
        {"batch_sizes": (1, 2), "prompt_lens": (16, 32), "max_new_tokens": 8}
        if args.dry_run
        else {"batch_sizes": (1, 8), "prompt_lens": (128, 512), "max_new_tokens": 64}
    )
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lorabench-adapter-") as tmp:
        adapter = Path(tmp) / "adapter"
        adapter_s = make_adapter(model, adapter, device, seed=0)
        print(f"adapter ready in {adapter_s:.1f} s", flush=True)
        options = InferOptions(
            model=model,
            out=args.out,
            adapters=(adapter,),
            warmup=args.warmup,
            repeats=args.repeats,
            bits=4 if quant else 16,
            random_weights=True,
            cpu_threads=None if cuda else 1,
            **grid,
        )

        def progress(line: str) -> None:
            print(f"[{time.perf_counter() - started:6.1f} s] {line}", flush=True)

        summary = run_inference(options, progress=progress)
    total_s = time.perf_counter() - started
    summary.update(
        {
            "gpu": torch.cuda.get_device_name(device) if cuda else None,
            "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "total_s": total_s,
            "adapter_s": adapter_s,
            "quantized_variants": quant,
            "dry_run": args.dry_run,
        }
    )
    (args.out / "gpu_infer.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"{'variant':15} {'batch':>5} {'prompt':>6} {'TTFT ms':>8} {'ms/tok':>7} {'tok/s':>9} {'J/tok':>7} {'$/1M':>7}"
    )
    for row in summary["rows"]:
        if row["status"] != "ok":
            print(f"{row['variant']:15} {row['batch_size']:>5} {row['prompt_len']:>6} {row['status']}")
            continue

        def num(value: float | None, fmt: str, scale: float = 1.0) -> str:
            return "n/a" if value is None else format(value * scale, fmt)

        print(
            f"{row['variant']:15} {row['batch_size']:>5} {row['prompt_len']:>6} "
            f"{num(row['ttft_s_p50'], '8.1f', 1e3)} {num(row['time_per_output_token_s_mean'], '7.2f', 1e3)} "
            f"{num(row['output_tokens_per_s'], '9.1f')} {num(row['energy_per_output_token_j'], '7.3f')} "
            f"{num(row['cost_per_1m_output_tokens_usd'], '7.2f')}"
        )
    for item in summary["slowdown"]:
        print(
            f"slowdown {item['variant']} vs {item['reference']} b{item['batch_size']} p{item['prompt_len']}: "
            f"{item['slowdown_pct']:+.1f}%"
        )
    for item in summary["skipped"]:
        print(f"skipped {item['variant']}: {item['reason']}")
    print(f"total {total_s:.1f} s; records in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
