"""Storage-lifetime tracking for the memory simulation: every allocation and free of a training step.

:class:`StorageTracker` is a ``TorchDispatchMode``. It sees the output of every ATen operator (and of
bitsandbytes' custom operators); an output whose schema says it is freshly allocated (not a view, not in
place) and whose storage is new is an allocation of ``storage.nbytes()`` bytes, rounded up to the target
allocator's block size. A weak reference on the storage object reports the free: PyTorch keeps a storage's
Python object alive exactly as long as its C++ storage, so the callback fires when the memory would be
released. Events are only recorded during the run; :meth:`StorageTracker.replay` then walks them in order
with each block's *final* category, so a buffer allocated in backward and later found to be a parameter's
``.grad`` counts as a gradient from its first byte.

Categories: ``weights``, ``quant_constants``, ``adapter`` (registered before the step), ``gradients`` and
``optimizer_state`` (marked after backward / the optimizer step), and for everything else the *forward-region*
rule: memory allocated inside a forward computation (the forward pass, or one layer's recomputation under
gradient checkpointing) that outlives it is ``activations`` (what autograd saved for backward); everything else
is ``temporaries``. Blocks that the target device's allocator would not count (host tensors, paged optimizer
state) are kept out of the total and reported separately.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = [
    "COMPONENTS",
    "PHASES",
    "Block",
    "Component",
    "OpOverride",
    "Peak",
    "Phase",
    "StorageTracker",
    "round_up",
]

Component = Literal[
    "weights", "quant_constants", "adapter", "gradients", "optimizer_state", "activations", "temporaries"
]
COMPONENTS: tuple[Component, ...] = (
    "weights",
    "quant_constants",
    "adapter",
    "gradients",
    "optimizer_state",
    "activations",
    "temporaries",
)
Phase = Literal["setup", "forward", "backward", "optimizer"]
PHASES: tuple[Phase, ...] = ("setup", "forward", "backward", "optimizer")

# A handler that replaces one operator: called as handler(tracker, func, args, kwargs), returns the op's result.
OpOverride = Callable[["StorageTracker", Any, tuple[Any, ...], dict[str, Any]], Any]


def round_up(nbytes: int, granularity: int) -> int:
    """Bytes an allocator with blocks of ``granularity`` bytes hands out for ``nbytes`` (0 stays 0)."""
    if granularity <= 1 or nbytes <= 0:
        return max(nbytes, 0)
    return -(-nbytes // granularity) * granularity


@dataclass
class Block:
    """One storage: its size, how it is counted, and where it came from."""

    nbytes: int
    category: Component | None = None
    region: int = -1
    survived: bool = False
    counted: bool = True
    paged: bool = False
    alive: bool = True

    def component(self) -> Component:
        """The component this block counts under."""
        if self.category is not None:
            return self.category
        return "activations" if self.survived else "temporaries"


@dataclass(frozen=True)
class Peak:
    """The replayed peak: total bytes, bytes per component at that moment, and the phase it happened in."""

    total_bytes: int
    breakdown: dict[Component, int]
    phase: Phase
    paged_bytes: int
    final_bytes: int = 0
    events: int = 0
    per_phase_peak: dict[Phase, int] = field(default_factory=dict)


def _fresh_outputs(func: Any) -> tuple[bool, ...] | None:
    """Per return value of an operator: True when it is a new allocation (no alias annotation)."""
    schema = getattr(func, "_schema", None)
    if schema is None:
        return None
    return tuple(ret.alias_info is None for ret in schema.returns)


class StorageTracker(TorchDispatchMode):
    """Records allocations and frees of tensor storages, for a later :meth:`replay`.

    Args:
        granularity: Allocation granularity in bytes (512 for CUDA's caching allocator, 1 for exact bytes).
        overrides: Operators to run through a handler instead of directly (kernel emulation).
    """

    def __init__(self, granularity: int = 1, overrides: Mapping[Any, OpOverride] | None = None) -> None:
        super().__init__()
        self.granularity = granularity
        self.overrides: dict[Any, OpOverride] = dict(overrides or {})
        self.blocks: list[Block] = []
        self._by_storage: dict[int, int] = {}
        self._refs: dict[int, weakref.ref[Any]] = {}
        self.events: list[tuple[int, int, int]] = []
        self.phase: Phase = "setup"
        self._phase_index = 0
        self._region = -1
        self._regions = 0
        self._region_blocks: list[int] = []
        self._fresh_cache: dict[Any, tuple[bool, ...] | None] = {}

    # ------------------------------------------------------------------ recording
    def set_phase(self, phase: Phase) -> None:
        """Label the following events with ``phase``."""
        self.phase = phase
        self._phase_index = PHASES.index(phase)

    def begin_region(self) -> None:
        """Start a forward computation; what it allocates and leaves alive counts as activations."""
        if self._region >= 0:
            return  # nested (a checkpointed layer inside the forward pass): the outer region decides
        self._regions += 1
        self._region = self._regions
        self._region_blocks = []

    def end_region(self) -> None:
        """End the current forward computation, marking its surviving allocations as activations."""
        if self._region < 0:
            return
        blocks = self.blocks
        for index in self._region_blocks:
            block = blocks[index]
            if block.alive:
                block.survived = True
        self._region = -1
        self._region_blocks = []

    @property
    def in_region(self) -> bool:
        """True inside a forward computation."""
        return self._region >= 0

    def track(self, tensor: torch.Tensor, category: Component | None = None) -> Block | None:
        """Register ``tensor``'s storage if it is new (recording an allocation) and optionally set its category.

        Returns:
            The storage's block, or None for a tensor without storage.
        """
        try:
            storage = tensor.untyped_storage()
        except (NotImplementedError, RuntimeError):
            return None
        key = storage._cdata
        index = self._by_storage.get(key)
        if index is None:
            index = len(self.blocks)
            block = Block(round_up(storage.nbytes(), self.granularity), region=self._region)
            self.blocks.append(block)
            self._by_storage[key] = index
            self._refs[key] = weakref.ref(storage, self._freed_callback(key, index))
            self.events.append((index, 1, self._phase_index))
            if self._region >= 0:
                self._region_blocks.append(index)
        else:
            block = self.blocks[index]
        if category is not None:
            block.category = category
        return block

    def reserve(self, nbytes: int, category: Component) -> None:
        """Record a block that no tensor owns (e.g. a library workspace), live from now to the end."""
        self.blocks.append(Block(round_up(nbytes, self.granularity), category=category))
        self.events.append((len(self.blocks) - 1, 1, self._phase_index))

    def track_all(self, tensors: Iterable[torch.Tensor], category: Component | None = None) -> None:
        """:meth:`track` every tensor."""
        for tensor in tensors:
            self.track(tensor, category)

    def block_of(self, tensor: torch.Tensor) -> Block | None:
        """The block of a tracked tensor's storage, or None."""
        index = self._by_storage.get(tensor.untyped_storage()._cdata)
        return None if index is None else self.blocks[index]

    def exclude(self, tensor: torch.Tensor, paged: bool = False) -> None:
        """Leave ``tensor``'s storage out of the device total (host memory, or paged/managed memory)."""
        block = self.track(tensor)
        if block is not None:
            block.counted = False
            block.paged = paged

    def _freed_callback(self, key: int, index: int) -> Callable[[Any], None]:
        def freed(_: Any) -> None:
            if self._by_storage.get(key) == index:
                del self._by_storage[key]
                self._refs.pop(key, None)
            block = self.blocks[index]
            if block.alive:
                block.alive = False
                self.events.append((index, -1, self._phase_index))

        return freed

    def register_outputs(self, func: Any, out: Any) -> None:
        """Track the freshly allocated outputs of ``func`` (views and in-place results are skipped)."""
        if func in self._fresh_cache:
            fresh = self._fresh_cache[func]
        else:
            fresh = self._fresh_cache[func] = _fresh_outputs(func)
        if isinstance(out, torch.Tensor):
            if fresh is None or (fresh and fresh[0]):
                self.track(out)
            return
        if isinstance(out, (tuple, list)):
            one_list = fresh is not None and len(fresh) == 1  # a single Tensor[] return
            for position, item in enumerate(out):
                if fresh is None:
                    is_fresh = True
                elif one_list:
                    is_fresh = fresh[0]
                else:
                    is_fresh = position < len(fresh) and fresh[position]
                if isinstance(item, torch.Tensor):
                    if is_fresh:
                        self.track(item)
                elif isinstance(item, (tuple, list)) and is_fresh:
                    for sub in item:
                        if isinstance(sub, torch.Tensor):
                            self.track(sub)

    def run(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an operator from inside an override and track its fresh outputs."""
        out = func(*args, **kwargs)
        self.register_outputs(func, out)
        return out

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        override = self.overrides.get(func)
        if override is not None:
            return override(self, func, args, kwargs)
        out = func(*args, **kwargs)
        self.register_outputs(func, out)
        return out

    # ------------------------------------------------------------------ replay
    def replay(self) -> Peak:
        """Walk the recorded events in order and find the peak of counted bytes and its breakdown."""
        blocks = self.blocks
        live: dict[Component, int] = dict.fromkeys(COMPONENTS, 0)
        total = peak = paged = paged_peak = 0
        peak_breakdown = dict(live)
        peak_phase: Phase = "setup"
        per_phase: dict[Phase, int] = {}
        components = [block.component() for block in blocks]
        for index, sign, phase_index in self.events:
            block = blocks[index]
            delta = sign * block.nbytes
            if not block.counted:
                if block.paged:
                    paged += delta
                    paged_peak = max(paged_peak, paged)
                continue
            live[components[index]] += delta
            total += delta
            phase = PHASES[phase_index]
            if total > per_phase.get(phase, -1):
                per_phase[phase] = total
            if total > peak:
                peak = total
                peak_breakdown = dict(live)
                peak_phase = phase
        return Peak(
            total_bytes=peak,
            breakdown=peak_breakdown,
            phase=peak_phase,
            paged_bytes=paged_peak,
            final_bytes=total,
            events=len(self.events),
            per_phase_peak=per_phase,
        )
