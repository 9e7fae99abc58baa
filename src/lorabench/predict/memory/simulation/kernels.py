"""Device kernels for a simulation that runs on meta tensors: attention and dropout of the target device.

The simulated step runs on PyTorch's meta device (shapes and dtypes, no data, kernels in C++): a CPU build
of PyTorch cannot run autograd on CUDA tensors, fake or not (the autograd engine asks for a CUDA device
guard and the process aborts), and meta kernels are several times faster than ``FakeTensorMode``'s. The
few functions whose memory depends on the device's kernel are swapped by :class:`TargetKernels`, a
``TorchFunctionMode`` active only during the simulated step:

- ``F.scaled_dot_product_attention``:

  * ``cpu``: what PyTorch 2.13's CPU dispatcher does: a boolean mask becomes an additive bias of the
    query's dtype (``where``), then ``_scaled_dot_product_flash_attention_for_cpu`` (grouped-query attention
    natively); it keeps the output and an fp32 logsumexp, *no* ``s x s`` matrix (the CPU kernel is a
    flash-attention kernel in PyTorch 2.13, masks and grouped-query attention included).
  * ``cuda``: the backend PyTorch would pick (flash, then memory-efficient, then math), each allocating
    what its kernel allocates. Flash (fp16/bf16, no mask, head dim <= 256 and a multiple of 8,
    grouped-query attention allowed): forward keeps the output (laid out like the query) and an fp32
    logsumexp ``(b, h, s)``; backward allocates dq/dk/dv, fp32 ``softmax_d`` ``(b, h, s128)`` and
    ``dq_accum`` ``(b, s128, h, d32)``, and for grouped-query attention dk/dv expanded to every query head.
    Memory-efficient (also fp32, additive masks; no grouped-query attention): the boolean mask becomes a
    float bias (saved for backward); output ``(b, s, h, d)``, fp32 logsumexp ``(b, h, s32)``; backward
    allocates dq/dk/dv, fp32 ``delta`` and, below fp32, an fp32 dq accumulator. Otherwise the math path
    (``_scaled_dot_product_attention_math``, the same code on every device), which materializes ``s x s``
    attention in fp32 -- e.g. fp32 activations (k-bit preparation upcasts them) with grouped-query attention
    and no mask.

- ``F.dropout``: ``cpu`` keeps the meta device's (= the CPU's) unfused kernel, which saves a mask of the
  input's dtype; ``cuda`` uses the fused ``native_dropout`` (1-byte mask).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["TargetKernels", "cuda_attention_backend", "kernel_overrides"]

_FLASH_MAX_HEAD_DIM = 256


def _round(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def cuda_attention_backend(
    query: torch.Tensor, key: torch.Tensor, attn_mask: torch.Tensor | None, enable_gqa: bool
) -> str:
    """The SDPA backend PyTorch's CUDA dispatcher picks for these inputs: ``flash``, ``efficient`` or ``math``."""
    head_dim = query.shape[-1]
    low_precision = query.dtype in (torch.float16, torch.bfloat16)
    grouped = query.shape[-3] != key.shape[-3]
    if grouped and not enable_gqa:
        return "math"
    if low_precision and attn_mask is None and head_dim <= _FLASH_MAX_HEAD_DIM and head_dim % 8 == 0:
        return "flash"
    aligned = head_dim % (8 if low_precision else 4) == 0
    if not grouped and aligned and query.dtype in (torch.float16, torch.bfloat16, torch.float32):
        return "efficient"
    return "math"


