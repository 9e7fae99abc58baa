"""bitsandbytes layers for the memory simulation: true storage, and the allocations their kernels make.

The simulation swaps each quantized ``nn.Linear`` for a substitute rather than building real bitsandbytes
layers: ``Params4bit`` / ``Int8Params`` cannot wrap fake tensors and quantize on construction, and
bitsandbytes picks its code path from the tensor's device (``MatMul8bitFp`` on a CPU, ``MatMul8bitLt`` on CUDA),
which for the simulation is neither the target device nor a real one. The substitutes *subclass*
``bnb.nn.Linear4bit`` / ``bnb.nn.Linear8bitLt`` (so PEFT wraps them with its real bitsandbytes LoRA layers,
the 4-bit ``result.clone()`` and DoRA's dequantization included) and hold meta tensors of exactly the storage
bitsandbytes allocates (:func:`lorabench.predict.memory.storage.linear_storage` gives the same bytes):

- 4-bit NF4 with double quantization: packed ``uint8`` weight ``((n + 1) // 2, 1)``, ``uint8`` absmax per 64
  elements, ``fp32`` absmax per 256 of those, the 16-entry NF4 and 256-entry nested code books and an ``fp32``
  offset.
- 8-bit LLM.int8: ``int8`` weight ``(out, in)`` and an ``fp32`` scale per output row (``SCB``), threshold 6.0 and
  ``has_fp16_weights=False`` as transformers loads it.

Their ``forward`` is bitsandbytes' own code path: ``bnb.matmul_4bit`` (and so the real ``MatMul4Bit`` autograd
function, whose backward dequantizes the full weight with the real ``F.dequantize_4bit``), and the real
``MatMul8bitLt`` (CUDA target) or ``MatMul8bitFp`` (CPU target) autograd functions. bitsandbytes' custom
operators have fake (meta) kernels that only allocate their outputs; :func:`bnb_overrides`
replaces the ones whose real kernels allocate more (or whose output size depends on data) with emulations
of what the target device's kernel allocates, read from bitsandbytes 0.50's backends:

- ``gemm_4bit``: CUDA dequantizes the weight (fp32 absmax twice, a bf16 weight) and calls ``F.linear`` for
  more than 512 rows (tokens) with weights of 4 Mi elements or more, for fewer rows with smaller weights
  (the Hopper/Ampere tiers), always beyond 1536 rows; below that its fused kernel allocates only the output.
  The CPU runs the dequantize-then-linear default implementation for any size.
- ``int8_vectorwise_quant`` / ``int8_mixed_scaled_mm`` (CUDA LLM.int8 forward): int8 activations, the
  ``|A| >= threshold`` outlier scan, an int32 matmul result, its fp16 dequantization and the cast to the input
  dtype. Outlier columns depend on the data; the emulation assumes none (each outlier column would add
  ``rows x 2`` bytes to the saved activations).
- the 8-bit and 32-bit optimizer updates: in-place CUDA kernels; on the CPU, bitsandbytes' Python fallback
  runs (it dequantizes the states to fp32), and the simulation runs that same code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lorabench.predict.memory.bnb_rules import Target
from lorabench.predict.memory.bnb_rules import gemm_4bit_dequantizes as _gemm_4bit_dequantizes
from lorabench.predict.memory.storage import NF4_BLOCKSIZE, NF4_NESTED_BLOCKSIZE

if TYPE_CHECKING:
    from lorabench.predict.memory.simulation.tracker import OpOverride, StorageTracker

__all__ = [
    "INT8_THRESHOLD",
    "Target",
    "bnb_overrides",
    "quant_constant_tensors",
    "sim_linear_4bit",
    "sim_linear_8bit",
]

INT8_THRESHOLD = 6.0  # transformers' BitsAndBytesConfig default (llm_int8_threshold)
_NF4_CODE = 16
_NESTED_CODE = 256


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def sim_linear_4bit(linear: nn.Linear, target: Target) -> nn.Module:
    """A ``bnb.nn.Linear4bit`` substitute with NF4 double-quantized storage (on ``linear``'s device)."""
    module: nn.Module = _linear_4bit_class()(linear, target)
    return module


def sim_linear_8bit(linear: nn.Linear, target: Target) -> nn.Module:
    """A ``bnb.nn.Linear8bitLt`` substitute with LLM.int8 storage (int8 weight + fp32 row scales)."""
    module: nn.Module = _linear_8bit_class()(linear, target)
    return module


@functools.cache
def _linear_4bit_class() -> type:
    import bitsandbytes as bnb
    from bitsandbytes.autograd._functions import matmul_4bit
    from bitsandbytes.functional import QuantState
    from bitsandbytes.nn.modules import Linear4bit

    base_class: Any = Linear4bit

    class SimLinear4bit(base_class):  # type: ignore[misc]
        """NF4 (double quant, bf16 compute) linear holding simulated storage; forward is bitsandbytes' own."""

        def __init__(self, base: nn.Linear, target: Target) -> None:
            nn.Module.__init__(self)
            device = base.weight.device
            self.in_features, self.out_features = base.in_features, base.out_features
            numel = base.in_features * base.out_features
            blocks = _ceil_div(numel, NF4_BLOCKSIZE)
            weight = nn.Parameter(
                torch.empty(((numel + 1) // 2, 1), dtype=torch.uint8, device=device), requires_grad=False
            )
            setattr(weight, "compress_statistics", True)  # noqa: B010 - read by PEFT when it wraps the layer
            setattr(weight, "quant_type", "nf4")  # noqa: B010
            self.weight = weight
            self.bias = base.bias
            self.register_buffer("qs_absmax", torch.empty(blocks, dtype=torch.uint8, device=device))
            self.register_buffer("qs_code", torch.empty(_NF4_CODE, dtype=torch.float32, device=device))
            self.register_buffer("qs_offset", torch.empty((), dtype=torch.float32, device=device))
            nested = _ceil_div(blocks, NF4_NESTED_BLOCKSIZE)
            self.register_buffer("qs_nested_absmax", torch.empty(nested, dtype=torch.float32, device=device))
            self.register_buffer("qs_nested_code", torch.empty(_NESTED_CODE, dtype=torch.float32, device=device))
            self.compute_dtype = torch.bfloat16
            self.compute_type_is_set = True
            self.quant_storage = torch.uint8
            self.support_avx512bf16_for_cpu = False
            self.sim_target = target

        @property
        def quant_state(self) -> Any:
            nested = QuantState(
                absmax=self.qs_nested_absmax,
                code=self.qs_nested_code,
                blocksize=NF4_NESTED_BLOCKSIZE,
                dtype=torch.float32,
            )
            return QuantState(
                absmax=self.qs_absmax,
                shape=torch.Size([self.out_features, self.in_features]),
                code=self.qs_code,
                blocksize=NF4_BLOCKSIZE,
                quant_type="nf4",
                dtype=torch.bfloat16,
                offset=self.qs_offset,
                state2=nested,
            )

        @quant_state.setter
        def quant_state(self, value: Any) -> None:
            pass  # bnb.nn.Linear4bit.__init__ assigns None; our state is derived from the buffers

        @property
        def W_q(self) -> torch.Tensor:  # PEFT's hook name: it dequantizes modules that have W_q
            weight: torch.Tensor = self.weight
            return weight

        def dequantize(self) -> torch.Tensor:
            """What PEFT's ``dequantize_bnb_weight`` returns: ``F.dequantize_4bit`` of the weight (bf16)."""
            weight: torch.Tensor = bnb.functional.dequantize_4bit(self.weight, self.quant_state)
            return weight

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # bnb.nn.Linear4bit.forward, without the CPU inference repacking (not taken in training)
            inp_dtype = x.dtype
            x = x.to(self.compute_dtype)
            bias: torch.Tensor | None = None
            if self.bias is not None:
                if self.bias.dtype != x.dtype:
                    self.bias.data = self.bias.data.to(x.dtype)
                bias = self.bias.to(self.compute_dtype)
            out: torch.Tensor = matmul_4bit(x, self.weight, bias=bias, quant_state=self.quant_state)
            return out.to(inp_dtype)

    return SimLinear4bit


@functools.cache
def _linear_8bit_class() -> type:
    import bitsandbytes as bnb
    from bitsandbytes.autograd._functions import MatMul8bitFp, MatMul8bitLt, MatmulLtState
    from bitsandbytes.nn.modules import Linear8bitLt

    base_class: Any = Linear8bitLt

    class SimLinear8bitLt(base_class):  # type: ignore[misc]
        """LLM.int8 linear (threshold 6, no fp16 weights) holding simulated storage."""

        def __init__(self, base: nn.Linear, target: Target) -> None:
            nn.Module.__init__(self)
            device = base.weight.device
            self.in_features, self.out_features = base.in_features, base.out_features
            self.weight = nn.Parameter(
                torch.empty((base.out_features, base.in_features), dtype=torch.int8, device=device),
                requires_grad=False,
            )
            self.bias = base.bias
            self.register_buffer("SCB", torch.empty(base.out_features, dtype=torch.float32, device=device))
            self.state = MatmulLtState()
            self.state.threshold = INT8_THRESHOLD
            self.state.has_fp16_weights = False
            self.state.use_pool = True
            self.index = None
            self.sim_target = target

        @property
        def W_q(self) -> torch.Tensor:  # PEFT's hook name: it dequantizes modules that have W_q
            weight: torch.Tensor = self.weight
            return weight

        def dequantize(self) -> torch.Tensor:
            """What PEFT's ``dequantize_bnb_weight`` returns for int8: ``int8_vectorwise_dequant`` (fp32)."""
            weight: torch.Tensor = bnb.functional.int8_vectorwise_dequant(self.weight, self.SCB)
            return weight

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # bnb.nn.Linear8bitLt.forward; bnb.matmul picks MatMul8bitFp on a CPU and MatMul8bitLt on CUDA
            self.state.is_training = self.training
            self.state.CB = self.weight
            self.state.SCB = self.SCB
            if self.bias is not None and self.bias.dtype != x.dtype:
                self.bias.data = self.bias.data.to(x.dtype)
            function = MatMul8bitFp if self.sim_target == "cpu" and self.training else MatMul8bitLt
            out: torch.Tensor = function.apply(x, self.weight, None, self.bias, self.state)
            return out

    return SimLinear8bitLt


def quant_constant_tensors(module: nn.Module) -> list[torch.Tensor]:
    """The quantization constants of a substitute layer (absmax, code books, offset, row scales)."""
    names = ("qs_absmax", "qs_code", "qs_offset", "qs_nested_absmax", "qs_nested_code", "SCB")
    found = [getattr(module, name, None) for name in names]
    return [t for t in found if isinstance(t, torch.Tensor)]


# ---------------------------------------------------------------------- kernel emulations


def _gemm_4bit(target: Target) -> OpOverride:
    def handler(t: StorageTracker, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        names = (
            "A",
            "B",
            "shapeB",
            "absmax",
            "blocksize",
            "quant_type",
            "bias",
            "absmax_8bit",
            "absmax_code",
            "absmax_offset",
        )
        values: dict[str, Any] = dict(zip(names, args, strict=False))
        values.update(kwargs)
        a: torch.Tensor = values["A"]
        shape_b = (int(values["shapeB"][0]), int(values["shapeB"][1]))
        bias = values.get("bias")
        rows = a.numel() // a.shape[-1]
        ops = torch.ops.bitsandbytes
        if not _gemm_4bit_dequantizes(target, rows, shape_b, int(values["blocksize"])):
            contiguous = a.contiguous()
            t.track(contiguous)
            shape_c = (*a.shape[:-1], shape_b[0])
            return t.run(torch.ops.aten.empty.memory_format, shape_c, dtype=a.dtype, device=a.device)
        absmax = values["absmax"]
        kept: list[torch.Tensor] = []
        if values.get("absmax_8bit") is not None:
            dq = t.run(
                ops.dequantize_blockwise.default,
                values["absmax_8bit"],
                absmax,
                values["absmax_code"],
                NF4_NESTED_BLOCKSIZE,
                torch.float32,
            )
            absmax = t.run(torch.ops.aten.add.Tensor, dq, values["absmax_offset"])
            if target == "cuda":
                kept.append(dq)  # CUDA's fallback keeps its absmax buffer until it returns
            del dq
        weight = t.run(
            ops.dequantize_4bit.default,
            values["B"],
            absmax,
            values["blocksize"],
            values["quant_type"],
            shape_b,
            a.dtype,
        )
        out = torch.nn.functional.linear(a, weight, bias)
        t.track(out)
        del kept, weight, absmax
        return out

    return handler


def _int8_vectorwise_quant(t: StorageTracker, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    a: torch.Tensor = args[0]
    threshold = float(args[1] if len(args) > 1 else kwargs.get("threshold", 0.0))
    rows = a.numel() // a.shape[-1]
    aten = torch.ops.aten
    row_stats = t.run(aten.empty.memory_format, (rows,), dtype=torch.float32, device=a.device)
    out_row = t.run(aten.empty.memory_format, tuple(a.shape), dtype=torch.int8, device=a.device)
    outlier_cols = None
    if threshold > 0.0:
        magnitude = t.run(aten.abs.default, a)
        outliers = t.run(aten.ge.Scalar, magnitude, threshold)
        del magnitude
        t.run(aten.any.default, outliers)
        del outliers
        outlier_cols = t.run(aten.empty.memory_format, (0,), dtype=torch.int64, device=a.device)  # no outliers
    return out_row, row_stats, outlier_cols


def _int8_mixed_scaled_mm(t: StorageTracker, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    names = ("A", "CA", "CB", "SCA", "SCB", "outlier_cols", "bias")
    values: dict[str, Any] = dict(zip(names, args, strict=False))
    values.update(kwargs)
    a: torch.Tensor = values["A"]
    ca: torch.Tensor = values["CA"]
    cb: torch.Tensor = values["CB"]
    bias = values.get("bias")
    aten = torch.ops.aten
    sub_a = t.run(aten.empty.memory_format, (0,), dtype=a.dtype, device=a.device)  # no outliers (module doc)
    shape_c = (*ca.shape[:-1], cb.shape[0])
    out_i32 = t.run(aten.empty.memory_format, shape_c, dtype=torch.int32, device=a.device)  # cuBLASLt int8 mm
    out_f16 = t.run(aten.empty.memory_format, shape_c, dtype=torch.float16, device=a.device)  # int8_mm_dequant
    del out_i32
    if bias is not None and bias.dtype != torch.float16:
        out_f16.add_(bias)
    out = out_f16 if a.dtype == torch.float16 else t.run(aten._to_copy.default, out_f16, dtype=a.dtype)
    del out_f16
    return out, sub_a


def _int8_vectorwise_dequant(t: StorageTracker, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    a, stats = args[0], args[1]
    scaled = t.run(torch.ops.aten.mul.Tensor, a, stats.view(-1, 1))  # the default kernel: A * stats * (1/127)
    return t.run(torch.ops.aten.mul.Scalar, scaled, 7.874015718698502e-3)


def _in_place_update(t: StorageTracker, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return func(*args, **kwargs)  # CUDA optimizer kernels update the states in place


def _cpu_optimizer_update(impl: Callable[..., Any]) -> OpOverride:
    def handler(t: StorageTracker, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with t:  # bitsandbytes' CPU fallback is Python over torch ops: run it under the tracker
            return impl(*args, **kwargs)

    return handler


def bnb_overrides(target: Target) -> dict[Any, OpOverride]:
    """Operator handlers emulating what ``target``'s bitsandbytes kernels allocate."""
    import bitsandbytes  # noqa: F401 - registers torch.ops.bitsandbytes

    ops = torch.ops.bitsandbytes
    overrides: dict[Any, OpOverride] = {
        ops.gemm_4bit.default: _gemm_4bit(target),
        ops.int8_vectorwise_quant.default: _int8_vectorwise_quant,
        ops.int8_mixed_scaled_mm.default: _int8_mixed_scaled_mm,
        ops.int8_vectorwise_dequant.default: _int8_vectorwise_dequant,
    }
    if target == "cuda":
        overrides[ops.optimizer_update_32bit.default] = _in_place_update
        overrides[ops.optimizer_update_8bit_blockwise.default] = _in_place_update
    else:
        from bitsandbytes.backends.cpu import ops as cpu_ops

        for name, op in (
            ("_optimizer_update_32bit_cpu", ops.optimizer_update_32bit.default),
            ("_optimizer_update_8bit_blockwise_cpu", ops.optimizer_update_8bit_blockwise.default),
        ):
            impl = getattr(cpu_ops, name, None)
            if impl is not None:
                overrides[op] = _cpu_optimizer_update(impl)
    return overrides
