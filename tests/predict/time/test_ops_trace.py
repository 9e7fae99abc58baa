"""Op classification of the traced step, on hand-made meta tensors."""

from __future__ import annotations

import pytest
import torch

from lorabench.predict.time.ops import Op, StepOps, aggregate
from lorabench.predict.time.trace import ATTENTION_BACKWARD_FACTOR, attention_ops, classify, tensor_bytes

aten = torch.ops.aten
META = torch.device("meta")


def _t(*shape: int, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device=META)


def test_bf16_matmul_flops_bytes_and_smallest_dim() -> None:
    a, b = _t(64, 32), _t(32, 16)
    out = aten.mm.default(a, b)
    (op,) = classify(aten.mm.default, (a, b), out)
    assert op.cls == "matmul_bf16"
    assert op.flops == 2 * 64 * 32 * 16
    assert op.bytes == 2 * (64 * 32 + 32 * 16 + 64 * 16)
    assert op.min_dim == 16


def test_fp32_and_batched_matmul() -> None:
    a, b = _t(3, 8, 4, dtype=torch.float32), _t(3, 4, 5, dtype=torch.float32)
    (op,) = classify(aten.bmm.default, (a, b), aten.bmm.default(a, b))
    assert (op.cls, op.flops, op.min_dim) == ("matmul_fp32", 2 * 3 * 8 * 4 * 5, 4)


def test_elementwise_views_and_allocations() -> None:
    x = _t(10, 10)
    (op,) = classify(aten.add.Tensor, (x, x), aten.add.Tensor(x, x))
    assert op.cls == "elementwise" and op.flops == 0 and op.bytes == 3 * 200
    assert classify(aten.view.default, (x, [100]), aten.view.default(x, [100])) == []
    assert classify(aten.empty_like.default, (x,), aten.empty_like.default(x)) == []


def test_broadcast_input_counts_distinct_elements() -> None:
    row = _t(1, 10).expand(10, 10)
    assert tensor_bytes(row) == 2 * 10


def test_int8_weight_cast_is_dequant_and_foreach_is_optimizer() -> None:
    w = _t(8, 8, dtype=torch.int8)
    (op,) = classify(aten._to_copy.default, (w,), aten._to_copy.default(w, dtype=torch.bfloat16))
    assert op.cls == "dequant" and op.bytes == 64 + 128
    params = [_t(4, dtype=torch.float32) for _ in range(3)]
    (opt,) = classify(aten._foreach_mul_.Scalar, (params, 0.9), None)
    assert opt.cls == "optimizer" and opt.bytes == 3 * 16


def test_bnb_4bit_gemm_is_dequant_then_bf16_matmul() -> None:
    pytest.importorskip("bitsandbytes")
    a = _t(2048, 64)
    packed = _t(64 * 32 // 2, 1, dtype=torch.uint8)
    out = _t(2048, 32)
    ops = classify(torch.ops.bitsandbytes.gemm_4bit.default, (a, packed, [32, 64], None, 64, "nf4"), out)
    assert [o.cls for o in ops] == ["dequant", "matmul_bf16"]
    assert ops[1].flops == 2 * 2048 * 32 * 64


def test_attention_flops_causal_half_and_backward() -> None:
    q, k = _t(2, 4, 128, 64), _t(2, 2, 128, 64)
    fwd, bwd = attention_ops(q, k, causal=True, grad_ckpt=True)
    assert fwd.flops == 4 * 2 * 4 * 128 * 128 * 64 * 0.5
    assert fwd.count == 2  # recomputed under checkpointing
    assert bwd.flops == ATTENTION_BACKWARD_FACTOR * fwd.flops


def test_aggregate_merges_counts() -> None:
    op = Op("elementwise", 0.0, 10.0)
    merged = aggregate([op, op, Op("elementwise", 0.0, 20.0)], scale=0.5)
    assert [m.count for m in merged] == [1.0, 0.5]
    step = StepOps(merged, tokens=1, micro_batches=1, engine="x")
    assert step.total("bytes") == 20.0
