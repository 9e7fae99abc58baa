"""The roofline time engine: seconds per training step from the step's ops and the GPU's datasheet.

Each op of the step (:mod:`lorabench.predict.time.ops`, counted in closed form or traced) takes

    ``max(FLOPs / (peak_class x eta_class(shape)), bytes / (bandwidth x eta_bw_class), launches x launch_s)``

that is, the longer of its kernel time and its host-side dispatch: eager PyTorch queues kernels
asynchronously, so the host's per-launch cost is hidden behind any kernel longer than it, and a step of
many tiny kernels runs at the host's pace instead. A step takes the sum over its ops plus ``host_s``
(Python, the data loader, the optimizer's bookkeeping) plus the exposed communication
(:mod:`lorabench.predict.time.comms`, when ``hardware.count > 1``). Peaks and bandwidth come from the GPU
catalog: bf16 matmuls run at the card's MEASURED maximum achievable matmul throughput
(``mamf_bf16_tflops``, where one was published) or else at ``bf16_dense_tflops x``
:data:`MAMF_FRACTION` (the median measured/datasheet ratio of the catalog's measured cards);
``bf16_dense_tflops`` also bounds attention and bitsandbytes' fused 4-bit kernel, ``int8_dense_tops``
LLM.int8 matmuls, ``fp32_tflops`` fp32 matmuls (CUDA cores: PyTorch leaves TF32 off by default; where the
catalog has no figure, ``sm_count x FP32_FLOPS_PER_SM_CYCLE x NOMINAL_CLOCK_HZ``, said in the provenance)
and ``memory_bandwidth_gbps`` the memory-bound ops. A matmul's efficiency saturates with its smallest
dimension, ``eta_mm x d / (d + mm_half_dim)``: LoRA's ``r``-wide products and small models stay far below
peak.

The constants (:class:`Constants`) are GPU-independent fractions and seconds, fitted once on the H200
records of ``results/gpu/h200-2026-11-28`` (+ ``-fit``) and stored with the fit's residuals in
``roofline_constants.json``; ``lorabench calibrate DIR`` refits them from a user's own run records
(:mod:`lorabench.predict.time.calibrate`). The 80% interval of a prediction is the 10th-90th percentile
band of the fit's relative residuals on the fitting GPUs. On any other GPU that band would understate the error
(the fit never saw that card), so there the interval is the 10th-90th percentile band of the step-time errors
of the packaged constants on published runs of other GPUs (``roofline_transfer.json``, written by
``benchmarks/time_validation.py --write-transfer`` from ``benchmarks/data/published_throughput.yaml``; that
script also prints how many published runs such a band covers leave-one-out).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from typing import Any, Literal

from lorabench.errors import CatalogError, ConfigError
from lorabench.hardware.catalog import GpuSpec, resolve_gpu
from lorabench.models import ResolvedModel
from lorabench.predict.time.ops import Op, StepOps
from lorabench.spec import RunSpec

__all__ = [
    "BREAKDOWN_KEYS",
    "CALIBRATION_SCHEMA",
    "FP32_FLOPS_PER_SM_CYCLE",
    "MAMF_FRACTION",
    "NOMINAL_CLOCK_HZ",
    "Constants",
    "RooflineCalibration",
    "StepTime",
    "TimeEstimate",
    "TransferErrors",
    "default_calibration",
    "matmul_peak_flops",
    "op_seconds",
    "predict_step",
    "predict_time",
    "quantile_band",
    "step_ops",
    "step_seconds",
    "transfer_errors",
]

CALIBRATION_SCHEMA = "lorabench.roofline_calibration"
CALIBRATION_SCHEMA_VERSION = 1
FP32_FLOPS_PER_SM_CYCLE = 256  # 128 FP32 lanes per SM (Ampere GA10x, Ada, Hopper) x 2 FLOPs per FMA
NOMINAL_CLOCK_HZ = 1.8e9  # a typical boost clock (only where the catalog lacks fp32_tflops)
MAMF_FRACTION = 0.803
"""Measured / datasheet bf16 matmul throughput where no measurement of the card exists: the median of the
catalog's measured cards (A100 SXM 0.869, A100 PCIe 0.811, H100 SXM and H200 0.803, B200 0.776; see
``gpus.yaml``)."""
BREAKDOWN_KEYS = ("matmul", "attention", "dequant", "memory_bound", "communication", "overhead")
_PACKAGED = "roofline_constants.json"
_TRANSFER = "roofline_transfer.json"
TRANSFER_SCHEMA = "lorabench.roofline_transfer"
_REQUIRED_FIELDS = ("bf16_dense_tflops", "int8_dense_tops", "sm_count", "memory_bandwidth_gbps")
Engine = Literal["formula", "simulate"]


@dataclass(frozen=True)
class Constants:
    """The roofline's few constants (GPU-independent).

    Attributes:
        eta_mm: Fraction of the bf16 / fp32 peak a large matmul reaches.
        mm_half_dim: Smallest matmul dimension at which a matmul reaches half of ``eta_mm``.
        eta_int8: Fraction of the int8 peak a large bitsandbytes int8 matmul reaches.
        eta_attention: Fraction of the bf16 peak the fused attention kernels reach.
        eta_bw: Fraction of the memory bandwidth elementwise / reduction / optimizer kernels reach.
        eta_dequant: Fraction of the memory bandwidth bitsandbytes' (de)quantization kernels reach.
        launch_s: Seconds per kernel launch (eager PyTorch's host-side dispatch, not hidden).
        host_s: Seconds per optimizer step outside the kernels (data loading, Python, synchronisation).
    """

    eta_mm: float = 0.7
    mm_half_dim: float = 64.0
    eta_int8: float = 0.3
    eta_attention: float = 0.5
    eta_bw: float = 0.7
    eta_dequant: float = 0.3
    launch_s: float = 8e-6
    host_s: float = 5e-3

    def vector(self) -> list[float]:
        """The constants in field order."""
        return [float(getattr(self, f.name)) for f in fields(self)]

    @classmethod
    def from_vector(cls, values: Sequence[float]) -> Constants:
        """Constants from :meth:`vector`'s order."""
        return cls(*[float(v) for v in values])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Constants:
        """Constants from a mapping with every field; raises ConfigError on a missing / bad one."""
        values = []
        for f in fields(cls):
            value = data.get(f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"constants.{f.name}: must be a positive number (got {value!r})")
            values.append(float(value))
        out = cls(*values)
        for name in ("eta_mm", "eta_int8", "eta_attention", "eta_bw", "eta_dequant"):
            if getattr(out, name) > 1:
                raise ConfigError(f"constants.{name}: a fraction of peak must be <= 1 (got {getattr(out, name)})")
        return out


@dataclass(frozen=True)
class Residual:
    """One fitted run: what was measured and what the fitted roofline predicts."""

    record: str
    gpu: str
    bits: int
    micro_batch: int
    seq_len: int
    grad_ckpt: bool
    measured_step_s: float
    predicted_step_s: float

    @property
    def relative_error(self) -> float:
        """``(predicted - measured) / measured``."""
        return self.predicted_step_s / self.measured_step_s - 1.0


@dataclass(frozen=True)
class RooflineCalibration:
    """Fitted constants with the residuals of the fit (the packaged default, or ``lorabench calibrate``'s).

    Attributes:
        constants: The fitted constants.
        residuals: One per run fitted.
        source: Where the runs came from.
        gpus: Catalog keys of the GPUs of the runs.
        method: How the constants were fitted.
    """

    constants: Constants
    residuals: tuple[Residual, ...]
    source: str
    gpus: tuple[str, ...] = ()
    method: str = ""

    def relative_errors(self) -> list[float]:
        """The residuals' relative errors."""
        return [r.relative_error for r in self.residuals]

    def band(self, coverage: float = 0.8) -> tuple[float, float]:
        """``(low, high)`` quantiles of the relative errors covering ``coverage`` of the runs (0, 0 if none)."""
        return quantile_band(self.relative_errors(), coverage)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        low, high = self.band()
        errors = [abs(e) for e in self.relative_errors()]
        return {
            "schema": CALIBRATION_SCHEMA,
            "schema_version": CALIBRATION_SCHEMA_VERSION,
            "engine": "roofline",
            "source": self.source,
            "gpus": list(self.gpus),
            "method": self.method,
            "constants": asdict(self.constants),
            "summary": {
                "runs": len(self.residuals),
                "median_abs_relative_error": _quantile(sorted(errors), 0.5) if errors else None,
                "max_abs_relative_error": max(errors) if errors else None,
                "band_80_relative": [low, high],
            },
            "residuals": [{**asdict(r), "relative_error": r.relative_error} for r in self.residuals],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> RooflineCalibration:
        """Rebuild from :meth:`to_dict`'s record; raises ConfigError if it is not one."""
        if not isinstance(data, Mapping) or data.get("schema") != CALIBRATION_SCHEMA:
            raise ConfigError(
                f"not a roofline calibration (schema must be {CALIBRATION_SCHEMA!r}; "
                "rerun `lorabench calibrate DIR` to refit an older flops-engine file)"
            )
        if data.get("schema_version") != CALIBRATION_SCHEMA_VERSION:
            raise ConfigError(f"schema_version {data.get('schema_version')!r} is not {CALIBRATION_SCHEMA_VERSION}")
        constants = Constants.from_dict(data.get("constants") or {})
        try:
            residuals = tuple(
                Residual(
                    record=str(r["record"]),
                    gpu=str(r["gpu"]),
                    bits=int(r["bits"]),
                    micro_batch=int(r["micro_batch"]),
                    seq_len=int(r["seq_len"]),
                    grad_ckpt=bool(r["grad_ckpt"]),
                    measured_step_s=float(r["measured_step_s"]),
                    predicted_step_s=float(r["predicted_step_s"]),
                )
                for r in data.get("residuals", [])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"residuals: malformed entry ({exc!r})") from None
        return cls(
            constants,
            residuals,
            source or str(data.get("source", "?")),
            tuple(str(g) for g in data.get("gpus", ())),
            str(data.get("method", "")),
        )


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def default_calibration() -> RooflineCalibration:
    """The packaged constants fitted on the H200 records (``roofline_constants.json``)."""
    text = resources.files("lorabench.predict.time").joinpath(_PACKAGED).read_text("utf-8")
    return RooflineCalibration.from_dict(json.loads(text), source=None)


def quantile_band(errors: Sequence[float], coverage: float = 0.8) -> tuple[float, float]:
    """``(low, high)`` quantiles of relative errors covering ``coverage`` of them (``(0, 0)`` if none)."""
    ordered = sorted(float(e) for e in errors)
    if not ordered:
        return 0.0, 0.0
    tail = (1.0 - coverage) / 2
    return _quantile(ordered, tail), _quantile(ordered, 1.0 - tail)


@dataclass(frozen=True)
class TransferErrors:
    """Step-time errors of a calibration on published runs of GPUs it was not fitted on.

    Attributes:
        calibration_source: The ``source`` of the calibration the errors were computed with; the band applies
            only to predictions made with that calibration.
        data: Where the published runs come from.
        errors: ``(row id, GPU, relative step-time error)`` per published run
            (``predicted step / measured step - 1``).
        leave_one_out_in_band: Runs whose measured figure lies inside the band of the OTHER runs' errors.
    """

    calibration_source: str
    data: str
    errors: tuple[tuple[str, str, float], ...]
    leave_one_out_in_band: int | None = None

    def band(self, coverage: float = 0.8) -> tuple[float, float]:
        """The ``coverage`` band of the relative step-time errors."""
        return quantile_band([e for _, _, e in self.errors], coverage)

    def describe(self) -> str:
        """One phrase for a provenance string."""
        gpus = sorted({g for _, g, _ in self.errors})
        loo = (
            f"; it holds {self.leave_one_out_in_band}/{len(self.errors)} of them leave-one-out"
            if self.leave_one_out_in_band is not None
            else ""
        )
        return (
            f"80% band from the step-time errors on {len(self.errors)} published runs on other GPUs "
            f"({', '.join(gpus)}; {self.data}){loo}"
        )


def transfer_errors() -> TransferErrors | None:
    """The packaged transfer errors (``roofline_transfer.json``), or None when the file is absent or malformed."""
    try:
        text = resources.files("lorabench.predict.time").joinpath(_TRANSFER).read_text("utf-8")
        data = json.loads(text)
        if data.get("schema") != TRANSFER_SCHEMA:
            return None
        errors = tuple((str(r["id"]), str(r["gpu"]), float(r["relative_error"])) for r in data["errors"])
        loo = data.get("leave_one_out_in_band")
        return TransferErrors(
            str(data["calibration_source"]), str(data["data"]), errors, int(loo) if loo is not None else None
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _gpu(gpu: GpuSpec | str) -> GpuSpec:
    spec = resolve_gpu(gpu) if isinstance(gpu, str) else gpu
    missing = [name for name in _REQUIRED_FIELDS if getattr(spec, name, None) is None]
    if missing:
        raise CatalogError(f"GPU {spec.key}: the roofline time engine needs {', '.join(missing)} in the GPU catalog")
    return spec


def matmul_peak_flops(gpu: GpuSpec) -> float:
    """FLOP/s a large bf16 matmul can reach on ``gpu``: measured MAMF, else datasheet x :data:`MAMF_FRACTION`."""
    if gpu.mamf_bf16_tflops is not None:
        return float(gpu.mamf_bf16_tflops) * 1e12
    return float(gpu.bf16_dense_tflops) * 1e12 * MAMF_FRACTION


def _peak(gpu: GpuSpec, cls: str) -> float:
    if cls == "matmul_int8":
        return float(gpu.int8_dense_tops) * 1e12
    if cls == "matmul_fp32":
        if gpu.fp32_tflops is not None:
            return float(gpu.fp32_tflops) * 1e12
        return float(gpu.sm_count) * FP32_FLOPS_PER_SM_CYCLE * NOMINAL_CLOCK_HZ
    if cls == "matmul_bf16":
        return matmul_peak_flops(gpu)
    return float(gpu.bf16_dense_tflops) * 1e12


def op_seconds(op: Op, gpu: GpuSpec, c: Constants) -> tuple[float, float]:
    """``(kernel seconds, launch seconds)`` of ONE call of ``op`` on ``gpu`` with constants ``c``."""
    bandwidth = float(gpu.memory_bandwidth_gbps) * 1e9
    compute = 0.0
    if op.flops > 0:
        if op.cls == "attention":
            eta = c.eta_attention
        else:
            eta = (c.eta_int8 if op.cls == "matmul_int8" else c.eta_mm) * op.min_dim / (op.min_dim + c.mm_half_dim)
        compute = op.flops / (_peak(gpu, op.cls) * max(eta, 1e-9))
    memory = op.bytes / (bandwidth * (c.eta_dequant if op.cls == "dequant" else c.eta_bw))
    return max(compute, memory), op.launches * c.launch_s


def _bucket(cls: str) -> str:
    if cls.startswith("matmul"):
        return "matmul"
    if cls in ("attention", "dequant"):
        return cls
    return "memory_bound"


def step_seconds(ops: StepOps, gpu: GpuSpec, c: Constants) -> dict[str, float]:
    """Seconds of one optimizer step per breakdown key (communication excluded: 0).

    Each op counts the longer of its kernel and its launches (see the module docstring); an op whose
    launches take longer than its kernels is host-bound, and its seconds go to ``overhead``.
    """
    out = dict.fromkeys(BREAKDOWN_KEYS, 0.0)
    for op in ops.ops:
        kernel, launch = op_seconds(op, gpu, c)
        if launch > kernel:
            out["overhead"] += op.count * launch
        else:
            out[_bucket(op.cls)] += op.count * kernel
    out["overhead"] += c.host_s
    return out


def step_ops(spec: RunSpec, model: ResolvedModel | None = None, engine: Engine = "formula") -> StepOps:
    """One optimizer step's ops on one GPU by the chosen engine."""
    if engine == "simulate":
        from lorabench.predict.time.trace import traced_step_ops

        return traced_step_ops(spec)
    if engine != "formula":
        raise ConfigError(f"time engine must be 'formula' or 'simulate' (got {engine!r})")
    from lorabench.predict.time.closed_form import formula_step_ops

    return formula_step_ops(spec, model)


@dataclass(frozen=True)
class StepTime:
    """Predicted time of ONE optimizer step (``grad_accum`` micro batches on every GPU at once).

    Attributes:
        step_s: Wall seconds of one optimizer step; every GPU runs its share in parallel, so this is also
            the step time of the whole job (compute of one GPU + exposed communication).
        tokens_per_s: Padded tokens per second over all GPUs (``micro_batch x seq_len x grad_accum x GPUs / step_s``).
        interval_s: 80% band of ``step_s``: from the calibration's residuals on a fitting GPU, else from the
            packaged errors on published runs of other GPUs (:func:`transfer_errors`).
        breakdown_s: Seconds of ``step_s`` in matmul, attention, dequant, memory_bound, communication, overhead.
        provenance: How the figure was obtained.
        gpu: Catalog key of the GPU.
        gpus: GPUs.
        tokens_per_step: Padded tokens per optimizer step over all GPUs.
        engine: ``formula`` or ``simulate`` (how the ops were counted).
        ops_by_class: FLOPs, bytes and launches per op class of one GPU's step.
        communication: The communication model's record (multi-GPU), else None.
        notes: Approximations of the op count.
    """

    step_s: float
    tokens_per_s: float
    interval_s: tuple[float, float]
    breakdown_s: dict[str, float]
    provenance: str
    gpu: str
    gpus: int
    tokens_per_step: int
    engine: str
    ops_by_class: dict[str, dict[str, float]] = field(default_factory=dict)
    communication: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        data = asdict(self)
        data["interval_s"] = list(self.interval_s)
        data["notes"] = list(self.notes)
        return data


def _matmul_peak_words(gpu: GpuSpec) -> str:
    if gpu.mamf_bf16_tflops is not None:
        return f"measured MAMF {gpu.mamf_bf16_tflops:g} TFLOPS"
    return f"{gpu.bf16_dense_tflops:g} TFLOPS datasheet x {MAMF_FRACTION} (no measured MAMF)"


def _interval(point: float, band: tuple[float, float]) -> tuple[float, float]:
    low_err, high_err = band
    # relative error e = predicted / measured - 1, so measured = predicted / (1 + e)
    return point / (1.0 + high_err), point / (1.0 + low_err)


def _communication(spec: RunSpec, gpu: GpuSpec, model: ResolvedModel | None, compute_s: float) -> Any:
    """Exposed communication of one step (``hardware.count > 1``): the comms model of :mod:`.comms`."""
    from lorabench.models import resolve_model
    from lorabench.models.facts import model_facts
    from lorabench.predict.memory.params import account
    from lorabench.predict.time.comms import communication_time

    resolved = model or resolve_model(spec.model)
    acc = account(spec, resolved)
    layers = int(getattr(model_facts(spec, resolved).config, "num_hidden_layers", 1) or 1)
    return communication_time(spec, gpu, acc.trainable_params, acc.base_bytes(spec.bits), layers, compute_s=compute_s)


def predict_step(
    spec: RunSpec,
    gpu: str | None = None,
    model: ResolvedModel | None = None,
    engine: Literal["formula", "simulate"] = "formula",
    *,
    calibration: RooflineCalibration | None = None,
) -> StepTime:
    """Predict the time of one optimizer step of ``spec`` on its GPUs.

    Args:
        spec: The run spec (model, method, bits, rank, targets, micro_batch, seq_len, grad_accum, grad_ckpt,
            hardware.count, parallelism).
        gpu: GPU name or alias from the catalog; default ``spec.hardware.gpu``.
        model: An already resolved model.
        engine: ``formula`` (closed-form op count, milliseconds) or ``simulate`` (traced real step, seconds+).
        calibration: Constants to use; default the packaged H200 fit.

    Raises:
        ConfigError: No GPU given, or a bad engine.
        CatalogError: Unknown GPU, or a catalog entry lacking a field the roofline needs.
        ModelError: Unknown model or target module.
    """
    name = gpu or spec.hardware.gpu
    if name is None:
        raise ConfigError("gpu: a time prediction needs a GPU (--gpu NAME or hardware.gpu in the spec)")
    gpu_spec = _gpu(name)
    cal = calibration or default_calibration()
    ops = step_ops(spec, model, engine)
    breakdown = step_seconds(ops, gpu_spec, cal.constants)
    gpus = spec.hardware.count
    comm_record: dict[str, Any] | None = None
    if gpus > 1:
        compute = sum(breakdown.values())
        comm = _communication(spec, gpu_spec, model, compute)
        breakdown["communication"] = float(comm.exposed_s)
        comm_record = asdict(comm)
    step = sum(breakdown.values())
    tokens_per_step = ops.tokens * gpus
    fitted_on = ", ".join(cal.gpus) or "?"
    provenance = (
        f"predicted (roofline, {ops.engine} op count): per op max(FLOPs / (peak x eta), bytes / (bandwidth x eta), "
        f"launches x launch_s), summed per step + host overhead; catalog {gpu_spec.key} (matmul peak: "
        f"{_matmul_peak_words(gpu_spec)}); constants from {cal.source} (fitted on {fitted_on})"
    )
    if gpu_spec.fp32_tflops is None and ops.total("flops", "matmul_fp32") > 0:
        provenance += (
            f"; fp32 peak estimated from {gpu_spec.sm_count} SMs x {FP32_FLOPS_PER_SM_CYCLE} FLOP/cycle x "
            f"{NOMINAL_CLOCK_HZ / 1e9:g} GHz (no datasheet fp32 figure in the catalog)"
        )
    band = cal.band()
    if cal.gpus and gpu_spec.key not in cal.gpus:
        transfer = transfer_errors()
        if transfer is not None and transfer.calibration_source == cal.source and transfer.errors:
            band = transfer.band()
            provenance += f"; EXTRAPOLATED to {gpu_spec.key}: {transfer.describe()}"
        else:
            provenance += (
                f"; 80% band from the fit's residuals; EXTRAPOLATED to {gpu_spec.key}: the band is the fitting "
                "GPU's and likely understates the error"
            )
    else:
        provenance += "; 80% band from the fit's residuals"
    if gpus > 1:
        provenance += "; + exposed communication (predict/time/comms.py)"
    return StepTime(
        step_s=step,
        tokens_per_s=tokens_per_step / step,
        interval_s=_interval(step, band),
        breakdown_s=breakdown,
        provenance=provenance,
        gpu=gpu_spec.key,
        gpus=gpus,
        tokens_per_step=tokens_per_step,
        engine=ops.engine,
        ops_by_class=ops.by_class(),
        communication=comm_record,
        notes=ops.notes,
    )


@dataclass(frozen=True)
class TimeEstimate:
    """Predicted time of a whole job.

    Attributes:
        time_s: Point prediction of the training loop's wall time.
        interval_s: 80% band.
        breakdown_s: ``time_s`` split like :attr:`StepTime.breakdown_s`.
        tokens: Padded tokens processed over the whole job (all GPUs, all epochs).
        steps: Optimizer steps (``tokens / tokens_per_step``, fractional).
        step: The per-step prediction.
    """

    time_s: float
    interval_s: tuple[float, float]
    breakdown_s: dict[str, float]
    tokens: int
    steps: float
    step: StepTime

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "time_s": self.time_s,
            "interval_s": list(self.interval_s),
            "breakdown_s": dict(self.breakdown_s),
            "tokens": self.tokens,
            "steps": self.steps,
            "step": self.step.to_json(),
        }


def predict_time(
    spec: RunSpec,
    tokens: int,
    gpu: str | None = None,
    model: ResolvedModel | None = None,
    engine: Literal["formula", "simulate"] = "formula",
    *,
    calibration: RooflineCalibration | None = None,
) -> TimeEstimate:
    """Predict the wall time of processing ``tokens`` padded tokens (all GPUs, all epochs together).

    Raises:
        ConfigError: ``tokens`` not a positive integer; see :func:`predict_step` for the rest.
    """
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0:
        raise ConfigError(f"tokens: must be a positive integer (got {tokens!r})")
    step = predict_step(spec, gpu, model, engine, calibration=calibration)
    steps = tokens / step.tokens_per_step
    return TimeEstimate(
        time_s=steps * step.step_s,
        interval_s=(steps * step.interval_s[0], steps * step.interval_s[1]),
        breakdown_s={k: steps * v for k, v in step.breakdown_s.items()},
        tokens=tokens,
        steps=steps,
        step=step,
    )
