"""Communication time of one optimizer step across several GPUs: ring collectives over the catalog interconnect.

Each collective is timed as a ring (what NCCL runs within one machine): for a tensor of ``S`` bytes over ``n``
GPUs, every GPU sends

- all-reduce: ``2 (n - 1) / n x S`` bytes in ``2 (n - 1)`` ring steps,
- reduce-scatter and all-gather: ``(n - 1) / n x S`` bytes in ``n - 1`` ring steps,

and a collective takes ``steps x RING_STEP_LATENCY_S + sent_bytes / (interconnect_gbps x 1e9 x link
efficiency)``, with the catalog's per-GPU unidirectional link bandwidth (:mod:`lorabench.hardware`).

What each parallelism moves, per optimizer step of ``grad_accum`` micro-batches (``G`` = trainable
gradients at ``GRAD_BYTES_PER_PARAM``, ``P`` = all parameter bytes, frozen and trainable):

- ``single``: nothing.
- ``ddp``: one all-reduce of ``G`` per optimizer step (gradient accumulation runs under ``no_sync``), in
  ``DDP_BUCKET_BYTES`` buckets.
- ``zero1``: a reduce-scatter of ``G`` and an all-gather of the updated trainable parameters per optimizer step.
- ``zero2``: a reduce-scatter of ``G`` every micro-batch (gradients are sharded, so each backward reduces
  them), and an all-gather of the updated trainable parameters per optimizer step.
- ``zero3`` / ``fsdp_full_shard``: every micro-batch all-gathers ``P`` in forward, again in backward, and
  again for the recomputed forward under gradient checkpointing; reduce-scatters ``G`` every micro-batch.
  One collective per decoder layer plus one for the rest (embeddings, head).
- ``fsdp_shard_grad_op``: as full shard, but the parameters gathered in forward are kept for backward (one
  all-gather of ``P`` per micro-batch, none for recomputation).
- ``fsdp_offload``: the sharded parameters live on the CPU, so each all-gather is preceded by copying the
  shard to the GPU, and the gradient shard goes back after each reduce-scatter, over the host PCIe link
  (``host_to_device_params`` / ``device_to_host_grads``).

Overlap (:data:`OVERLAP_ASSUMPTION`): collectives issued every micro-batch (FSDP / ZeRO-3 gathers, ZeRO-2
reduce-scatters) overlap the step's compute up to the compute time; the once-per-step gradient all-reduce or
reduce-scatter (DDP, ZeRO-1) overlaps only the backward of the last micro-batch; the ZeRO-1/2 parameter
all-gather after the optimizer step and the offload copies are exposed. Without a compute time every second
counts as exposed.

The link efficiencies and the ring-step latency are assumptions (typical nccl-tests bus bandwidth against link
rate), not measured by lorabench; they are named constants so a calibration can replace them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lorabench.hardware import GpuSpec, resolve_gpu
from lorabench.spec import RunSpec

__all__ = [
    "BACKWARD_SHARE",
    "DDP_BUCKET_BYTES",
    "GRAD_BYTES_PER_PARAM",
    "LINK_EFFICIENCY",
    "OVERLAP_ASSUMPTION",
    "RING_STEP_LATENCY_S",
    "CommTime",
    "all_gather_bytes",
    "all_reduce_bytes",
    "communication_time",
    "host_link_gbps",
    "reduce_scatter_bytes",
]

GRAD_BYTES_PER_PARAM = 4
"""PEFT keeps LoRA/DoRA adapter weights (and so their gradients) in fp32 (``autocast_adapter_dtype``)."""

DDP_BUCKET_BYTES = 25 * 2**20
"""PyTorch DDP's default ``bucket_cap_mb=25``: one all-reduce per bucket."""

LINK_EFFICIENCY: dict[str, float] = {"nvlink": 0.80, "pcie": 0.70}
"""Fraction of the link rate a ring collective achieves (assumed: typical nccl-tests bus bandwidth)."""

RING_STEP_LATENCY_S = 8e-6
"""Fixed cost of one ring step (assumed; NCCL small-message latency within one machine)."""

BACKWARD_SHARE = 2 / 3
"""Backward's share of a micro-batch's compute (2 of the 3 matmul passes)."""

OVERLAP_ASSUMPTION = (
    "per-micro-batch collectives (FSDP/ZeRO-3 all-gathers and reduce-scatters, ZeRO-2 reduce-scatters) overlap "
    "the step's compute up to the compute time; the once-per-step gradient all-reduce/reduce-scatter (DDP, "
    "ZeRO-1) overlaps only the last micro-batch's backward (2/3 of its compute); the ZeRO-1/2 parameter "
    "all-gather after the optimizer step and FSDP offload copies are exposed; the excess over each window is "
    "exposed"
)

_HOST_LINK_GBPS = {"nvlink3": 32.0, "nvlink4": 64.0, "nvlink5": 64.0}
"""Host link of NVLink parts: A100 SXM is PCIe Gen4 x16, H100/H200/B200 SXM are PCIe Gen5 x16 (per direction)."""


