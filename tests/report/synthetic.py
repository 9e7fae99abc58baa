"""Synthetic records in lorabench's schemas (run, estimate, cost), shaped like what the commands write.

Figures follow Llama-3.1-8B as lorabench accounts it (16.06 GB of bf16 base weights, 9.09 GB at 8-bit, 5.70 GB at
4-bit; LoRA r8 on q/k/v = 4,718,592 fp32 parameters) and the FinLoRA seed's memory table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lorabench.cost.scenario import CostRow
from lorabench.report.sources import cost_record
from lorabench.spec import RunSpec

BASE_BYTES = {16: 16_060_523_008, 8: 9_086_706_176, 4: 5_702_540_672}
BASE_PARAMS = 8_030_261_248
LORA_PARAMS = {8: 4_718_592, 4: 2_359_296}
GB = 1_000_000_000


def spec(model: str = "llama-3.1-8b", **fields: Any) -> dict[str, Any]:
    """A full RunSpec as records store it."""
    return RunSpec(model=model, **fields).model_dump(mode="json")


def estimate(
    *,
    model: str = "llama-3.1-8b",
    display_name: str = "Llama-3.1-8B",
    rank: int = 8,
    bits: int = 16,
    batch: int = 4,
    method: str = "lora",
    peak: float | None = None,
    breakdown: dict[str, float] | None = None,
    engine: str | None = "simulate",
    device_total: float | None = None,
) -> dict[str, Any]:
    """An estimate record; with ``peak`` it carries the memory engine's fields too."""
    trainable = LORA_PARAMS.get(rank, rank * 589_824)
    adapter = trainable * 4
    record: dict[str, Any] = {
        "schema": "lorabench.estimate",
        "schema_version": 1,
        "lorabench_version": "0.1.0",
        "spec": spec(model, method=method, bits=bits, rank=rank, micro_batch=batch),
        "model": {"key": model, "display_name": display_name, "config_source": "https://example.org/config.json"},
        "base_params": BASE_PARAMS,
        "trainable_params": trainable,
        "trainable_breakdown": {"lora_params": trainable, "dora_magnitude_params": 0},
        "trainable_percent": 100.0 * trainable / BASE_PARAMS,
        "adapter_bytes": adapter,
        "adapter_dtype": "float32",
        "base_weights_bytes": BASE_BYTES[bits],
        "quant_constant_bytes": 0,
        "weights_bytes": BASE_BYTES[bits] + adapter,
        "nominal_weights_bytes": BASE_PARAMS * bits // 8 + adapter,
        "weights_bytes_by_bits": {str(b): v + adapter for b, v in BASE_BYTES.items()},
        "components": [],
        "provenance": {},
    }
    if peak is not None:
        record.update(
            peak_allocated_bytes=peak,
            breakdown=breakdown if breakdown is not None else {},
            device_total_bytes=device_total if device_total is not None else peak + 0.6 * GB,
            engine=engine,
        )
    return record


def split(peak: float, bits: int) -> dict[str, float]:
    """A plausible breakdown that sums to ``peak``."""
    weights = float(BASE_BYTES[bits])
    rest = peak - weights
    return {
        "weights": weights,
        "adapter": 0.002 * rest,
        "gradients": 0.002 * rest,
        "optimizer_state": 0.004 * rest,
        "activations": 0.7 * rest,
        "temporaries": 0.292 * rest,
    }


