"""Fit the roofline time engine's constants from measured GPU runs (``lorabench calibrate RESULTS_DIR``).

Every usable run record (status ok, a CUDA GPU in the catalog, counted steps after warm-up) gives one
measured step time: the slowest rank's time of the counted steps over their number. Its ops are counted in
closed form (:func:`lorabench.predict.time.closed_form.formula_step_ops`), so fitting takes seconds. The
constants (:class:`lorabench.predict.time.roofline.Constants`) minimise the mean squared RELATIVE error of
the step time (a long run does not drown the short ones) plus a weak pull (weight ``PRIOR_WEIGHT`` on the
squared log-ratio) towards the physical priors, which keeps constants the runs cannot tell apart (e.g. the
int8 efficiency when no 8-bit runs are given) at their priors instead of drifting. The optimiser is
Nelder-Mead on the logarithms of the constants, restarted from its best point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorabench.errors import CatalogError, DataError, LorabenchError
from lorabench.hardware.catalog import GpuSpec
from lorabench.measure.record import RECORD_NAME, read_run_record
from lorabench.predict.time.ops import StepOps
from lorabench.predict.time.roofline import Constants, Residual, RooflineCalibration, step_seconds
from lorabench.spec import RunSpec

__all__ = ["CALIBRATION_NAME", "PRIOR_WEIGHT", "FitRun", "calibrate_from_runs", "fit_constants", "run_from_record"]

CALIBRATION_NAME = "calibration.json"
PRIOR_WEIGHT = 1e-3
_FRACTIONS = frozenset({"eta_mm", "eta_int8", "eta_attention", "eta_bw", "eta_dequant"})
_NAMES = tuple(Constants.__dataclass_fields__)


@dataclass(frozen=True)
class FitRun:
    """One measured run to fit: its ops, GPU and measured seconds per optimizer step."""

    record: str
    spec: RunSpec
    gpu: GpuSpec
    ops: StepOps
    measured_step_s: float


def run_from_record(record: dict[str, Any], name: str = "") -> tuple[FitRun | None, str | None]:
    """Turn one run record into a fit run, or say why it cannot be one."""
    from lorabench.hardware import resolve_gpu
    from lorabench.predict.time.closed_form import formula_step_ops

    if record.get("status") != "ok":
        return None, f"status {record.get('status')}"
    metrics = record.get("metrics") or {}
    if metrics.get("device") != "cuda":
        return None, "not a GPU run (a CPU has no datasheet peak to calibrate against)"
    per_rank = record.get("per_rank") or []
    counts = [r.get("rank_counts") for r in per_rank]
    if not counts or not all(
        isinstance(c, dict) and c.get("counted_time_s") and c.get("counted_steps") for c in counts
    ):
        return None, "no counted steps"
    names = (record.get("environment") or {}).get("device_names") or []
    try:
        gpu = resolve_gpu(names[0]) if names else None
    except CatalogError:
        gpu = None
    if gpu is None:
        return None, f"GPU {names[0] if names else '?'} not in the catalog"
    spec = RunSpec.model_validate(record["spec"])
    if spec.hardware.count > 1 or len(counts) > 1:
        return None, "multi-GPU run (the roofline is fitted on single-GPU steps; communication is modelled apart)"
    steps = int(counts[0]["counted_steps"])
    seconds = float(counts[0]["counted_time_s"]) / steps
    try:
        ops = formula_step_ops(spec)
    except LorabenchError as exc:
        return None, str(exc)
    return FitRun(name, spec, gpu, ops, seconds), None


def _predict(run: FitRun, constants: Constants) -> float:
    return sum(step_seconds(run.ops, run.gpu, constants).values())


def _nelder_mead(f: Callable[[list[float]], float], start: list[float], step: float, iters: int) -> list[float]:
    n = len(start)
    simplex = [list(start)] + [[x + (step if i == j else 0.0) for j, x in enumerate(start)] for i in range(n)]
    values = [f(p) for p in simplex]
    for _ in range(iters):
        order = sorted(range(n + 1), key=values.__getitem__)
        simplex, values = [simplex[i] for i in order], [values[i] for i in order]
        centroid = [sum(p[j] for p in simplex[:-1]) / n for j in range(n)]
        worst = simplex[-1]
        reflect = [c + (c - w) for c, w in zip(centroid, worst, strict=True)]
        fr = f(reflect)
        if fr < values[0]:
            expand = [c + 2 * (c - w) for c, w in zip(centroid, worst, strict=True)]
            fe = f(expand)
            simplex[-1], values[-1] = (expand, fe) if fe < fr else (reflect, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflect, fr
        else:
            contract = [c + 0.5 * (w - c) for c, w in zip(centroid, worst, strict=True)]
            fc = f(contract)
            if fc < values[-1]:
                simplex[-1], values[-1] = contract, fc
            else:
                best = simplex[0]
                simplex = [best] + [[b + 0.5 * (x - b) for b, x in zip(best, p, strict=True)] for p in simplex[1:]]
                values = [values[0]] + [f(p) for p in simplex[1:]]
    return simplex[min(range(n + 1), key=values.__getitem__)]


def fit_constants(runs: Sequence[FitRun], prior: Constants | None = None, source: str = "") -> RooflineCalibration:
    """Fit the roofline constants to measured runs (see the module docstring).

    Raises:
        DataError: No runs.
    """
    if not runs:
        raise DataError("calibrate: no measured runs to fit")
    base = prior or Constants()
    log_prior = [math.log(v) for v in base.vector()]

    def objective(logs: list[float]) -> float:
        values = [math.exp(x) for x in logs]
        if any(v > 1.0 for name, v in zip(_NAMES, values, strict=True) if name in _FRACTIONS):
            return 1e9
        constants = Constants.from_vector(values)
        errors = [_predict(run, constants) / run.measured_step_s - 1.0 for run in runs]
        pull = sum((x - p) ** 2 for x, p in zip(logs, log_prior, strict=True))
        return sum(e * e for e in errors) / len(errors) + PRIOR_WEIGHT * pull

    point = list(log_prior)
    for step in (0.5, 0.2, 0.05):
        point = _nelder_mead(objective, point, step, 600)
    constants = Constants.from_vector([math.exp(x) for x in point])
    residuals = tuple(
        Residual(
            record=run.record,
            gpu=run.gpu.key,
            bits=run.spec.bits,
            micro_batch=run.spec.micro_batch,
            seq_len=run.spec.seq_len,
            grad_ckpt=run.spec.grad_ckpt,
            measured_step_s=run.measured_step_s,
            predicted_step_s=_predict(run, constants),
        )
        for run in runs
    )
    gpus = tuple(sorted({run.gpu.key for run in runs}))
    method = (
        "Nelder-Mead on log(constants): mean squared relative step-time error + "
        f"{PRIOR_WEIGHT} x squared log-distance to the priors {base.vector()}; ops in closed form"
    )
    return RooflineCalibration(constants, residuals, source or f"{len(runs)} runs", gpus, method)


def calibrate_from_runs(folders: Path | Sequence[Path]) -> tuple[RooflineCalibration, list[str]]:
    """Fit the roofline constants from every usable run record under ``folders``.

    Returns:
        The calibration and one line per record that was left out, saying why.

    Raises:
        DataError: No run records, or none usable.
    """
    roots = [folders] if isinstance(folders, Path) else list(folders)
    paths = sorted(p for root in roots if root.is_dir() for p in root.rglob(RECORD_NAME))
    label = ", ".join(str(r) for r in roots)
    if not paths:
        raise DataError(f"{label}: no run records (result.json) to calibrate from")
    runs: list[FitRun] = []
    skipped: list[str] = []
    for path in paths:
        try:
            record = read_run_record(path)
        except LorabenchError as exc:  # one unreadable record must not hide the others
            skipped.append(f"{path}: {exc}")
            continue
        run, why = run_from_record(record, name=str(path.parent))
        if run is None:
            skipped.append(f"{path}: {why}")
        else:
            runs.append(run)
    if not runs:
        raise DataError(f"{label}: none of {len(paths)} run records can calibrate ({skipped[0]})")
    return fit_constants(runs, source=f"{label} ({len(runs)} runs)"), skipped