def all_reduce_bytes(size_bytes: int, n: int) -> int:
    """Bytes each GPU sends in a ring all-reduce of ``size_bytes``: ``2 (n - 1) / n x size``."""
    return 0 if n <= 1 else math.ceil(2 * (n - 1) * size_bytes / n)


def reduce_scatter_bytes(size_bytes: int, n: int) -> int:
    """Bytes each GPU sends in a ring reduce-scatter of a ``size_bytes`` tensor: ``(n - 1) / n x size``."""
    return 0 if n <= 1 else math.ceil((n - 1) * size_bytes / n)


def all_gather_bytes(size_bytes: int, n: int) -> int:
    """Bytes each GPU sends in a ring all-gather producing a ``size_bytes`` tensor: ``(n - 1) / n x size``."""
    return reduce_scatter_bytes(size_bytes, n)


def host_link_gbps(gpu: GpuSpec) -> float:
    """Per-direction GB/s between host memory and the GPU (the PCIe link; for NVLink parts, their host PCIe)."""
    return _HOST_LINK_GBPS.get(gpu.interconnect, gpu.interconnect_gbps)


@dataclass(frozen=True)
class CommTime:
    """Communication of one optimizer step on one GPU.

    Attributes:
        total_s: Seconds the collectives (and offload copies) take if nothing overlaps.
        exposed_s: Seconds left after overlapping with compute (see ``overlap_assumption``).
        bytes_by_collective: Bytes each GPU sends per optimizer step, by collective.
        overlap_assumption: The rule that turned ``total_s`` into ``exposed_s``.
        seconds_by_collective: Seconds per collective (same keys as ``bytes_by_collective``).
        calls_by_collective: Collective calls per optimizer step (same keys).
        gpus: GPUs in the ring.
        interconnect: Catalog link name (``nvlink4``, ``pcie4``, ...).
        link_gbps: Per-GPU unidirectional link GB/s used (before ``LINK_EFFICIENCY``).
        compute_s: The compute time overlapped against, or None when none was given.
        notes: What the model assumed for this spec.
    """

    total_s: float
    exposed_s: float
    bytes_by_collective: dict[str, int]
    overlap_assumption: str
    seconds_by_collective: dict[str, float] = field(default_factory=dict)
    calls_by_collective: dict[str, int] = field(default_factory=dict)
    gpus: int = 1
    interconnect: str | None = None
    link_gbps: float | None = None
    compute_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict with units in the key names and the assumptions as provenance."""
        return {
            "total_s": self.total_s,
            "exposed_s": self.exposed_s,
            "gpus": self.gpus,
            "interconnect": self.interconnect,
            "link_gbps": self.link_gbps,
            "compute_s": self.compute_s,
            "bytes_by_collective": dict(self.bytes_by_collective),
            "seconds_by_collective": dict(self.seconds_by_collective),
            "calls_by_collective": dict(self.calls_by_collective),
            "overlap_assumption": self.overlap_assumption,
            "notes": list(self.notes),
            "provenance": {
                "model": "ring collectives: all-reduce 2(n-1)/n x S, reduce-scatter/all-gather (n-1)/n x S per GPU",
                "link_efficiency": dict(LINK_EFFICIENCY),
                "ring_step_latency_s": RING_STEP_LATENCY_S,
                "grad_bytes_per_param": GRAD_BYTES_PER_PARAM,
                "status": "assumed constants, not calibrated against measured multi-GPU runs",
            },
        }


@dataclass
class _Plan:
    n: int
    bandwidth: float  # bytes/s after efficiency
    host_bandwidth: float
    bytes_: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def ring(self, name: str, sent_bytes: int, steps_per_call: int, calls: int) -> float:
        seconds = calls * steps_per_call * RING_STEP_LATENCY_S + sent_bytes / self.bandwidth
        self._add(name, sent_bytes, seconds, calls)
        return seconds

    def host(self, name: str, moved_bytes: int, calls: int) -> float:
        seconds = moved_bytes / self.host_bandwidth
        self._add(name, moved_bytes, seconds, calls)
        return seconds

    def _add(self, name: str, sent_bytes: int, seconds: float, calls: int) -> None:
        self.bytes_[name] = self.bytes_.get(name, 0) + sent_bytes
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + calls


def communication_time(
    spec: RunSpec,
    gpu: GpuSpec | str,
    trainable_params: int,
    frozen_param_bytes: int,
    num_layers: int,
    compute_s: float | None = None,
    trainable_param_bytes: int | None = None,
) -> CommTime:
    """Communication of one optimizer step (``spec.grad_accum`` micro-batches) on each GPU.

    Args:
        spec: Gives ``parallelism``, ``hardware.count``, ``grad_accum``, ``grad_ckpt`` and ``fsdp_offload``.
        gpu: Catalog entry or GPU name; its ``interconnect`` / ``interconnect_gbps`` set the ring bandwidth.
        trainable_params: Trainable parameters (adapters, ``modules_to_save``); gradients are
            ``GRAD_BYTES_PER_PARAM`` bytes each.
        frozen_param_bytes: Bytes of the frozen base as stored (4-bit packed, int8 or bf16), which ZeRO-3 /
            FSDP shards and gathers.
        num_layers: Decoder layers: ZeRO-3 / FSDP issues one gather and one reduce-scatter per layer, plus one
            for the rest of the model.
        compute_s: Compute seconds of the same optimizer step, to overlap against; None: all exposed.
        trainable_param_bytes: Bytes of the trainable parameters as stored; default
            ``trainable_params x GRAD_BYTES_PER_PARAM`` (fp32 adapters).

    Returns:
        Bytes, seconds and calls per collective, the total and the exposed seconds.

    Raises:
        ValueError: A negative count or size.
    """
    if min(trainable_params, frozen_param_bytes, num_layers) < 0 or (compute_s is not None and compute_s < 0):
        raise ValueError("trainable_params, frozen_param_bytes, num_layers and compute_s must be >= 0")
    gpu_spec = resolve_gpu(gpu) if isinstance(gpu, str) else gpu
    n = spec.hardware.count if spec.parallelism != "single" else 1
    link = "nvlink" if gpu_spec.interconnect.startswith("nvlink") else "pcie"
    plan = _Plan(
        n=n,
        bandwidth=gpu_spec.interconnect_gbps * 1e9 * LINK_EFFICIENCY[link],
        host_bandwidth=host_link_gbps(gpu_spec) * 1e9 * LINK_EFFICIENCY["pcie"],
    )
    notes: list[str] = []
    grads = trainable_params * GRAD_BYTES_PER_PARAM
    trainable_bytes = (
        trainable_params * GRAD_BYTES_PER_PARAM if trainable_param_bytes is None else trainable_param_bytes
    )
    params = frozen_param_bytes + trainable_bytes
    micro = spec.grad_accum
    units = num_layers + 1
    per_micro_s = 0.0  # overlaps the whole step's compute
    last_backward_s = 0.0  # overlaps the last micro-batch's backward
    exposed_always_s = 0.0
    mode = spec.parallelism
    if n > 1 and mode == "ddp":
        buckets = max(1, math.ceil(grads / DDP_BUCKET_BYTES))
        last_backward_s += plan.ring("all_reduce_grads", all_reduce_bytes(grads, n), 2 * (n - 1), buckets)
        notes.append(f"DDP: {buckets} bucket(s) of <= {DDP_BUCKET_BYTES // 2**20} MiB, once per optimizer step")
    elif n > 1 and mode in ("zero1", "zero2"):
        if mode == "zero1":
            last_backward_s += plan.ring("reduce_scatter_grads", reduce_scatter_bytes(grads, n), n - 1, 1)
        else:
            per_micro_s += plan.ring("reduce_scatter_grads", micro * reduce_scatter_bytes(grads, n), n - 1, micro)
        exposed_always_s += plan.ring("all_gather_params_step", all_gather_bytes(trainable_bytes, n), n - 1, 1)
    elif n > 1 and mode in ("zero3", "fsdp_full_shard", "fsdp_shard_grad_op"):
        gathers = ["all_gather_params_forward"]
        if mode != "fsdp_shard_grad_op":
            gathers.append("all_gather_params_backward")
            if spec.grad_ckpt or spec.activation_offload:
                gathers.append("all_gather_params_recompute")
        else:
            notes.append("shard_grad_op: parameters gathered in forward are kept through backward")
        for name in gathers:
            per_micro_s += plan.ring(name, micro * all_gather_bytes(params, n), n - 1, micro * units)
        per_micro_s += plan.ring("reduce_scatter_grads", micro * reduce_scatter_bytes(grads, n), n - 1, micro * units)
        if spec.fsdp_offload and mode.startswith("fsdp"):
            shard = math.ceil(params / n)
            exposed_always_s += plan.host("host_to_device_params", len(gathers) * micro * shard, len(gathers) * micro)
            exposed_always_s += plan.host("device_to_host_grads", micro * math.ceil(grads / n), micro)
            notes.append("fsdp_offload: shards copied host<->GPU over PCIe around each gather / reduce-scatter")
    elif n > 1:
        raise ValueError(f"parallelism {mode!r} has no communication model")
    total = per_micro_s + last_backward_s + exposed_always_s
    if compute_s is None:
        exposed = total
        assumption = OVERLAP_ASSUMPTION + "; no compute time given, so all of it is counted as exposed"
    else:
        last_backward_window = compute_s / micro * BACKWARD_SHARE
        exposed_once = max(0.0, last_backward_s - last_backward_window)
        remaining_window = max(0.0, compute_s - min(last_backward_s, last_backward_window))
        exposed = exposed_once + max(0.0, per_micro_s - remaining_window) + exposed_always_s
        assumption = OVERLAP_ASSUMPTION
    return CommTime(
        total_s=total,
        exposed_s=exposed,
        bytes_by_collective=dict(plan.bytes_),
        overlap_assumption=assumption,
        seconds_by_collective=dict(plan.seconds),
        calls_by_collective=dict(plan.calls),
        gpus=n,
        interconnect=gpu_spec.interconnect,
        link_gbps=gpu_spec.interconnect_gbps,
        compute_s=compute_s,
        notes=notes,
    )
