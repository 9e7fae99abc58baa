"""Join GPU measurements with lorabench's predictions: the error table for the README.

    PYTHONPATH=src python benchmarks/gpu_compare.py results/gpu/h200-2026-11-28

Reads DIR/gpu_validation.json (from benchmarks/gpu_validate.py), predicts every configuration with the simulate
engine for CUDA (batches of random token ids without padding, as measured) and the formula engine, and writes
DIR/compare.json plus a Markdown table on stdout. Measured: torch.cuda.max_memory_allocated / max_memory_reserved
and NVML used; predicted: peak allocated, and the device total (peak + allocator slack + CUDA context).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from _common import REPO  # noqa: F401  (sets the offline environment)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("results/gpu/h200-2026-11-28")
    from lorabench.models import resolve_model
    from lorabench.predict.memory.device import device_totals, logits_bytes
    from lorabench.predict.memory.simulation.engine import simulate
    from lorabench.spec import parse_spec

    data = json.loads((folder / "gpu_validation.json").read_text())
    vocab = int(resolve_model("llama-3.1-8b").config.vocab_size)
    rows, errors = [], []
    for row in data["rows"]:
        spec = parse_spec(
            {
                "model": "llama-3.1-8b",
                "rank": row["rank"],
                "bits": row["bits"],
                "micro_batch": row["batch"],
                "seq_len": row["seq_len"],
                "grad_ckpt": True,
            }
        )
        sim = simulate(spec, device="cuda", padding="packed")
        totals = device_totals(sim.breakdown, spec, 32, logits=logits_bytes(spec, vocab))
        measured = row["max_memory_allocated_bytes"]
        error = sim.peak_allocated_bytes / measured - 1
        errors.append(abs(error))
        rows.append(
            {
                **row,
                "predicted_peak_allocated_bytes": sim.peak_allocated_bytes,
                "predicted_device_total_bytes": totals.device_total_bytes,
                "error": error,
                "breakdown": sim.breakdown,
                "simulate_s": sim.seconds,
            }
        )
    summary = {"gpu": data["gpu"], "date_utc": data["date_utc"], "rows": rows}
    (folder / "compare.json").write_text(json.dumps(summary, indent=2))
    print(f"{data['model']} on {data['gpu']} ({data['date_utc'][:10]}), LoRA on q/k/v, gradient checkpointing, AdamW")
    print()
    print(
        "| config | measured allocated | predicted (simulate) | error | measured reserved | NVML used | "
        "predicted device total |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| r{r['rank']} {r['bits']}-bit b{r['batch']} s{r['seq_len']} | "
            f"{r['max_memory_allocated_bytes'] / 1e9:.2f} GB | {r['predicted_peak_allocated_bytes'] / 1e9:.2f} GB | "
            f"{100 * r['error']:+.1f}% | {r['max_memory_reserved_bytes'] / 1e9:.2f} GB | "
            f"{r['nvml_peak_used_bytes'] / 1e9:.2f} GB | {r['predicted_device_total_bytes'] / 1e9:.2f} GB |"
        )
    print()
    print(
        f"|error| median {100 * statistics.median(errors):.1f}%, max {100 * max(errors):.1f}% over {len(rows)} configs"
    )


if __name__ == "__main__":
    main()
