"""Counting a training step op by op from the real step: the ``simulate`` time engine.

:class:`OpRecorder` is stacked into the memory simulation (:func:`lorabench.predict.memory.simulation.engine.simulate`,
its ``op_recorder`` hook), which runs the real Hugging Face + PEFT (+ bitsandbytes) training step on meta
tensors for the CUDA target. It sees every operator before the simulation's storage tracker does:

* a ``TorchDispatchMode`` records each ATen / bitsandbytes operator with its FLOPs (matmuls: ``2 M N K``),
  bytes (every tensor argument read and every output written, counting the distinct elements of a broadcast
  view once) and class (:func:`classify`). Views and allocations (``empty``...) launch no kernel and are
  skipped. bitsandbytes' fused ops are split into the kernels CUDA runs (``gemm_4bit``: dequantize + bf16
  matmul, or the fused 4-bit kernel; ``int8_mixed_scaled_mm``: int8 matmul + int32 dequantization + cast).
* a ``TorchFunctionMode`` records ``F.scaled_dot_product_attention`` (the simulation replaces it by the
  CUDA kernel's memory behaviour, which runs no ATen compute op): FLOPs ``4 b h s_q s_k d`` (half under
  ``is_causal``), forward and backward (``2.5x``: FlashAttention-2 recomputes ``QK^T``), plus one more
  forward per call under gradient checkpointing (the recomputation runs in backward, where function modes
  are not active, so it is counted from the forward call).

The simulation runs two optimizer steps of ``min(grad_accum, 2)`` micro batches; :func:`traced_step_ops`
scales the counts to one optimizer step of ``grad_accum`` micro batches.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from lorabench.predict.time.ops import ATTENTION_BACKWARD_FACTOR, Op, OpClass, StepOps, aggregate
from lorabench.spec import RunSpec

__all__ = ["ATTENTION_BACKWARD_FACTOR", "OpRecorder", "classify", "tensor_bytes", "traced_step_ops"]

_FOREACH_CHUNK = 32  # tensors per launch of a multi-tensor-apply foreach kernel (approximation)
_FREE = frozenset(
    {
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "detach",
        "_unsafe_view",
        "_reshape_alias",
        "lift_fresh",
        "_local_scalar_dense",
        "set_",
        "resize_",
        "is_same_size",
        "_has_compatible_shallow_copy_type",
        "record_stream",
    }
)
_MATMULS = frozenset({"mm", "addmm", "bmm", "baddbmm", "_int_mm"})
_LOW_BITS = (torch.int8, torch.uint8)


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a kernel touches reading or writing ``t``: its distinct elements (stride-0 dims counted once)."""
    elements = 1
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if stride != 0:
            elements *= size
    return elements * t.element_size()


def _tensors(values: Any) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    stack = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return found


def _op_name(func: Any) -> tuple[str, str]:
    """``(namespace, name)`` of an operator overload, e.g. ``("aten", "mm")``."""
    schema_name = str(func._schema.name)  # e.g. "aten::mm"
    namespace, _, name = schema_name.partition("::")
    return namespace, name


def _is_view(func: Any) -> bool:
    returns = func._schema.returns
    return bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)


def _matmul_class(dtype: torch.dtype) -> OpClass:
    if dtype in _LOW_BITS:
        return "matmul_int8"
    if dtype == torch.float32:
        return "matmul_fp32"
    return "matmul_bf16"


def _matmul(name: str, args: tuple[Any, ...]) -> tuple[float, int, torch.dtype]:
    """FLOPs, smallest dim and operand dtype of an ATen matmul."""
    a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
    batch = a.shape[0] if a.dim() == 3 else 1
    m, k = a.shape[-2], a.shape[-1]
    n = b.shape[-1]
    return 2.0 * batch * m * n * k, int(min(m, n, k)), a.dtype


