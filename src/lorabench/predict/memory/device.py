"""From a predicted peak of live tensors to what one GPU must hold: parallelism, allocator slack, CUDA context.

The engines predict ``peak_allocated_bytes`` (what ``torch.cuda.max_memory_allocated`` reports). A card also
holds the caching allocator's cached and fragmented blocks (``reserved`` minus ``allocated``) and the CUDA
context with library workspaces (NVML ``used`` minus ``reserved``). Both are kept as separately labelled terms,
and "fits on a 24 GB card" is decided on their sum.

Terms measured on one NVIDIA H200 (results/gpu/h200-2026-11-28, torch 2.11 + CUDA 13.0, Llama-3.1-8B LoRA,
14 configurations): reserved / allocated - 1 ranged 2-24% (median 9%); NVML used - reserved was 0.80-0.87 GB.
Other GPUs, drivers and PyTorch versions differ; `lorabench calibrate` does not fit these yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lorabench.spec import RunSpec

__all__ = [
    "CUDA_CONTEXT_BYTES",
    "LOGITS_SLACK_FACTOR",
    "RESERVED_SLACK_FRACTION",
    "DeviceTotals",
    "cublas_workspace_bytes",
    "device_totals",
    "fits_on_catalog_gpus",
    "logits_bytes",
]

# Typical-to-high allocator slack: between the median (9%) and the maximum (24%) measured on the H200.
RESERVED_SLACK_FRACTION = 0.15
# Long sequences fragment the allocator around the largest transient, the fp32 logits of the loss (b x s x vocab
# x 4 bytes): on the H200 reserved - allocated reached 1.44x that tensor (batch 4, seq 2048), and under a 24 GB
# cap an L4-sized run OOMed with 2.9 GB of predicted headroom beside a 3.4 GB logits tensor. The slack is the
# larger of the fraction above and this multiple of the logits tensor.
LOGITS_SLACK_FACTOR = 1.5
CUDA_CONTEXT_BYTES = 900_000_000  # 0.87 GB measured (NVML used - reserved) on the H200, rounded up


@dataclass(frozen=True)
class DeviceTotals:
    """Per-GPU memory: the engine's peak after parallelism, plus slack and context."""

    parallelism: str
    gpus: int
    breakdown: dict[str, int]
    peak_allocated_bytes: int
    reserved_slack_bytes: int
    cuda_context_bytes: int
    device_total_bytes: int
    notes: list[str] = field(default_factory=list)
    logits_bytes: int | None = None
    cpu_offload_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the provenance of the added terms."""
        slack_rule = (
            f"max({RESERVED_SLACK_FRACTION:.0%} of peak allocated, {LOGITS_SLACK_FACTOR}x the fp32 logits tensor "
            f"b*s*vocab*4 = {self.logits_bytes:,} B); H200: reserved - allocated 2-24% of allocated, up to 1.44x logits"
            if self.logits_bytes
            else f"{RESERVED_SLACK_FRACTION:.0%} of peak allocated (H200: 2-24%, median 9%)"
        )
        return {
            "parallelism": self.parallelism,
            "gpus": self.gpus,
            "per_gpu_breakdown": dict(self.breakdown),
            "per_gpu_peak_allocated_bytes": self.peak_allocated_bytes,
            "reserved_slack_bytes": self.reserved_slack_bytes,
            "cuda_context_bytes": self.cuda_context_bytes,
            "device_total_bytes": self.device_total_bytes,
            "cpu_offload_bytes_per_gpu": self.cpu_offload_bytes,
            "cpu_offload_bytes_total": self.cpu_offload_bytes * self.gpus,
            "notes": list(self.notes),
            "provenance": {
                "reserved_slack_bytes": slack_rule,
                "cuda_context_bytes": "NVML used - reserved measured on an H200 (0.80-0.87 GB), rounded up",
            },
        }


def logits_bytes(spec: RunSpec, vocab_size: int, micro_batch: int | None = None, seq_len: int | None = None) -> int:
    """Bytes of the fp32 logits tensor of one micro-batch (``micro_batch x seq_len x vocab x 4``)."""
    return (micro_batch or spec.micro_batch) * (seq_len or spec.seq_len) * vocab_size * 4


def device_totals(
    breakdown: Mapping[str, int],
    spec: RunSpec,
    num_layers: int,
    cuda: bool = True,
    logits: int | None = None,
    root_param_bytes: int | None = None,
) -> DeviceTotals:
    """Apply the spec's parallelism to a single-GPU breakdown and add slack and context.

    - ``single`` / ``ddp``: every GPU holds everything; DDP adds gradient buckets (a flattened copy of the
      trainable gradients).
    - ``zero1``: optimizer state sharded over the GPUs; ``zero2``: gradients too; ``zero3``: every parameter
      too (frozen base included), plus the gathered parameters of about two layers at a time (the one computing
      and the one prefetched).
    - ``fsdp_shard_grad_op`` ~ ZeRO-2: optimizer state and gradients sharded; the parameters gathered in forward
      stay gathered through backward, so the full weights are on every GPU at the peak.
    - ``fsdp_full_shard`` ~ ZeRO-3: every parameter sharded, plus one decoder layer's gathered parameters
      (accelerate's FSDP plugin defaults to no backward prefetch), plus the root unit (embeddings, head) gathered
      for the whole step when ``root_param_bytes`` is given.
    - ``fsdp_offload``: the parameter, gradient and optimizer-state shards live on the CPU (``cpu_offload_bytes``
      per GPU, a separate figure); full shard keeps only the gathered layer(s) on the GPU, shard_grad_op keeps the
      gathered weights (they stay gathered from forward through backward).

    Args:
        breakdown: Bytes per component at the single-GPU peak (weights, quant_constants, adapter, gradients,
            optimizer_state, activations, temporaries).
        spec: Gives parallelism and the GPU count.
        num_layers: Decoder layers (for ZeRO-3's gathered layers).
        cuda: False for a CPU prediction (no slack, no context).
        logits: Bytes of the fp32 logits tensor (:func:`logits_bytes`); the slack is at least
            ``LOGITS_SLACK_FACTOR`` times it. None: the fraction of the peak only.
        root_param_bytes: FSDP full shard only: bytes of the parameters outside the decoder layers (embeddings,
            final norm, head), which the root FSDP unit keeps gathered through the step. None: not counted
            (a note says so).

    Returns:
        Per-GPU totals.
    """
    n = spec.hardware.count if spec.parallelism != "single" else 1
    parts = {k: int(v) for k, v in breakdown.items()}
    notes: list[str] = []

    def shard(name: str) -> None:
        if name in parts and n > 1:
            parts[name] = math.ceil(parts[name] / n)

    if spec.parallelism == "ddp" and n > 1:
        parts["ddp_buckets"] = parts.get("gradients", 0)
        notes.append("DDP: full replica per GPU, plus gradient buckets")
    mode = spec.parallelism
    if mode in ("zero1", "zero2", "zero3", "fsdp_full_shard", "fsdp_shard_grad_op"):
        shard("optimizer_state")
    if mode in ("zero2", "zero3", "fsdp_full_shard", "fsdp_shard_grad_op"):
        shard("gradients")
    full_weights = breakdown.get("weights", 0) + breakdown.get("quant_constants", 0)
    if mode in ("zero3", "fsdp_full_shard"):
        for name in ("weights", "quant_constants", "adapter"):
            shard(name)
    if mode == "zero3" and n > 1:
        parts["zero3_gathered"] = math.ceil(2 * full_weights / max(1, num_layers))
        notes.append("ZeRO-3: parameters sharded; about two layers gathered at a time")
    if mode == "fsdp_full_shard" and n > 1:
        parts["fsdp_gathered"] = math.ceil(full_weights / max(1, num_layers))
        notes.append("FSDP full shard: parameters sharded; one decoder layer gathered at a time (no prefetch)")
        if root_param_bytes is None:
            notes.append("FSDP full shard: the root unit's gathered embeddings/head are not counted (size not given)")
        else:
            parts["fsdp_root_gathered"] = int(root_param_bytes)
    if mode == "fsdp_shard_grad_op" and n > 1:
        notes.append("FSDP shard_grad_op: optimizer state and gradients sharded; weights gathered through backward")
    cpu_bytes = 0
    if spec.fsdp_offload and mode.startswith("fsdp"):
        moved = ["gradients", "optimizer_state"]
        if mode == "fsdp_full_shard":
            moved = ["weights", "quant_constants", "adapter", *moved]
        else:  # shard_grad_op: the weight shards rest on the CPU, but the gathered weights stay on the GPU
            cpu_bytes += sum(
                math.ceil(breakdown.get(name, 0) / n) for name in ("weights", "quant_constants", "adapter")
            )
        for name in moved:
            cpu_bytes += parts.pop(name, 0)
        notes.append(f"fsdp_offload: {', '.join(moved)} shards on the CPU ({cpu_bytes:,} B per GPU), not on the GPU")
    peak = sum(parts.values())
    slack = (
        max(math.ceil(peak * RESERVED_SLACK_FRACTION), math.ceil(LOGITS_SLACK_FACTOR * (logits or 0))) if cuda else 0
    )
    context = CUDA_CONTEXT_BYTES if cuda else 0
    total = peak + slack + context
    return DeviceTotals(
        spec.parallelism, n, parts, peak, slack, context, total, notes, logits if cuda else None, cpu_bytes
    )


def fits_on_catalog_gpus(device_total_bytes: int) -> dict[str, bool]:
    """For every GPU in the hardware catalog: does one card hold ``device_total_bytes``?"""
    from lorabench.hardware import gpu_catalog

    return {key: device_total_bytes <= gpu.vram_bytes for key, gpu in gpu_catalog().items()}


_CUBLAS_HANDLES = 2  # the forward (main) thread and the autograd engine's device thread
_CUBLAS_SM90 = 4096 * 1024 * 8  # PyTorch's default workspace on sm90 / sm100 (":4096:8")
_CUBLAS_OTHER = 4096 * 1024 * 2 + 16 * 1024 * 8  # elsewhere (":4096:2:16:8")
_SM90_SM100_NAMES = ("H100", "H200", "H800", "GH200", "B100", "B200", "GB200")


def cublas_workspace_bytes(gpu: str | None) -> int:
    """Bytes of the cuBLAS workspaces a training step holds on ``gpu`` (None: assume Hopper, the larger size).

    PyTorch allocates one workspace per cuBLAS handle (one per thread and device) through the caching allocator,
    so ``max_memory_allocated`` counts it: 32 MiB on sm90/sm100 (H100, H200, B200), 8 MiB + 128 KiB elsewhere.
    Here (not in the simulate engine) so the formula engine reads it without importing torch.
    """
    name = (gpu or "H100").upper().replace(" ", "").replace("-", "")
    per_handle = _CUBLAS_SM90 if any(key in name for key in _SM90_SM100_NAMES) else _CUBLAS_OTHER
    return _CUBLAS_HANDLES * per_handle