def run(
    *,
    model: str = "llama-3.1-8b",
    display_name: str = "Llama-3.1-8B",
    rank: int = 8,
    bits: int = 16,
    batch: int = 4,
    method: str = "lora",
    status: str = "ok",
    peak: float | None = None,
    wall_time_s: float = 60.0,
    tokens_per_s: float | None = 2000.0,
    dataset: str = "synthetic:sentiment",
    counter: str = "torch.cuda.max_memory_allocated",
    trainable: int | None = None,
    reserved: float | None = None,
    device: str = "cuda",
) -> dict[str, Any]:
    """A run record (``result.json``) as the runner writes it."""
    trainable = trainable if trainable is not None else LORA_PARAMS.get(rank, rank * 589_824)
    return {
        "schema": "lorabench.run",
        "schema_version": 1,
        "created_utc": "2026-11-28T13:53:38+00:00",
        "status": status,
        "message": None if status == "ok" else "CUDA out of memory",
        "spec": spec(model, method=method, bits=bits, rank=rank, micro_batch=batch),
        "options": {"dataset": dataset, "max_steps": 20},
        "model": {"key": model, "display_name": display_name, "config_source": "https://example.org/config.json"},
        "data": {"dataset": dataset, "records": 256},
        "environment": {"device_type": device, "device_names": ["NVIDIA H200" if device == "cuda" else "AMD EPYC"]},
        "world_size": 1,
        "trainable_params": trainable if status == "ok" else None,
        "metrics": {
            "device": device,
            "wall_time_s": wall_time_s,
            "tokens_per_s_nonpad": tokens_per_s if status == "ok" else None,
            "peak_allocated_bytes": peak if status == "ok" else None,
            "peak_reserved_bytes": reserved if status == "ok" else None,
            "counters": {"wall_time_s": "time.perf_counter", "peak_allocated_bytes": counter},
            "gpu_hours": wall_time_s / 3600,
            "cost_usd": None,
        },
    }


def cost_rows() -> list[CostRow]:
    """The seed's cost comparison as ``lorabench cost`` computes it (hours given; catalog prices)."""
    from lorabench.cost import evaluate, load_scenario, packaged_catalog

    scenario = Path(__file__).resolve().parents[2] / "examples" / "finlora_seed_cost.yaml"
    return evaluate(load_scenario(scenario), packaged_catalog())


def cost(rows: list[CostRow] | None = None) -> dict[str, Any]:
    """A cost record."""
    return cost_record(rows if rows is not None else cost_rows())


def write(folder: Path, name: str, record: Any) -> Path:
    """Write a record as JSON under ``folder`` (sub-folders created)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1), "utf-8")
    return path


# the FinLoRA seed's GPU memory table, in GB: (rank, bits) -> (batch 4, batch 8)
SEED_MEMORY = {
    (8, 16): (30.91, 30.91),
    (8, 8): (11.41, 11.81),
    (8, 4): (8.26, 8.65),
    (4, 16): (30.90, 30.90),
    (4, 8): (11.40, 11.78),
    (4, 4): (8.25, 8.61),
}


def seed_folder(folder: Path) -> Path:
    """A results folder like the demo's: 16-bit rows measured, 8/4-bit predicted, plus the seed's cost record.

    The Llama-3.1-8B 16-bit configurations are runs (measured), the 8 and 4-bit ones estimates with a breakdown
    (predicted); every configuration also has a plain estimate for its weights. A small ``tiny`` model has runs on
    the CPU at two batch sizes (its own section and throughput plot), and unrelated JSON and text files lie around.
    """
    for (rank, bits), figures in SEED_MEMORY.items():
        for batch, gb in zip((4, 8), figures, strict=True):
            peak = gb * GB
            if bits == 16:
                write(folder, f"runs/r{rank}-b{batch}/result.json", run(rank=rank, bits=bits, batch=batch, peak=peak))
                write(folder, f"estimates/r{rank}-{bits}-b{batch}.json", estimate(rank=rank, bits=bits, batch=batch))
            else:
                record = estimate(rank=rank, bits=bits, batch=batch, peak=peak, breakdown=split(peak, bits))
                write(folder, f"estimates/r{rank}-{bits}-b{batch}.json", record)
    for batch, tps in ((4, 1800.0), (8, 3100.0)):
        record = run(
            model="tiny",
            display_name="tiny (Llama architecture, 4 layers)",
            batch=batch,
            peak=77_456_904 * batch / 4,
            wall_time_s=3.0,
            tokens_per_s=tps,
            counter="torch.profiler(profile_memory=True): CPU allocator events since start, running peak",
            trainable=40_960,
            device="cpu",
        )
        write(folder, f"runs/tiny-b{batch}/result.json", record)
    write(folder, "cost/seed.json", cost())
    write(folder, "runs/r8-b4/adapter/adapter_config.json", {"r": 8, "peft_type": "LORA"})
    (folder / "notes.txt").write_text("not a record", "utf-8")
    return folder
