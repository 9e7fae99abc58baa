"""The work of one training step, op by op: FLOPs, bytes moved and the kind of hardware unit each op loads.

Both time engines produce a :class:`StepOps`: the ``simulate`` engine by recording every ATen (and
bitsandbytes) operator of the real training step (:mod:`lorabench.predict.time.trace`), the ``formula``
engine in closed form from the module graph (:mod:`lorabench.predict.time.closed_form`). The roofline
(:mod:`lorabench.predict.time.roofline`) turns it into seconds.

Op classes (what bounds an op's time on a GPU):

* ``matmul_bf16`` / ``matmul_fp32`` / ``matmul_int8``: matrix multiplications by operand type (bf16/fp16 on
  tensor cores; fp32 on CUDA cores, as PyTorch runs fp32 matmuls without TF32 by default; int8 on tensor
  cores via cuBLASLt, bitsandbytes' LLM.int8), LoRA's skinny ``r``-wide products included.
* ``attention``: the fused SDPA kernel CUDA would run (flash / memory-efficient), forward and backward.
* ``dequant``: bitsandbytes' NF4 / int8 weight dequantization and LLM.int8's activation quantization and
  int32-result dequantization: memory bound, but its kernels reach a different share of the bandwidth.
* ``elementwise``: every other op that moves memory: elementwise math, reductions, norms, softmax, casts,
  copies, dropout, embedding lookups, the loss.
* ``optimizer``: the optimizer step (``torch._foreach_*`` AdamW, bitsandbytes' fused updates).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ATTENTION_BACKWARD_FACTOR", "MATMUL_CLASSES", "OP_CLASSES", "Op", "OpClass", "StepOps", "aggregate"]

ATTENTION_BACKWARD_FACTOR = 2.5  # FlashAttention-2 backward: 5 matmuls (QK^T recomputed) against 2 forward

OpClass = Literal["matmul_bf16", "matmul_fp32", "matmul_int8", "attention", "dequant", "elementwise", "optimizer"]
OP_CLASSES: tuple[OpClass, ...] = (
    "matmul_bf16",
    "matmul_fp32",
    "matmul_int8",
    "attention",
    "dequant",
    "elementwise",
    "optimizer",
)
MATMUL_CLASSES: frozenset[str] = frozenset({"matmul_bf16", "matmul_fp32", "matmul_int8", "attention"})


@dataclass(frozen=True)
class Op:
    """One kind of kernel and how often it runs per optimizer step on one GPU.

    Attributes:
        cls: The op class (see the module docstring).
        flops: FLOPs of one call (a multiply-add is 2); 0 for memory-bound ops.
        bytes: Bytes one call reads and writes in device memory.
        min_dim: Smallest of a matmul's M, N, K (for attention: the head dimension); 0 otherwise.
        count: Calls per optimizer step (may be fractional after averaging over recorded steps).
        launches: Kernel launches per call.
        name: The operator (or closed-form term) it came from.
    """

    cls: OpClass
    flops: float
    bytes: float
    min_dim: int = 0
    count: float = 1.0
    launches: float = 1.0
    name: str = ""

    def key(self) -> tuple[Any, ...]:
        """Identity for merging equal ops (everything but the count)."""
        return (self.cls, self.flops, self.bytes, self.min_dim, self.launches, self.name)


@dataclass(frozen=True)
class StepOps:
    """The ops of one optimizer step on one GPU.

    Attributes:
        ops: The distinct ops with their counts per optimizer step.
        tokens: Tokens processed per optimizer step on one GPU (``micro_batch x seq_len x grad_accum``).
        micro_batches: Micro-batch passes per optimizer step (``grad_accum``).
        engine: ``formula`` or ``simulate``.
        notes: What was approximated or not modelled.
    """

    ops: tuple[Op, ...]
    tokens: int
    micro_batches: int
    engine: str
    notes: tuple[str, ...] = field(default=())

    def total(self, what: Literal["flops", "bytes", "launches"], cls: str | None = None) -> float:
        """Sum of FLOPs, bytes or kernel launches over the step (optionally one class)."""
        return sum(
            op.count * (op.flops if what == "flops" else op.bytes if what == "bytes" else op.launches)
            for op in self.ops
            if cls is None or op.cls == cls
        )

    def by_class(self) -> dict[str, dict[str, float]]:
        """FLOPs, bytes and launches per op class (JSON-ready)."""
        return {
            cls: {
                "flops": self.total("flops", cls),
                "bytes": self.total("bytes", cls),
                "launches": self.total("launches", cls),
            }
            for cls in OP_CLASSES
        }


def aggregate(ops: Iterable[Op], scale: float = 1.0) -> tuple[Op, ...]:
    """Merge equal ops, summing their counts (times ``scale``), in first-seen order."""
    merged: dict[tuple[Any, ...], Op] = {}
    for op in ops:
        key = op.key()
        seen = merged.get(key)
        count = op.count * scale + (seen.count if seen is not None else 0.0)
        merged[key] = Op(op.cls, op.flops, op.bytes, op.min_dim, count, op.launches, op.name)
    return tuple(merged.values())
