"""Training time from FLOPs: ``time = FLOPs / (GPUs x peak x efficiency)``, and fitting the efficiency.

The FLOPs come from :func:`lorabench.predict.time.flops.training_flops`; the peak is the GPU catalog's
dense bf16 tensor throughput (:mod:`lorabench.hardware.catalog`). The efficiency factor (achieved /
peak) is either a prior (an uncalibrated guess per base bit width), a value the user gives, or a
:class:`Calibration` fitted from measured runs by :func:`fit_efficiency` (``lorabench calibrate``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lorabench.errors import ConfigError
from lorabench.hardware.catalog import resolve_gpu
from lorabench.models import ResolvedModel
from lorabench.predict.time.flops import FlopsBreakdown, training_flops
from lorabench.spec import RunSpec

__all__ = [
    "CALIBRATION_SCHEMA",
    "CALIBRATION_SCHEMA_VERSION",
    "DEFAULT_EFFICIENCY",
    "PRIOR_EFFICIENCY_BY_BITS",
    "Calibration",
    "Observation",
    "TimePrediction",
    "fit_efficiency",
    "predict_time",
    "prior_efficiency",
]

# PRIORS until `lorabench calibrate` fits the fraction of the GPU's dense bf16 peak a LoRA step reaches on
# the user's own hardware. They are the efficiencies `lorabench calibrate` fitted on the only hardware
# measured so far: one NVIDIA H200, 2026-11-28 (results/gpu/h200-2026-11-28: Llama-3.1-8B, LoRA r4/r8 on
# q/k/v, batch 4/8, seq 512-2048, gradient checkpointing, torch 2.11, bitsandbytes 0.50.2). Quantized bases do
# the same FLOPs but run slower per FLOP: NF4 dequantizes every weight on every call, and LLM.int8 quantizes
# activations and splits outlier columns (it reached a sixth of the 16-bit efficiency). Other GPUs differ.
DEFAULT_EFFICIENCY = 0.386
PRIOR_EFFICIENCY_BY_BITS: Mapping[int, float] = {16: DEFAULT_EFFICIENCY, 8: 0.062, 4: 0.188}

CALIBRATION_SCHEMA = "lorabench.calibration"
CALIBRATION_SCHEMA_VERSION = 1

_ENGINE = "flops"
_BITS = (16, 8, 4)


def prior_efficiency(bits: int) -> float:
    """The uncalibrated efficiency prior for a base stored at ``bits`` (16, 8 or 4)."""
    try:
        return PRIOR_EFFICIENCY_BY_BITS[bits]
    except KeyError:
        raise ConfigError(f"bits: must be 16, 8 or 4 (got {bits!r})") from None


@dataclass(frozen=True)
class Observation:
    """One measured run, for fitting the efficiency.

    Attributes:
        flops_total: Predicted FLOPs of the whole run (:meth:`FlopsBreakdown.flops_for`).
        gpus: GPUs the run used.
        peak_flops_per_gpu: Peak FLOP/s of one GPU (``bf16_dense_tflops x 1e12``).
        measured_time_s: Measured wall time of the training loop, in seconds.
        bits: Storage of the frozen base (16, 8 or 4): the group the run is fitted in.
        gpu: Catalog key of the GPU, if known (recorded in the calibration).
    """

    flops_total: float
    gpus: int
    peak_flops_per_gpu: float
    measured_time_s: float
    bits: int
    gpu: str | None = None

    def ideal_time_s(self) -> float:
        """Time the run would take at 100% of peak."""
        return self.flops_total / (self.gpus * self.peak_flops_per_gpu)


@dataclass(frozen=True)
class Calibration:
    """Efficiency fitted per base bit width from measured runs; JSON round-trips via to_dict/from_dict.

    Attributes:
        efficiency_by_bits: Fitted efficiency (achieved / peak FLOP/s) for each bit width with runs.
        runs_by_bits: Number of runs each efficiency was fitted from.
        relative_errors_by_bits: For each run, ``(predicted - measured) / measured`` time with the
            fitted efficiency, in observation order: how well the model tracks the measurements.
        source: Where the runs came from (a results directory or file); ``"N runs"`` if not given.
        gpus: Catalog keys of the GPUs the runs used (empty when unknown).
    """

    efficiency_by_bits: dict[int, float]
    runs_by_bits: dict[int, int]
    relative_errors_by_bits: dict[int, tuple[float, ...]]
    source: str
    gpus: tuple[str, ...] = field(default=())

    @property
    def runs(self) -> int:
        """Runs used in all."""
        return sum(self.runs_by_bits.values())

    def max_abs_relative_error(self, bits: int) -> float:
        """Largest |relative error| of the fit for ``bits`` (the worst tracked run)."""
        return max(abs(e) for e in self.relative_errors_by_bits[bits])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (bit widths become string keys)."""
        return {
            "schema": CALIBRATION_SCHEMA,
            "schema_version": CALIBRATION_SCHEMA_VERSION,
            "engine": _ENGINE,
            "source": self.source,
            "gpus": list(self.gpus),
            "runs": self.runs,
            "efficiency_by_bits": {str(b): e for b, e in self.efficiency_by_bits.items()},
            "runs_by_bits": {str(b): n for b, n in self.runs_by_bits.items()},
            "relative_errors_by_bits": {str(b): list(e) for b, e in self.relative_errors_by_bits.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> Calibration:
        """Rebuild a calibration from :meth:`to_dict`'s record.

        Args:
            data: The record (e.g. loaded from JSON).
            source: Overrides the recorded source (e.g. the file it was read from).

        Raises:
            ConfigError: The record is not a lorabench calibration or is malformed.
        """
        if not isinstance(data, Mapping) or data.get("schema") != CALIBRATION_SCHEMA:
            raise ConfigError(f"not a lorabench calibration (schema must be {CALIBRATION_SCHEMA!r})")
        if data.get("schema_version") != CALIBRATION_SCHEMA_VERSION:
            raise ConfigError(
                f"calibration schema_version {data.get('schema_version')!r} is not supported "
                f"(expected {CALIBRATION_SCHEMA_VERSION})"
            )
        try:
            eff = {_bits_key(b): float(e) for b, e in data["efficiency_by_bits"].items()}
            runs = {_bits_key(b): int(n) for b, n in data["runs_by_bits"].items()}
            errors = {_bits_key(b): tuple(float(x) for x in e) for b, e in data["relative_errors_by_bits"].items()}
            gpus = tuple(str(g) for g in data.get("gpus", ()))
            recorded = str(data["source"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed calibration record: {exc!r}") from None
        bad = [b for b, e in eff.items() if not 0 < e <= 1 or not math.isfinite(e)]
        if bad or set(eff) != set(runs) or set(eff) != set(errors):
            raise ConfigError("malformed calibration record: efficiencies must lie in (0, 1], one group per bit width")
        return cls(eff, runs, errors, source or recorded, gpus)


@dataclass(frozen=True)
class TimePrediction:
    """Predicted training time of a run.

    Attributes:
        time_s: Predicted wall time of the training loop, in seconds.
        flops_total: FLOPs of the whole run (all GPUs together).
        tokens: Tokens processed (padding included when sequences are padded).
        micro_batches: Micro-batch passes in all (over every GPU), ``ceil(tokens / (micro_batch x seq_len))``.
        efficiency: Achieved / peak FLOP/s assumed.
        efficiency_source: ``prior``, ``input`` or ``calibrated: <source>``.
        gpu: Catalog key of the GPU.
        gpus: Number of GPUs.
        peak_flops_per_gpu: Dense bf16 peak of one GPU, in FLOP/s.
        breakdown: The FLOPs per token the prediction used.
        engine: ``flops``.
    """

    time_s: float
    flops_total: float
    tokens: int
    micro_batches: int
    efficiency: float
    efficiency_source: str
    gpu: str
    gpus: int
    peak_flops_per_gpu: float
    breakdown: FlopsBreakdown
    engine: str = _ENGINE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the breakdown nested)."""
        return asdict(self)


def _bits_key(value: Any) -> int:
    bits = int(value)
    if bits not in _BITS:
        raise ValueError(f"bits {value!r} is not 16, 8 or 4")
    return bits


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}: must be a positive integer (got {value!r})")
    return value


def _check_efficiency(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"efficiency: must be a fraction of peak in (0, 1] (got {value!r})")
    return float(value)


def _efficiency(bits: int, gpu: str, efficiency: float | None, calibration: Calibration | None) -> tuple[float, str]:
    if efficiency is not None:
        return _check_efficiency(efficiency), "input"
    if calibration is not None and bits in calibration.efficiency_by_bits:
        source = f"calibrated: {calibration.source}"
        if calibration.gpus and gpu not in calibration.gpus:
            source += f" (fitted on {', '.join(calibration.gpus)})"
        return calibration.efficiency_by_bits[bits], source
    if calibration is not None:
        return prior_efficiency(bits), f"prior (calibration has no {bits}-bit runs)"
    return prior_efficiency(bits), "prior"


def predict_time(
    spec: RunSpec,
    tokens: int,
    gpu: str,
    gpus: int = 1,
    efficiency: float | None = None,
    *,
    calibration: Calibration | None = None,
    flops: FlopsBreakdown | None = None,
    model: ResolvedModel | None = None,
) -> TimePrediction:
    """Predict the training time of ``tokens`` processed tokens on ``gpus`` x ``gpu``.

    ``time = (tokens x total_per_token + micro_batches x dora_per_micro_batch) / (gpus x peak x efficiency)``
    with ``peak = bf16_dense_tflops x 1e12`` and ``micro_batches = ceil(tokens / (micro_batch x seq_len))``.

    Args:
        spec: The run spec (its seq_len, micro_batch, bits and grad_ckpt matter).
        tokens: Tokens PROCESSED over the whole run, all epochs and GPUs together: when the data is
            padded to ``seq_len`` this counts the padding, not just the real tokens.
        gpu: GPU name or alias from the GPU catalog.
        gpus: Number of GPUs sharing the work (data parallel; communication is left to the efficiency).
        efficiency: Achieved / peak FLOP/s in (0, 1]; overrides the calibration and the prior.
        calibration: Fitted efficiencies (:func:`fit_efficiency`); used for ``spec.bits`` if it has them.
        flops: A precomputed :func:`training_flops` breakdown for ``spec`` (skips rebuilding the model).
        model: An already resolved model, to skip resolving ``spec.model`` again.

    Returns:
        The prediction with its FLOPs, efficiency and where the efficiency came from.

    Raises:
        CatalogError: Unknown GPU.
        ConfigError: tokens or gpus not a positive integer, or efficiency outside (0, 1].
        ModelError: Unknown model or target module.
    """
    tokens = _positive_int("tokens", tokens)
    gpus = _positive_int("gpus", gpus)
    gpu_spec = resolve_gpu(gpu)
    eff, source = _efficiency(spec.bits, gpu_spec.key, efficiency, calibration)
    breakdown = flops if flops is not None else training_flops(spec, model=model)
    micro_batches = math.ceil(tokens / (spec.micro_batch * breakdown.seq_len))
    flops_total = breakdown.flops_for(tokens, micro_batches)
    peak = gpu_spec.bf16_dense_tflops * 1e12
    return TimePrediction(
        time_s=flops_total / (gpus * peak * eff),
        flops_total=flops_total,
        tokens=tokens,
        micro_batches=micro_batches,
        efficiency=eff,
        efficiency_source=source,
        gpu=gpu_spec.key,
        gpus=gpus,
        peak_flops_per_gpu=peak,
        breakdown=breakdown,
    )


def _check_observation(index: int, obs: Observation) -> None:
    values = (obs.flops_total, obs.peak_flops_per_gpu, obs.measured_time_s)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0 for v in values):
        raise ConfigError(
            f"observation {index}: flops_total, peak_flops_per_gpu and measured_time_s must be positive numbers"
        )
    if isinstance(obs.gpus, bool) or not isinstance(obs.gpus, int) or obs.gpus <= 0:
        raise ConfigError(f"observation {index}: gpus must be a positive integer (got {obs.gpus!r})")
    if obs.bits not in _BITS:
        raise ConfigError(f"observation {index}: bits must be 16, 8 or 4 (got {obs.bits!r})")


def fit_efficiency(observations: Sequence[Observation], source: str | None = None) -> Calibration:
    """Fit the efficiency per base bit width so that predicted time tracks measured time.

    Model: ``measured_time = k x ideal_time`` with ``ideal_time = flops / (gpus x peak)`` and
    ``k = 1 / efficiency``. ``k`` is the least-squares fit of the RELATIVE error,
    minimising ``sum(((k x ideal_i - measured_i) / measured_i)^2)``, so a long run does not drown
    the short ones: ``k = sum(r_i) / sum(r_i^2)`` with ``r_i = ideal_i / measured_i``.

    Args:
        observations: Measured runs (at least one).
        source: Where the runs came from, recorded in the calibration; ``"N runs"`` by default.

    Returns:
        Efficiency, run count and relative errors per bit width.

    Raises:
        ConfigError: No observations, an invalid one, or a fitted efficiency above 1 (the runs were
            faster than the GPU's peak: the FLOPs, GPU or time recorded must be wrong).
    """
    if not observations:
        raise ConfigError("fit_efficiency: no measured runs to fit")
    groups: dict[int, list[Observation]] = {}
    for index, obs in enumerate(observations):
        _check_observation(index, obs)
        groups.setdefault(obs.bits, []).append(obs)
    efficiency: dict[int, float] = {}
    runs: dict[int, int] = {}
    errors: dict[int, tuple[float, ...]] = {}
    for bits in sorted(groups, reverse=True):
        group = groups[bits]
        ratios = [obs.ideal_time_s() / obs.measured_time_s for obs in group]
        k = sum(ratios) / sum(r * r for r in ratios)
        if k < 1:
            raise ConfigError(
                f"fit_efficiency: {bits}-bit runs come out at {1 / k:.2f} x peak (above 1); "
                "check their FLOPs, GPU and measured time"
            )
        efficiency[bits] = 1 / k
        runs[bits] = len(group)
        errors[bits] = tuple(k * r - 1 for r in ratios)
    gpus = tuple(sorted({obs.gpu for obs in observations if obs.gpu}))
    return Calibration(efficiency, runs, errors, source or f"{len(observations)} runs", gpus)
