"""GPU validation: measure the seed's memory matrix for Llama-3.1-8B (random weights) on a real GPU.

    PYTHONPATH=src python benchmarks/gpu_validate.py --out DIR            # on a CUDA machine, < 8 min on one H200
    PYTHONPATH=src python benchmarks/gpu_validate.py --out DIR --dry-run  # same code path, `tiny` on the CPU

For bits 16 / 8 / 4 (bitsandbytes LLM.int8 / NF4 + double quant, through transformers' real loading path), LoRA
r8 and r4 on q/k/v, batch 4 and 8 at seq 512, plus seq 1024 and 2048 for r8 4-bit batch 4: a few real training
steps (forward, backward, AdamW step; gradient checkpointing on, as FinLoRA's config) measured with lorabench's
ResourceTracker: torch.cuda.max_memory_allocated and max_memory_reserved (peaks reset at start) and NVML used
memory sampled in the background. Each configuration is written as a lorabench run record (DIR/<name>/result.json,
so `lorabench calibrate DIR` and `lorabench report DIR` read them) and summarised in DIR/gpu_validation.json with
the GPU name and date. Predictions are joined in afterwards on any machine (benchmarks/gpu_compare.py).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_record import random_weights_record

MATRIX = [(rank, batch, 512) for rank in (8, 4) for batch in (4, 8)]
EXTRA_SEQ = [(8, 4, 1024), (8, 4, 2048)]  # run for the 4-bit base only


def _configs(bits: int) -> list[tuple[int, int, int]]:
    return MATRIX + (EXTRA_SEQ if bits == 4 else [])


def _load_base(model_ref: Any, bits: int, device: torch.device, cache: Path) -> Any:
    from transformers import AutoModelForCausalLM

    from lorabench.methods import quantization_config
    from lorabench.models.build import quiet_hf
    from lorabench.spec import parse_spec

    spec = parse_spec({"model": model_ref.key, "bits": bits})
    with quiet_hf():
        if bits == 16:
            torch.manual_seed(0)
            with device:
                return AutoModelForCausalLM.from_config(model_ref.config, dtype=torch.bfloat16)
        if not (cache / "config.json").exists():
            torch.manual_seed(0)
            with device:
                random_model = AutoModelForCausalLM.from_config(model_ref.config, dtype=torch.bfloat16)
            random_model.save_pretrained(cache, safe_serialization=True)
            del random_model
            gc.collect()
            torch.cuda.empty_cache() if device.type == "cuda" else None
        return AutoModelForCausalLM.from_pretrained(
            cache,
            dtype=torch.bfloat16,
            quantization_config=quantization_config(spec),
            device_map={"": device},
            use_safetensors=True,
            local_files_only=True,
        )


def _prepare(base: Any, bits: int) -> Any:
    from peft import prepare_model_for_kbit_training

    if bits < 16:
        return prepare_model_for_kbit_training(base, use_gradient_checkpointing=True)
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    base.enable_input_require_grads()
    return base


def _measure(model: Any, spec: Any, steps: int, device: torch.device, vocab: int) -> dict[str, Any]:
    from lorabench.measure.trackers import ResourceTracker

    model.train()  # from_pretrained returns eval mode, where HF skips gradient checkpointing
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    tracker = ResourceTracker(warmup_steps=2, devices=[device.index or 0] if device.type == "cuda" else None)
    generator = torch.Generator(device="cpu").manual_seed(0)
    status, message = "ok", None
    tracker.start()
    try:
        for _ in range(steps):
            tracker.step_begin()
            ids = torch.randint(4, vocab, (spec.micro_batch, spec.seq_len), generator=generator).to(device)
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            tokens = spec.micro_batch * spec.seq_len
            tracker.step_end(padded_tokens=tokens, nonpad_tokens=tokens, samples=spec.micro_batch)
    except torch.OutOfMemoryError as exc:
        status, message = "oom", f"OutOfMemoryError: {exc}"[:1000]
        optimizer.zero_grad(set_to_none=True)
        tracker.step_end(padded_tokens=0, nonpad_tokens=0, samples=0)  # close the step the OOM interrupted
    metrics = tracker.stop()
    del optimizer, params
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"status": status, "message": message, "metrics": metrics}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-validation")))
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--dry-run", action="store_true", help="`tiny` on the CPU, to test this script anywhere")
    args = parser.parse_args()

    from peft import get_peft_model

    from lorabench.measure.aggregate import combine_ranks_metrics
    from lorabench.measure.environment import describe_environment
    from lorabench.measure.record import write_run_record
    from lorabench.methods import lora_config
    from lorabench.models import resolve_model
    from lorabench.spec import parse_spec

    if args.dry_run:
        args.model, device = "tiny", torch.device("cpu")
    elif not torch.cuda.is_available():
        print("no CUDA device; use --dry-run to test the script on the CPU", file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda", 0)
    started = time.perf_counter()
    model_ref = resolve_model(args.model)
    vocab = int(model_ref.config.vocab_size)
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    env = describe_environment(device)
    cache = Path(tempfile.mkdtemp(prefix="lorabench-gpu-validate-"))
    rows: list[dict[str, Any]] = []
    try:
        for bits in (16, 8, 4):
            t0 = time.perf_counter()
            base = _prepare(_load_base(model_ref, bits, device, cache), bits)
            print(
                f"[{time.perf_counter() - started:6.1f}s] {bits}-bit base ready ({time.perf_counter() - t0:.1f}s)",
                flush=True,
            )
            current_rank = None
            model = base
            for rank, batch, seq in _configs(bits):
                if rank != current_rank:
                    if current_rank is not None:
                        base = model.unload()
                    model = get_peft_model(base, lora_config(parse_spec({"model": args.model, "rank": rank})))
                    current_rank = rank
                spec = parse_spec(
                    {
                        "model": args.model,
                        "method": "lora",
                        "bits": bits,
                        "rank": rank,
                        "micro_batch": batch,
                        "seq_len": seq,
                        "grad_ckpt": True,
                        "hardware": {"gpu": gpu_name, "count": 1},
                    }
                )
                result = _measure(model, spec, args.steps, device, vocab)
                metrics = combine_ranks_metrics([result["metrics"]], None)
                name = f"{spec.label()}-b{batch}-s{seq}"
                record = random_weights_record(
                    result,
                    metrics,
                    spec,
                    model_ref,
                    env,
                    script="benchmarks/gpu_validate.py",
                    steps=args.steps,
                    warmup_steps=2,
                    trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
                )
                write_run_record(args.out / name, record)
                rows.append(
                    {
                        "name": name,
                        "bits": bits,
                        "rank": rank,
                        "batch": batch,
                        "seq_len": seq,
                        "status": result["status"],
                        "max_memory_allocated_bytes": metrics.get("peak_allocated_bytes"),
                        "max_memory_reserved_bytes": metrics.get("peak_reserved_bytes"),
                        "nvml_peak_used_bytes": metrics.get("nvml_peak_used_bytes"),
                        "median_step_s": sorted(metrics["step_times_s"][2:])[len(metrics["step_times_s"][2:]) // 2]
                        if metrics.get("step_times_s") and len(metrics["step_times_s"]) > 2
                        else None,
                        "counters": metrics.get("counters"),
                    }
                )
                print(
                    f"[{time.perf_counter() - started:6.1f}s] {name}: {result['status']} allocated "
                    f"{(metrics.get('peak_allocated_bytes') or 0) / 1e9:.2f} GB reserved "
                    f"{(metrics.get('peak_reserved_bytes') or 0) / 1e9:.2f} GB",
                    flush=True,
                )
            del model, base
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    summary = {
        "schema": "lorabench.gpu_validation",
        "schema_version": 1,
        "gpu": gpu_name,
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model_ref.display_name,
        "weights": "random, built from the config",
        "grad_ckpt": True,
        "optimizer": "torch.optim.AdamW",
        "environment": env,
        "elapsed_s": time.perf_counter() - started,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_validation.json").write_text(json.dumps(summary, indent=2))
    print(f"done in {summary['elapsed_s']:.0f}s -> {args.out}/gpu_validation.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
