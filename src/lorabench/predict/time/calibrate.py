"""Fit the time engine's efficiency from measured GPU runs (``lorabench calibrate RESULTS_DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorabench.errors import CatalogError, DataError, LorabenchError
from lorabench.measure.record import RECORD_NAME, read_run_record
from lorabench.predict.time.efficiency import Calibration, Observation, fit_efficiency
from lorabench.predict.time.flops import training_flops
from lorabench.spec import RunSpec

__all__ = ["CALIBRATION_NAME", "calibrate_from_runs", "observation_from_record"]

CALIBRATION_NAME = "calibration.json"


def observation_from_record(record: dict[str, Any]) -> tuple[Observation | None, str | None]:
    """Turn one run record into an observation, or say why it cannot be one.

    Only the counted steps (after warm-up) are used: their tokens over all ranks and the slowest rank's
    time of those steps, so model loading and warm-up do not distort the fit.
    """
    from lorabench.hardware import resolve_gpu

    if record.get("status") != "ok":
        return None, f"status {record.get('status')}"
    metrics = record.get("metrics") or {}
    if metrics.get("device") != "cuda":
        return None, "not a GPU run (a CPU has no datasheet bf16 peak to calibrate against)"
    per_rank = record.get("per_rank") or []
    counts = [r.get("rank_counts") for r in per_rank]
    if not counts or not all(isinstance(c, dict) and c.get("counted_time_s") for c in counts):
        return None, "no counted steps"
    names = (record.get("environment") or {}).get("device_names") or []
    try:
        gpu = resolve_gpu(names[0]) if names else None
    except CatalogError:
        gpu = None
    if gpu is None:
        return None, f"GPU {names[0] if names else '?'} not in the catalog"
    spec = RunSpec.model_validate(record["spec"])
    tokens = sum(int(c["padded_tokens"]) for c in counts if isinstance(c, dict))
    micro_batches = sum(int(c["counted_steps"]) for c in counts if isinstance(c, dict)) * spec.grad_accum
    flops = training_flops(spec).flops_for(tokens, micro_batches)
    seconds = max(float(c["counted_time_s"]) for c in counts if isinstance(c, dict))
    observation = Observation(
        flops_total=flops,
        gpus=len(counts),
        peak_flops_per_gpu=gpu.bf16_dense_tflops * 1e12,
        measured_time_s=seconds,
        bits=spec.bits,
        gpu=gpu.key,
    )
    return observation, None


def calibrate_from_runs(folder: Path) -> tuple[Calibration, list[str]]:
    """Fit efficiencies from every usable run record under ``folder``.

    Returns:
        The calibration and one line per record that was left out, saying why.

    Raises:
        DataError: No run records, or none usable.
    """
    paths = sorted(folder.rglob(RECORD_NAME)) if folder.is_dir() else []
    if not paths:
        raise DataError(f"{folder}: no run records (result.json) to calibrate from")
    observations, skipped = [], []
    for path in paths:
        try:
            record = read_run_record(path)
        except LorabenchError as exc:  # one unreadable record must not hide the others
            skipped.append(f"{path}: {exc}")
            continue
        observation, why = observation_from_record(record)
        if observation is None:
            skipped.append(f"{path}: {why}")
        else:
            observations.append(observation)
    if not observations:
        raise DataError(f"{folder}: none of {len(paths)} run records can calibrate ({skipped[0]})")
    return fit_efficiency(observations, source=f"{folder} ({len(observations)} runs)"), skipped