class _FlashAttention(torch.autograd.Function):
    """Memory behaviour of CUDA ``_scaled_dot_product_flash_attention`` (FlashAttention-2)."""

    @staticmethod
    def forward(ctx: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        batch, heads, length, _ = query.shape
        out = torch.empty_like(query)  # mha_fwd: empty_like(q) on the (b, s, h, d) view = the query's layout
        logsumexp = query.new_empty((batch, heads, length), dtype=torch.float32)
        ctx.save_for_backward(query, key, value, out, logsumexp)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        query, key, value, _out, _lse = ctx.saved_tensors
        if grad_out.stride(-1) != 1:
            grad_out = grad_out.contiguous()
        batch, heads, length, head_dim = query.shape
        kv_heads, kv_length = key.shape[-3], key.shape[-2]
        grad_q = torch.empty_like(query)
        grad_k = torch.empty_like(key)
        grad_v = torch.empty_like(value)
        length_rounded = _round(length, 128)
        head_rounded = _round(head_dim, 32) if head_dim <= 192 else 256
        softmax_d = query.new_empty((batch, heads, length_rounded), dtype=torch.float32)
        dq_accum = query.new_empty((batch, length_rounded, heads, head_rounded), dtype=torch.float32)
        expanded: list[torch.Tensor] = []
        if kv_heads != heads:  # grouped-query attention: gradients for every query head, then summed
            expanded = [query.new_empty((batch, kv_length, heads, head_dim)) for _ in range(2)]
        del softmax_d, dq_accum, expanded
        return grad_q, grad_k, grad_v


class _EfficientAttention(torch.autograd.Function):
    """Memory behaviour of CUDA ``_scaled_dot_product_efficient_attention`` (memory-efficient kernel)."""

    @staticmethod
    def forward(
        ctx: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        batch, heads, length, _ = query.shape
        out = query.new_empty((batch, length, heads, value.shape[-1])).transpose(1, 2)
        logsumexp = query.new_empty((batch, heads, _round(length, 32)), dtype=torch.float32)
        ctx.save_for_backward(query, key, value, out, logsumexp, bias)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        query, key, value, _out, _lse, _bias = ctx.saved_tensors
        batch, heads, length, head_dim = query.shape
        grad_q = torch.empty_like(query)
        grad_k = torch.empty_like(key)
        grad_v = torch.empty_like(value)
        delta = query.new_empty((batch, heads, length), dtype=torch.float32)
        workspace = None
        if query.dtype != torch.float32:  # dq is accumulated in fp32 when the output type is not fp32
            workspace = query.new_empty((batch, length, heads, head_dim), dtype=torch.float32)
        del delta, workspace
        return grad_q, grad_k, grad_v, None


def _cuda_bias(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """CUDA SDPA's conversion of a boolean mask to an additive bias (zeros, then -inf where masked)."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    bias = torch.zeros_like(mask, dtype=dtype)
    return bias.masked_fill_(mask.logical_not(), float("-inf"))


def _cpu_bias(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """CPU SDPA's conversion of a boolean mask: ``where(mask, 0, -inf)`` in the query's dtype."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    zero = torch.scalar_tensor(0.0, dtype=dtype, device=mask.device)
    minus_inf = torch.scalar_tensor(float("-inf"), dtype=dtype, device=mask.device)
    return torch.where(mask, zero, minus_inf)


def _math(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bias: torch.Tensor | None,
    dropout_p: float,
    is_causal: bool,
    scale: float | None,
    enable_gqa: bool,
) -> torch.Tensor:
    result = torch.ops.aten._scaled_dot_product_attention_math(
        query, key, value, bias, dropout_p, is_causal, None, scale=scale, enable_gqa=enable_gqa
    )
    out: torch.Tensor = result[0]
    return out


def cuda_sdpa(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` with the memory behaviour of the CUDA backend it would use."""
    backend = cuda_attention_backend(query, key, attn_mask, enable_gqa)
    if backend == "flash":
        out: torch.Tensor = _FlashAttention.apply(query, key, value)
        return out
    bias = _cuda_bias(attn_mask, query.dtype)
    if backend == "efficient":
        out = _EfficientAttention.apply(query, key, value, bias)
        return out
    return _math(query, key, value, bias, dropout_p, is_causal, scale, enable_gqa)


def cpu_sdpa(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` as PyTorch's CPU dispatcher runs it (flash attention for CPU)."""
    bias = _cpu_bias(attn_mask, query.dtype)
    if query.shape[-3] != key.shape[-3] and not enable_gqa:
        return _math(query, key, value, bias, dropout_p, is_causal, scale, enable_gqa)
    result = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        query, key, value, dropout_p, is_causal, attn_mask=bias, scale=scale
    )
    out: torch.Tensor = result[0]
    return out


def cuda_dropout(x: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> torch.Tensor:
    """``F.dropout`` as CUDA runs it: the fused ``native_dropout`` (bool mask saved for backward)."""
    if not training or p == 0.0:
        return x
    out: torch.Tensor = torch.native_dropout(x, p, True)[0]
    if inplace:
        return x.copy_(out)
    return out


class TargetKernels(TorchFunctionMode):
    """Runs attention (and on CUDA, dropout) with the memory behaviour of the target device's kernels."""

    def __init__(self, target: Literal["cuda", "cpu"]) -> None:
        super().__init__()
        self.target = target
        self._sdpa = cuda_sdpa if target == "cuda" else cpu_sdpa

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return self._sdpa(*args, **kwargs)
        if func is F.dropout and self.target == "cuda":
            return cuda_dropout(*args, **kwargs)
        return func(*args, **kwargs)


def _grouped_mm(tracker: Any, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``aten._grouped_mm`` (fused experts) for any dtype: the output of PyTorch's fallback for non-bf16 inputs.

    PyTorch >= 2.9 runs float32/float16 grouped matmuls through a per-group fallback on CUDA (and a CPU kernel),
    whose output has ``mat_a``'s dtype; the meta registration still accepts only bf16 (it mirrors the fast path's
    check). QLoRA's k-bit preparation upcasts fused experts to fp32, so the simulation needs the fallback's shape.
    """
    mat_a, mat_b = args[0], args[1]
    if mat_a.dtype == torch.bfloat16 and mat_b.dtype == torch.bfloat16:
        return tracker.run(func, *args, **kwargs)
    from torch._meta_registrations import _create_grouped_mm_output_tensor

    offs = args[2] if len(args) > 2 else kwargs.get("offs")
    out_dtype = kwargs.get("out_dtype") or (args[4] if len(args) > 4 else None) or mat_a.dtype
    out = _create_grouped_mm_output_tensor(mat_a, mat_b, offs, out_dtype)
    tracker.register_outputs(func, out)
    return out


def kernel_overrides() -> dict[Any, Any]:
    """Operator handlers the tracker applies on every target (today: the grouped matmul of fused experts)."""
    grouped = getattr(torch.ops.aten, "_grouped_mm", None)
    return {} if grouped is None else {grouped.default: _grouped_mm}
