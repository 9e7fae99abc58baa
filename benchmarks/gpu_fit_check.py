"""Check `lorabench fit` on a real GPU: does the predicted largest batch / sequence length really fit?

    PYTHONPATH=src python benchmarks/gpu_fit_check.py --out DIR            # on a CUDA machine, ~3 min on one H200
    PYTHONPATH=src python benchmarks/gpu_fit_check.py --out DIR --dry-run  # the same code path, `tiny` on the CPU

A big GPU stands in for a smaller catalog card: ``torch.cuda.set_per_process_memory_fraction`` caps what PyTorch's
caching allocator may reserve at the card's VRAM minus what this process already holds outside the allocator
(CUDA context, cuBLAS handles; read from NVML before the model is loaded). For each case the formula engine's
``largest_fitting`` picks the value; the script then trains Llama-3.1-8B (random weights, LoRA r8 on q/k/v, gradient
checkpointing, AdamW; a few real steps) at that value and at a larger one, and records status (ok / oom),
``torch.cuda.max_memory_allocated`` and ``max_memory_reserved`` beside the predicted device total. It also measures
two configurations the first H200 run did not cover (no gradient checkpointing at 16 and 4 bits) for
``benchmarks/gpu_compare.py``. Everything goes to DIR/gpu_fit_check.json and DIR/<name>/result.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from gpu_validate import _load_base, _measure, _prepare

# (card, bits, searched dimension, fixed micro batch, fixed seq len)
CASES: list[tuple[str, int, str, int, int]] = [
    ("A5000", 4, "batch", 4, 512),
    ("A100-40GB", 16, "batch", 4, 512),
    ("L4", 4, "seq_len", 4, 512),
]
NO_CKPT = [(16, 4, 512), (4, 4, 512)]  # extra validation points: (bits, batch, seq) without checkpointing


def _nvml_used(index: int) -> int | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-fit-check")))
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--only", help="comma-separated cards to check (default: every case)")
    parser.add_argument("--no-extra", action="store_true", help="skip the no-checkpointing validation points")
    parser.add_argument("--dry-run", action="store_true", help="`tiny` on the CPU, to test this script anywhere")
    args = parser.parse_args()

    from peft import get_peft_model

    from lorabench.hardware import resolve_gpu
    from lorabench.measure.aggregate import combine_ranks_metrics
    from lorabench.measure.environment import describe_environment
    from lorabench.measure.record import write_run_record
    from lorabench.methods import lora_config
    from lorabench.models import resolve_model
    from lorabench.predict.fit import device_total, largest_fitting
    from lorabench.spec import parse_spec

    if args.dry_run:
        args.model, device = "tiny", torch.device("cpu")
    elif not torch.cuda.is_available():
        print("no CUDA device; use --dry-run to test the script on the CPU", file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda", 0)
        torch.zeros(1, device=device)  # create the context before reading what it holds
        torch.cuda.empty_cache()
    started = time.perf_counter()
    model_ref = resolve_model(args.model)
    vocab = int(model_ref.config.vocab_size)
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    total_memory = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else None
    outside_allocator = _nvml_used(0) if device.type == "cuda" else None
    env = describe_environment(device)
    cache = {bits: Path(tempfile.mkdtemp(prefix=f"lorabench-fit-{bits}-")) for bits in (16, 4)}
    rows: list[dict[str, Any]] = []

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {text}", flush=True)

    def spec_for(bits: int, batch: int, seq: int, ckpt: bool = True, card: str | None = None) -> Any:
        return parse_spec(
            {
                "model": args.model,
                "method": "lora",
                "bits": bits,
                "rank": 8,
                "targets": "q_proj,k_proj,v_proj",
                "micro_batch": batch,
                "seq_len": seq,
                "grad_ckpt": ckpt,
                "hardware": {"gpu": card, "count": 1},
            }
        )

    def train(bits: int, spec: Any, name: str, cap_bytes: int | None) -> dict[str, Any]:
        if device.type == "cuda" and total_memory is not None:
            fraction = 1.0 if cap_bytes is None else max(0.01, min(1.0, cap_bytes / total_memory))
            torch.cuda.set_per_process_memory_fraction(fraction, device)
        base = _prepare(_load_base(model_ref, bits, device, cache[bits]), bits) if bits not in bases else bases[bits]
        bases[bits] = base
        if not spec.grad_ckpt:
            base.gradient_checkpointing_disable()
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model = get_peft_model(base, lora_config(spec))
        result = _measure(model, spec, args.steps, device, vocab)
        bases[bits] = model.unload()
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.set_per_process_memory_fraction(1.0, device)
        metrics = combine_ranks_metrics([result["metrics"]], None)
        record = {
            "status": result["status"],
            "message": result["message"],
            "spec": spec.model_dump(mode="json"),
            "options": {"steps": args.steps, "warmup_steps": 2, "data": "random token ids, no padding"},
            "model": {"key": model_ref.key, "display_name": model_ref.display_name, "weights": "random"},
            "environment": env,
            "world_size": 1,
            "engine": {"loop": "benchmarks/gpu_fit_check.py (transformers + PEFT + bitsandbytes)"},
            "allocator_cap_bytes": cap_bytes,
            "steps": args.steps,
            "metrics": metrics,
            "per_rank": [result["metrics"]],
        }
        write_run_record(args.out / name, record)
        log(
            f"{name}: {result['status']} allocated {(metrics.get('peak_allocated_bytes') or 0) / 1e9:.2f} GB "
            f"reserved {(metrics.get('peak_reserved_bytes') or 0) / 1e9:.2f} GB"
            + (f" (cap {cap_bytes / 1e9:.2f} GB)" if cap_bytes else "")
        )
        return {
            "name": name,
            "status": result["status"],
            "max_memory_allocated_bytes": metrics.get("peak_allocated_bytes"),
            "max_memory_reserved_bytes": metrics.get("peak_reserved_bytes"),
            "nvml_peak_used_bytes": metrics.get("nvml_peak_used_bytes"),
        }

    bases: dict[int, Any] = {}
    try:
        wanted = {case[1] for case in CASES if not args.only or case[0] in args.only.split(",")}
        for bits in sorted(wanted | (set() if args.no_extra else {16, 4}), reverse=True):  # one base per precision
            for card_name, case_bits, what, batch, seq in CASES:
                if case_bits != bits or (args.only and card_name not in args.only.split(",")):
                    continue
                card = resolve_gpu(card_name)
                spec = spec_for(bits, batch, seq, card=card.key)
                found = largest_fitting(spec, card.key, "batch" if what == "batch" else "seq_len", max_value=4096)
                cap = None
                if device.type == "cuda":
                    cap = card.vram_bytes - (outside_allocator or 0)
                value = found.value or 1
                above = value + 1 if what == "batch" else int(value * 1.1) + 1
                trials = []
                for probe in (value, above):
                    b, s = (probe, seq) if what == "batch" else (batch, probe)
                    if args.dry_run:
                        b, s = min(b, 8), min(s, 256)
                    trial = train(bits, spec_for(bits, b, s, card=card.key), f"fit-{card.key}-{bits}bit-b{b}-s{s}", cap)
                    trial["predicted_device_total_bytes"] = device_total(spec_for(bits, b, s, card=card.key), b, s)
                    trial["probe"] = probe
                    trials.append(trial)
                rows.append(
                    {
                        "card": card.key,
                        "vram_bytes": card.vram_bytes,
                        "allocator_cap_bytes": cap,
                        "bits": bits,
                        "searched": what,
                        "fixed_micro_batch": batch if what == "seq_len" else None,
                        "fixed_seq_len": seq if what == "batch" else None,
                        "predicted_largest": found.value,
                        "predicted_largest_device_total_bytes": found.device_total_bytes,
                        "trials": trials,
                    }
                )
            for nb, batch, seq in NO_CKPT:
                if nb != bits or args.no_extra:
                    continue
                spec = spec_for(bits, batch, seq, ckpt=False)
                trial = train(bits, spec, f"{spec.label()}-b{batch}-s{seq}-nockpt", None)
                trial.update({"bits": bits, "batch": batch, "seq_len": seq, "grad_ckpt": False})
                rows.append({"validation": trial})
            bases.pop(bits, None)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    finally:
        for path in cache.values():
            shutil.rmtree(path, ignore_errors=True)
    summary = {
        "schema": "lorabench.gpu_fit_check",
        "schema_version": 1,
        "gpu": gpu_name,
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model_ref.display_name,
        "weights": "random, built from the config",
        "total_memory_bytes": total_memory,
        "outside_allocator_bytes": outside_allocator,
        "cap_rule": "set_per_process_memory_fraction((card VRAM - NVML used before loading) / total memory)",
        "environment": env,
        "elapsed_s": time.perf_counter() - started,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_fit_check.json").write_text(json.dumps(summary, indent=2))
    log(f"done -> {args.out}/gpu_fit_check.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