def classify(func: Any, args: tuple[Any, ...], out: Any) -> list[Op]:
    """The kernels one dispatched operator runs on CUDA, as ops (empty for views and allocations).

    Args:
        func: The ATen / bitsandbytes operator overload.
        args: Its positional arguments (tensors with shapes and dtypes; meta tensors are fine).
        out: What it returned.
    """
    namespace, name = _op_name(func)
    if name in _FREE or _is_view(func):
        return []
    ins = _tensors(args)
    outs = _tensors(out)
    moved = float(sum(tensor_bytes(t) for t in ins) + sum(tensor_bytes(t) for t in outs))
    if namespace == "bitsandbytes":
        return _bnb_ops(name, args, out, moved)
    if name in _MATMULS:
        flops, smallest, dtype = _matmul(name, args)
        return [Op(_matmul_class(dtype), flops, moved, smallest, name=name)]
    if name.startswith("_foreach_") or name.startswith("_fused_adam"):
        launches = float(max(1, math.ceil(len(ins) / _FOREACH_CHUNK)))
        return [Op("optimizer", 0.0, moved, launches=launches, name=name)]
    if name in ("_to_copy", "copy_") and ins and ins[-1].dtype in _LOW_BITS and outs and outs[0].is_floating_point():
        return [Op("dequant", 0.0, moved, name=name)]
    if not ins and not outs:
        return []
    return [Op("elementwise", 0.0, moved, name=name)]


def _gemm_4bit(args: tuple[Any, ...], out: Any) -> list[Op]:
    from lorabench.predict.memory.bnb_rules import gemm_4bit_dequantizes as _gemm_4bit_dequantizes

    a: torch.Tensor = args[0]
    packed: torch.Tensor = args[1]
    n, k = int(args[2][0]), int(args[2][1])
    blocksize = int(args[4]) if len(args) > 4 else 64
    rows = a.numel() // a.shape[-1]
    out_bytes = float(sum(tensor_bytes(t) for t in _tensors(out)))
    weight_bf16 = 2.0 * n * k
    constants = float(n * k / blocksize * 4)
    if not _gemm_4bit_dequantizes("cuda", rows, (n, k), blocksize):  # fused 4-bit kernel: reads the packed weight
        moved = tensor_bytes(a) + tensor_bytes(packed) + constants + out_bytes
        return [Op("dequant", 2.0 * rows * n * k, moved, min(rows, n, k), name="gemm_4bit_fused")]
    return [
        Op("dequant", 0.0, tensor_bytes(packed) + constants + weight_bf16, launches=2.0, name="dequantize_4bit"),
        Op("matmul_bf16", 2.0 * rows * n * k, tensor_bytes(a) + weight_bf16 + out_bytes, min(rows, n, k), name="mm"),
    ]


def _bnb_ops(name: str, args: tuple[Any, ...], out: Any, moved: float) -> list[Op]:
    if name == "gemm_4bit":
        return _gemm_4bit(args, out)
    if name == "int8_mixed_scaled_mm":  # int8 matmul (int32 out) + int8_mm_dequant (fp16) + cast to the input type
        a: torch.Tensor = args[0]
        ca: torch.Tensor = args[1]
        cb: torch.Tensor = args[2]
        rows, k, n = ca.numel() // ca.shape[-1], ca.shape[-1], cb.shape[0]
        result = float(rows * n)
        ops = [
            Op("matmul_int8", 2.0 * rows * n * k, tensor_bytes(ca) + tensor_bytes(cb) + 4 * result, min(rows, n, k)),
            Op("dequant", 0.0, 4 * result + 2 * result + 4 * (rows + n), name="int8_mm_dequant"),
        ]
        if a.dtype != torch.float16:
            ops.append(Op("elementwise", 0.0, 2 * result + a.element_size() * result, name="_to_copy"))
        return ops
    if name == "int8_vectorwise_quant":  # the activation quantization (+ the |A| >= threshold outlier scan)
        a = args[0]
        threshold = float(args[1]) if len(args) > 1 else 0.0
        scan = 2.0 * tensor_bytes(a) if threshold > 0 else 0.0
        return [Op("dequant", 0.0, moved + scan, launches=3.0 if threshold > 0 else 1.0, name=name)]
    if name.startswith("optimizer_update"):
        return [Op("optimizer", 0.0, moved, name=name)]
    if name == "int8_linear_matmul":
        ca, cb = args[0], args[1]
        rows, k, n = ca.numel() // ca.shape[-1], ca.shape[-1], cb.shape[0]
        return [Op("matmul_int8", 2.0 * rows * n * k, moved, min(rows, n, k), name=name)]
    if "quant" in name or "dequant" in name:
        return [Op("dequant", 0.0, moved, name=name)]
    return [Op("elementwise", 0.0, moved, name=name)]


