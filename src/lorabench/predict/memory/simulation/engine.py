"""Peak training memory by simulation: the real training step of the real model, on meta tensors.

:func:`simulate` builds the spec's Hugging Face model with its PEFT adapter (the real module graph; quantized
layers as bitsandbytes-faithful substitutes, :mod:`.sim_bnb`), and runs the training recipe of
``lorabench measure`` (:mod:`lorabench.recipe`) for two optimizer steps -- forward with labels, backward,
``step()``, ``zero_grad(set_to_none=True)`` -- so that optimizer state exists, on PyTorch's meta device:
every operator computes output shapes, dtypes and strides, no data, and no memory is allocated. A
``TorchDispatchMode`` (:mod:`.sim_tracker`) records every storage's allocation and free; replaying those
events gives the exact peak of live bytes and what was live at that moment.

The target device matters. ``device="cuda"``: every block is rounded up to 512 bytes as the CUDA caching
allocator does (``torch.cuda.max_memory_allocated`` counts rounded blocks); attention and dropout run with the
memory behaviour of CUDA's kernels (:mod:`.sim_kernels`); bitsandbytes takes its CUDA code paths; AdamW is
``foreach`` (PyTorch's CUDA default) and its step counters stay on the host; ``paged_adamw_8bit`` state (CUDA
managed memory, invisible to ``max_memory_allocated``) is reported apart; and the two cuBLAS workspaces the
caching allocator hands out (one per thread that runs matmuls: the forward's and the autograd engine's) are
counted under ``temporaries``: 32 MiB each on Hopper/Blackwell (sm90/sm100), 8 MiB + 128 KiB on other GPUs
(PyTorch's defaults). ``device="cpu"``: what a CPU run allocates, byte for byte, with the CPU's kernels.

Validated: against real CPU training of the tiny model with the independent profiler counter (every method,
16/8/4-bit, both ranks and batches, checkpointing on and off: median |error| 0.03%, max 0.09%), and against
``torch.cuda.max_memory_allocated`` of Llama-3.1-8B on an H200 (results/gpu/h200-2026-11-28: within 0.04% once
the workspaces are counted; k-bit runs have 3.5-4.5 MiB more that is not accounted for).

Knobs: ``attention`` eager (transformers' eager attention, the s x s scores kept) or flash_attention_2 (SDPA without
a mask, which CUDA runs with the flash kernel); ``cross_entropy: fused`` (a chunked linear cross-entropy with
Liger's chunk size, :mod:`.model`); ``activation_offload`` (each checkpointed layer's saved input left out of the
device total); ``adamw_torch_fused`` (simulated as the single-tensor loop, step counters on the device) and
``adamw_4bit`` (simulated as bitsandbytes' 8-bit optimizer, its state resized to torchao's 4-bit bytes) are
approximations and say so in ``notes``. Fused experts (transformers 5 MoE) run as PyTorch's grouped matmul; its
fp32 fallback (QLoRA upcasts the unquantized experts) is given the fallback's output.

Not modelled: the allocator's block splitting and caching (``reserved`` > ``allocated``), the CUDA context,
LLM.int8 outlier columns (data-dependent; assumed none), ZeRO/DDP buffers (one device is simulated), and
``CUBLAS_WORKSPACE_CONFIG`` overrides. The only real memory touched: AdamW's 0-d step counters (CPU tensors, as
on a GPU) and bitsandbytes' two 1 KiB quantile maps, built on the CPU before they are moved to meta.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch

from lorabench.errors import ConfigError
from lorabench.models import resolve_model
from lorabench.models.build import quiet_hf
from lorabench.predict.memory.device import cublas_workspace_bytes
from lorabench.predict.memory.simulation.bnb import Target, bnb_overrides
from lorabench.predict.memory.simulation.kernels import TargetKernels, kernel_overrides
from lorabench.predict.memory.simulation.model import SimModel, build_sim_model
from lorabench.predict.memory.simulation.tracker import COMPONENTS, Component, Phase, StorageTracker
from lorabench.recipe import make_optimizer, training_step
from lorabench.spec import RunSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CUDA_BLOCK_BYTES", "SIM_COMPONENTS", "Padding", "SimResult", "cublas_workspace_bytes", "simulate"]

CUDA_BLOCK_BYTES = 512  # the caching allocator's minimum block and rounding unit
SIM_COMPONENTS: tuple[Component, ...] = COMPONENTS
Padding = Literal["padded", "packed"]
_PAGED_MIN_NUMEL = 100_000  # bitsandbytes pages optimizer state only for tensors this large
_TORCH_OPTIMIZERS = ("adamw_torch", "adamw_torch_fused")
ADAMW_4BIT_NOTE = (
    "adamw_4bit: simulated as bitsandbytes AdamW8bit, optimizer state then resized to torchao AdamW4bit's bytes"
)
ADAMW_FUSED_NOTE = (
    "adamw_torch_fused: simulated as single-tensor torch AdamW (same state; the fused kernel's few temporaries "
    "not modelled), step counters on the device"
)
_STEPS = 2
_MAX_MICRO_BATCHES = 2  # with accumulation, two micro-batches show gradients living through a forward


@dataclass(frozen=True)
class SimResult:
    """The simulated peak of one training step.

    Attributes:
        peak_allocated_bytes: Highest sum of live bytes (what ``torch.cuda.max_memory_allocated`` reports on
            CUDA, workspaces included; CPU allocator bytes on ``cpu``).
        breakdown: Bytes per component live at the peak (``weights``, ``quant_constants``, ``adapter``,
            ``gradients``, ``optimizer_state``, ``activations``, ``temporaries``); sums to the peak.
        peak_phase: ``forward``, ``backward`` or ``optimizer``.
        paged_optimizer_bytes: Optimizer state in CUDA managed memory (``paged_adamw_8bit``), not in the peak.
        device: The target device, ``cuda`` or ``cpu``.
        engine: ``simulate``.
        seconds: Wall time of the simulation.
        micro_batch: Rows per micro-batch simulated.
        seq_len: Tokens per row simulated.
        padding: ``padded`` (batches padded to ``seq_len`` with an attention mask, as the measurement
            runner collates) or ``packed`` (no padding, no mask).
        cublas_workspace_bytes: The cuBLAS workspaces included in ``temporaries`` (0 on ``cpu``).
        notes: What was approximated (e.g. ``adamw_4bit`` simulated as the 8-bit optimizer, resized).
    """

    peak_allocated_bytes: int
    breakdown: dict[str, int]
    peak_phase: str
    paged_optimizer_bytes: int
    device: str
    engine: str
    seconds: float
    micro_batch: int
    seq_len: int
    padding: str
    cublas_workspace_bytes: int = 0
    notes: tuple[str, ...] = ()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence library warnings and log lines (bitsandbytes' fp16 cast notice, paged-on-CPU warning)."""
    loggers = [logging.getLogger(name) for name in ("bitsandbytes", "peft", "transformers")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with quiet_hf(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class _MetaAutocast(torch.autocast):
    """``torch.autocast`` that accepts the meta device (as the CPU's), for PEFT's fused-expert fold.

    PEFT's ``lora.ParamWrapper`` disables autocast around its ``baddbmm`` with the parameter's device type, which is
    ``meta`` here; autocast has no meta device, so the region is entered as the CPU's (disabled: no cast either way).
    """

    def __init__(self, device_type: str, *args: Any, **kwargs: Any) -> None:
        super().__init__("cpu" if device_type == "meta" else device_type, *args, **kwargs)


@contextlib.contextmanager
def _meta_autocast() -> Iterator[None]:
    original = torch.autocast
    torch.autocast = _MetaAutocast  # type: ignore[misc]
    try:
        yield
    finally:
        torch.autocast = original  # type: ignore[misc]


def _check_args(spec: RunSpec, device: str, micro_batch: int | None, seq_len: int | None, padding: str) -> None:
    if device not in ("cuda", "cpu"):
        raise ConfigError(f"device must be 'cuda' or 'cpu' (got {device!r})")
    if padding not in ("padded", "packed"):
        raise ConfigError(f"padding must be 'padded' or 'packed' (got {padding!r})")
    for name, value in (("micro_batch", micro_batch), ("seq_len", seq_len)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{name} must be a positive integer (got {value!r})")
    needs_bnb = spec.bits < 16 or spec.optimizer not in _TORCH_OPTIMIZERS
    if needs_bnb and importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("simulating bitsandbytes layers or optimizers needs bitsandbytes installed")


def _make_batch(batch: int, length: int, tracker: StorageTracker) -> dict[str, Any]:
    """The collated batch on meta: ids, labels and attention mask (int64), every row ``length`` long."""
    meta = torch.device("meta")
    tensors = {
        name: torch.zeros((batch, length), dtype=torch.long, device=meta)
        for name in ("input_ids", "attention_mask", "labels")
    }
    tracker.track_all(tensors.values(), "activations")
    return tensors


def _wrap_checkpointing(model: nn.Module, tracker: StorageTracker, target: Target, offload: bool = False) -> None:
    """Make each checkpointed layer's recomputation (in backward) a forward region with the target's kernels.

    PyTorch does not carry torch-function modes into the backward pass, so the recomputation re-enters
    :class:`TargetKernels` itself (otherwise it would run the meta device's attention). With ``offload``
    (``activation_offload``) each layer's saved input -- the checkpoint -- lives in host memory: its storage is
    left out of the device total (its device copy while the layer runs is not counted either).
    """
    for module in model.modules():
        original = getattr(module, "_gradient_checkpointing_func", None)
        if original is None or not getattr(module, "gradient_checkpointing", False):
            continue

        def checkpointed(function: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            def region(*inner: Any, **inner_kwargs: Any) -> Any:
                if tracker.phase != "backward":
                    return function(*inner, **inner_kwargs)
                tracker.begin_region()
                try:
                    with TargetKernels(target):
                        return function(*inner, **inner_kwargs)
                finally:
                    tracker.end_region()

            if offload and tracker.phase == "forward" and args and isinstance(args[0], torch.Tensor):
                tracker.exclude(args[0])
            return _original(region, *args, **kwargs)

        object.__setattr__(module, "_gradient_checkpointing_func", checkpointed)


class _Step:
    """Phase bookkeeping between the recipe's steps and the tracker."""

    def __init__(
        self, sim: SimModel, tracker: StorageTracker, optimizer: torch.optim.Optimizer, target: Target, paged: bool
    ) -> None:
        self.sim = sim
        self.tracker = tracker
        self.optimizer = optimizer
        self.target = target
        self.paged = paged
        self.device_steps = False  # fused AdamW keeps its step counters on the device

    def __call__(self, event: str) -> None:
        tracker = self.tracker
        if event == "forward":
            tracker.set_phase("forward")
            tracker.begin_region()
        elif event == "forward_end":
            tracker.end_region()
        elif event in ("backward", "optimizer"):
            phase: Phase = "backward" if event == "backward" else "optimizer"
            tracker.set_phase(phase)
        elif event == "backward_end":
            for param in self.sim.adapter:
                if param.grad is not None:
                    tracker.track(param.grad, "gradients")
        elif event == "optimizer_end":
            self._mark_state()
            self.mark_static()

    def mark_static(self) -> None:
        """(Re)register parameters and buffers by role (a forward may give a parameter new storage)."""
        self.sim.refresh_roles()
        self.tracker.track_all(self.sim.weights, "weights")
        self.tracker.track_all(self.sim.quant_constants, "quant_constants")
        self.tracker.track_all(self.sim.adapter, "adapter")

    def _mark_state(self) -> None:
        for param, state in self.optimizer.state.items():
            for key, value in state.items():
                if not isinstance(value, torch.Tensor):
                    continue
                self.tracker.track(value, "optimizer_state")
                if self.target != "cuda":
                    continue
                if key == "step" and value.dim() == 0 and not self.device_steps:
                    self.tracker.exclude(value)  # torch.optim keeps step counters on the host
                elif self.paged and key in ("state1", "state2") and param.numel() >= _PAGED_MIN_NUMEL:
                    self.tracker.exclude(value, paged=True)


def _prepare_optimizer(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Move bitsandbytes' quantile maps to meta and turn paging off (its buffers need CUDA); returns the maps.

    Paged buffers hold the same bytes as ordinary ones; :class:`_Step` relabels them after each step.
    """
    qmaps: dict[str, torch.Tensor] = getattr(optimizer, "name2qmap", {})
    for name, qmap in list(qmaps.items()):
        qmaps[name] = qmap.to("meta")
    if getattr(optimizer, "is_paged", False):
        optimizer.is_paged = False  # type: ignore[attr-defined]
    return list(qmaps.values())


def simulate(
    spec: RunSpec,
    device: Literal["cuda", "cpu"] = "cuda",
    micro_batch: int | None = None,
    seq_len: int | None = None,
    *,
    padding: Padding = "padded",
    op_recorder: contextlib.AbstractContextManager[Any] | None = None,
) -> SimResult:
    """Simulate two training steps of ``spec`` and return the peak of allocated bytes and its breakdown.

    Args:
        spec: The run spec (model, method, bits, rank, targets, optimizer, checkpointing, accumulation, GPU).
        device: The device to predict for: ``cuda`` (CUDA kernels, 512-byte allocator blocks, cuBLAS
            workspaces for ``spec.hardware.gpu``) or ``cpu``.
        micro_batch: Rows per micro-batch (default: the spec's).
        seq_len: Tokens per row (default: the spec's).
        padding: ``padded`` (default): every row padded to ``seq_len`` with an attention mask, as
            ``lorabench measure`` collates -- the worst case: transformers then builds a 4-D mask and, for
            grouped-query attention, repeats the key/value heads for every query head, and CUDA uses the
            memory-efficient kernel instead of flash; ``packed``: every token real, no mask.
        op_recorder: Optional hook for the time engine: a context manager entered innermost around the
            simulated steps (:class:`lorabench.predict.time.trace.OpRecorder`), so it sees every operator first.

    Returns:
        The peak, its breakdown and phase, paged optimizer bytes and the wall time taken.

    Raises:
        ConfigError: Unknown device or padding, a non-positive batch or length, or bitsandbytes missing.
        ModelError: Unknown model or a target module the architecture does not have.
    """
    _check_args(spec, device, micro_batch, seq_len, padding)
    started = time.perf_counter()
    batch_rows = micro_batch or spec.micro_batch
    length = seq_len or spec.seq_len
    target: Target = device
    resolved = resolve_model(spec.model)
    requested = spec
    notes: tuple[str, ...] = ()
    if spec.optimizer == "adamw_4bit":  # torchao's tensor subclasses and compiled step do not run on meta
        spec = spec.model_copy(update={"optimizer": "adamw_8bit"})
    fused = spec.optimizer == "adamw_torch_fused"
    if fused:  # fused=True refuses meta tensors; the single-tensor loop has the same state and tiny temporaries
        spec = spec.model_copy(update={"optimizer": "adamw_torch"})
    overrides = kernel_overrides()
    if spec.bits < 16 or spec.optimizer not in _TORCH_OPTIMIZERS:
        overrides.update(bnb_overrides(target))
    tracker = StorageTracker(CUDA_BLOCK_BYTES if target == "cuda" else 1, overrides)
    workspace = cublas_workspace_bytes(spec.hardware.gpu) if target == "cuda" else 0
    with _quiet(), _meta_autocast():
        sim = build_sim_model(spec, resolved, target, padded=padding == "padded")
        notes += sim.notes
        _wrap_checkpointing(sim.model, tracker, target, offload=spec.activation_offload)
        optimizer = make_optimizer(spec, sim.adapter, foreach=(target == "cuda" and not fused) or None)
        qmaps = _prepare_optimizer(optimizer)
        step = _Step(sim, tracker, optimizer, target, paged=spec.optimizer.startswith("paged"))
        step.device_steps = fused
        step.mark_static()
        tracker.track_all(qmaps, "optimizer_state")
        if workspace:
            tracker.reserve(workspace, "temporaries")
        with tracker, TargetKernels(target), op_recorder or contextlib.nullcontext():
            batch = _make_batch(batch_rows, length, tracker)
            micro = min(spec.grad_accum, _MAX_MICRO_BATCHES)
            for _ in range(_STEPS):
                training_step(sim.model, [batch] * micro, optimizer, spec.grad_accum, on_phase=step)
    peak = tracker.replay()
    breakdown: dict[str, int] = {name: int(peak.breakdown.get(name, 0)) for name in SIM_COMPONENTS}
    if requested.optimizer == "adamw_4bit":
        from lorabench.predict.memory.formula import optimizer_state_bytes

        sizes = tuple(int(p.numel()) for p in sim.adapter)
        eight, _ = optimizer_state_bytes(sizes, "adamw_8bit", device)
        four, _ = optimizer_state_bytes(sizes, "adamw_4bit", device)
        if breakdown["optimizer_state"] >= eight:
            breakdown["optimizer_state"] -= eight - four
        notes += (ADAMW_4BIT_NOTE,)
    if fused:
        notes += (ADAMW_FUSED_NOTE,)
    if spec.autocast:
        from lorabench.predict.memory.formula import AUTOCAST_MEMORY_NOTE

        notes += (AUTOCAST_MEMORY_NOTE,)
    return SimResult(
        peak_allocated_bytes=sum(breakdown.values()),
        breakdown=breakdown,
        peak_phase=peak.phase,
        paged_optimizer_bytes=peak.paged_bytes,
        device=device,
        engine="simulate",
        seconds=time.perf_counter() - started,
        micro_batch=batch_rows,
        seq_len=length,
        padding=padding,
        cublas_workspace_bytes=workspace,
        notes=notes,
    )