def attention_ops(
    query: torch.Tensor, key: torch.Tensor, causal: bool, grad_ckpt: bool, needs_grad: bool = True
) -> list[Op]:
    """Forward (+ recompute) and backward of one fused attention call with these shapes."""
    batch, heads, length, head_dim = query.shape
    keys = key.shape[-2]
    kv_heads = key.shape[-3]
    frac = 0.5 if causal and length > 1 else 1.0
    flops = 4.0 * batch * heads * length * keys * head_dim * frac
    q_bytes = float(batch * heads * length * head_dim * query.element_size())
    kv_bytes = float(2 * batch * kv_heads * keys * head_dim * query.element_size())
    forward_bytes = 2 * q_bytes + kv_bytes  # read q, k, v, write the output (+ a small logsumexp)
    ops = [Op("attention", flops, forward_bytes, head_dim, count=2.0 if grad_ckpt else 1.0, name="sdpa_forward")]
    if needs_grad:
        backward_bytes = 4 * q_bytes + 2 * kv_bytes  # read q, k, v, out, dout; write dq, dk, dv
        ops.append(Op("attention", ATTENTION_BACKWARD_FACTOR * flops, backward_bytes, head_dim, name="sdpa_backward"))
    return ops


class _AttentionMode(TorchFunctionMode):
    def __init__(self, recorder: OpRecorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and torch._C._current_graph_task_id() == -1:
            from lorabench.predict.memory.simulation.kernels import cuda_attention_backend

            query, key = args[0], args[1]
            mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
            causal = bool(args[5] if len(args) > 5 else kwargs.get("is_causal", False))
            gqa = bool(kwargs.get("enable_gqa", False))
            # the math backend runs ATen ops (bmm, softmax) that the dispatch recorder counts itself;
            # a causal mask given explicitly still skips no blocks in the memory-efficient kernel
            if cuda_attention_backend(query, key, mask, gqa) != "math":
                self.recorder.ops.extend(attention_ops(query, key, causal and mask is None, self.recorder.grad_ckpt))
        return func(*args, **kwargs)


class _DispatchRecorder(TorchDispatchMode):
    def __init__(self, recorder: OpRecorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.recorder.ops.extend(classify(func, args, out))
        return out


class OpRecorder:
    """Records the ops of the simulated training step (a context manager for ``simulate(op_recorder=...)``).

    Args:
        grad_ckpt: Whether the step recomputes each decoder layer in backward (attention recomputed).
    """

    def __init__(self, grad_ckpt: bool) -> None:
        self.grad_ckpt = grad_ckpt
        self.ops: list[Op] = []
        self._function = _AttentionMode(self)
        self._dispatch = _DispatchRecorder(self)

    def __enter__(self) -> OpRecorder:
        self._function.__enter__()
        self._dispatch.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._dispatch.__exit__(kind, value, traceback)
        self._function.__exit__(kind, value, traceback)


def traced_step_ops(spec: RunSpec) -> StepOps:
    """Run the real training step on meta tensors (CUDA target) and count one optimizer step, op by op.

    Sequences are packed (every token real, no attention mask), as the measurement runner's random-token
    batches are; one GPU's share of the work.

    Raises:
        ConfigError / ModelError: as :func:`lorabench.predict.memory.simulation.engine.simulate`.
    """
    from lorabench.predict.memory.simulation.engine import _MAX_MICRO_BATCHES, _STEPS, simulate

    recorder = OpRecorder(spec.grad_ckpt)
    simulate(spec, device="cuda", padding="packed", op_recorder=recorder)
    micro = min(spec.grad_accum, _MAX_MICRO_BATCHES)
    pass_ops = [op for op in recorder.ops if op.cls != "optimizer"]
    step_ops = [op for op in recorder.ops if op.cls == "optimizer"]
    ops = aggregate(pass_ops, spec.grad_accum / (_STEPS * micro)) + aggregate(step_ops, 1.0 / _STEPS)
    return StepOps(
        ops=aggregate(ops),
        tokens=spec.micro_batch * spec.seq_len * spec.grad_accum,
        micro_batches=spec.grad_accum,
        engine="simulate",
        notes=(
            "packed sequences (no attention mask); LLM.int8 outlier columns assumed none",
            "optimizer state creation of the first step averaged over the two simulated steps",
            *(
                ("autocast: the traced step runs without it (fp32 adapter matmuls); the formula engine counts it",)
                if spec.autocast
                else ()
            ),
        ),
    )
