"""The resource tracker a training loop drives: time, tokens, memory and energy in one plain dict of metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, replace
from typing import Any

from lorabench.errors import MeasurementError
from lorabench.measure.trackers.clock import Clock, StepClock, no_sync
from lorabench.measure.trackers.cpu_memory import NewShapeCpuMemory
from lorabench.measure.trackers.cuda import CudaNvmlSampler
from lorabench.measure.trackers.energy import EnergyMeter, EnergyReport
from lorabench.measure.trackers.measured import Measured
from lorabench.measure.trackers.memory import DeviceMemoryMeter, DeviceMemoryReport
from lorabench.measure.trackers.poller import Poller
from lorabench.measure.trackers.rss import PeakRss
from lorabench.measure.trackers.sampler import DeviceSampler
from lorabench.measure.trackers.tokens import TokenCounter, rank_counts, throughput

__all__ = ["ResourceTracker"]

_DISABLED = "trackers disabled (wall clock only)"


def _callable_name(fn: Callable[[], object]) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{module}.{name}" if module else name


class ResourceTracker:
    """Measures one training run (one rank of it): wall clock, step times, throughput, peak memory and energy.

    Use::

        tracker = ResourceTracker(warmup_steps=2)
        tracker.start()                      # first: before data is read or the model is built
        for batch in loader:
            tracker.step_begin()
            ...                              # forward, backward, optimizer step
            tracker.step_end(padded_tokens=..., nonpad_tokens=..., samples=...)
        metrics = tracker.stop()

    With CUDA (``torch.cuda.is_available()``) memory comes from the CUDA allocator and NVML, energy from NVML, and
    every clock reading waits for the devices (``torch.cuda.synchronize``). On CPU the peak tensor memory comes from
    the PyTorch profiler's allocator events (:mod:`lorabench.measure.trackers.cpu_memory`), and there is no energy.
    Peak process RSS is recorded on both. With ``trackers_enabled=False`` only the wall clock runs (and steps and
    tokens are counted): the baseline for measuring the trackers' own overhead.

    Counts and times are this rank's; ``tokens_per_s_*`` and ``samples_per_s`` are global, this rank's rates times
    ``world_size`` (see :func:`~lorabench.measure.trackers.tokens.throughput`). For exact global rates combine every
    rank's ``rank_counts`` with :func:`~lorabench.measure.trackers.tokens.combine_ranks`.

    Args:
        warmup_steps: First steps left out of the rates (never out of the wall clock).
        world_size: Number of ranks in the run.
        rank: This process's rank.
        devices: CUDA devices this process uses (in DDP, ``[local_rank]``); default: every visible one.
        trackers_enabled: False keeps only the wall clock.
        sampler: A device sampler to use instead of the real one (tests pass a
            :class:`~lorabench.measure.trackers.sampler.FakeSampler`); it selects the CUDA path.
        clock: A monotonic clock in seconds.
        sync: Waits for device work before each clock reading; default: ``torch.cuda.synchronize`` on every device
            used when real CUDA is in use, nothing otherwise.
        poll_interval_s: Seconds between NVML samples (>= 0.1).
        rss: The peak-RSS reader (tests pass one over fake files).

    Raises:
        MeasurementError: An argument is out of range.
    """

    def __init__(
        self,
        *,
        warmup_steps: int = 0,
        world_size: int = 1,
        rank: int = 0,
        devices: Sequence[int] | None = None,
        trackers_enabled: bool = True,
        sampler: DeviceSampler | None = None,
        clock: Clock = time.perf_counter,
        sync: Callable[[], None] | None = None,
        poll_interval_s: float = 0.1,
        rss: PeakRss | None = None,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise MeasurementError(f"need world_size >= 1 and 0 <= rank < world_size (got {world_size}, {rank})")
        self._enabled = trackers_enabled
        self._world_size = world_size
        self._rank = rank
        self._clock_fn = clock
        self._sync_name: str | None = None
        real_cuda = sampler is None and _cuda_available()
        self.device = "cuda" if sampler is not None or real_cuda else "cpu"
        if sync is None and real_cuda:
            sync, self._sync_name = _cuda_sync(devices), "torch.cuda.synchronize"
        elif sync is not None:
            self._sync_name = _callable_name(sync)
        self._sampler: DeviceSampler | None = None
        self._owned: CudaNvmlSampler | None = None
        if trackers_enabled and self.device == "cuda":
            if sampler is None:
                sampler = self._owned = CudaNvmlSampler(devices)
            self._sampler = sampler
        self._clock = StepClock(warmup_steps, clock=clock, sync=sync or no_sync)
        self._tokens = TokenCounter()
        self._poll_interval_s = poll_interval_s
        self._rss = rss or PeakRss()
        self._memory: DeviceMemoryMeter | None = None
        self._energy: EnergyMeter | None = None
        self._poller: Poller | None = None
        self._cpu_memory: NewShapeCpuMemory | None = None
        self._in_step = False
        self.metrics: dict[str, Any] | None = None

    @property
    def trackers_enabled(self) -> bool:
        """Whether memory, energy and step timing run (False: wall clock only)."""
        return self._enabled

    def start(self) -> None:
        """Start the wall clock first, then the trackers.

        Raises:
            MeasurementError: Already started, or a tracker cannot start (e.g. another profiler is running).
        """
        self._clock.start()
        if not self._enabled:
            return
        self._rss.start()
        if self._sampler is not None:
            self._memory = DeviceMemoryMeter(self._sampler)
            self._energy = EnergyMeter(self._sampler)
            memory, energy = self._memory, self._energy

            def sample(t: float) -> None:
                memory.sample(t)
                energy.sample(t)

            self._poller = Poller(sample, interval_s=self._poll_interval_s, clock=self._clock_fn)
            memory.start()
            energy.start()
            self._poller.start()
        else:
            self._cpu_memory = NewShapeCpuMemory()
            self._cpu_memory.start()

    def step_begin(self, shape: Hashable | None = None) -> None:
        """Mark the start of a training step (synchronises CUDA first).

        Args:
            shape: The step's batch shape (e.g. ``(micro_batch, padded_length, grad_accum)``). On CPU the memory
                profiler then runs only for the first steps of each shape (:class:`NewShapeCpuMemory`), before the
                step's clock starts; None profiles every step.

        Raises:
            MeasurementError: Not running, or the previous step has not ended.
        """
        if self._cpu_memory is not None and self._clock.running and not self._in_step:
            self._cpu_memory.step_begin(shape)
        if self._enabled:
            self._clock.step_begin()
        elif not self._clock.running or self._in_step:
            raise MeasurementError("step_begin() outside a run or twice")
        self._in_step = True

    def step_end(self, padded_tokens: int, nonpad_tokens: int, samples: int) -> float | None:
        """Mark the end of a training step and record what this rank processed in it.

        Args:
            padded_tokens: Positions in the batch, padding included.
            nonpad_tokens: Real (non-padding) tokens in the batch.
            samples: Sequences in the batch.

        Returns:
            The step's duration in seconds; None when the trackers are disabled.

        Raises:
            MeasurementError: No step is in progress, or the counts are invalid.
        """
        if not self._in_step:
            raise MeasurementError("step_end() without step_begin()")
        self._tokens.add(padded_tokens, nonpad_tokens, samples)  # invalid counts leave the step open
        duration = self._clock.step_end() if self._enabled else None
        self._in_step = False
        return duration

    def stop(self) -> dict[str, Any]:
        """Stop the wall clock first, then the trackers, and return the metrics.

        Returns:
            A plain, JSON-ready dict; unknown figures are None, never 0:

            - ``device`` (``cuda`` | ``cpu``), ``trackers_enabled``, ``world_size``, ``rank``;
            - ``wall_time_s``, ``step_times_s`` (list, warm-up included), ``steps``, ``warmup_steps``,
              ``counted_steps``, ``counted_time_s``;
            - ``padded_tokens``, ``nonpad_tokens``, ``samples`` (this rank, all steps);
              ``tokens_per_s_padded``, ``tokens_per_s_nonpad``, ``samples_per_s`` (global, counted steps),
              ``throughput_method``, ``rank_counts`` (for :func:`~lorabench.measure.trackers.tokens.combine_ranks`);
            - ``peak_allocated_bytes``, ``peak_reserved_bytes``, ``nvml_peak_used_bytes`` (max over devices),
              ``peak_rss_bytes`` (process RSS, not tensor memory), ``energy_j`` (sum over devices),
              ``energy_method``;
            - ``devices`` and ``<figure>_per_device`` lists on CUDA (None on CPU), ``energy_method_per_device``;
            - ``counters``: the counter each time, memory and energy figure came from (None when unknown);
              ``unavailable``: why each unknown figure is unknown.

        Raises:
            MeasurementError: Not running, a step has not ended, or device sampling failed.
        """
        self._clock.stop()
        energy: EnergyReport | None = None
        memory: DeviceMemoryReport | None = None
        cpu_peak: Measured | None = None
        try:
            if self._poller is not None:
                self._poller.stop()
            if self._energy is not None:
                energy = self._energy.stop()
            if self._memory is not None:
                memory = self._memory.stop()
        finally:
            if self._cpu_memory is not None:
                cpu_peak = self._cpu_memory.stop()
            if self._owned is not None:
                self._owned.close()
        rss = self._rss.read() if self._enabled else Measured.unknown("bytes", _DISABLED)
        self.metrics = self._metrics(memory, cpu_peak, energy, rss)
        return self.metrics

    def __enter__(self) -> ResourceTracker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Stops whatever is still running (a step an exception left open is closed with zero tokens); the
        # metrics are then in ``self.metrics``.
        if self._clock.running:
            if self._in_step:
                self.step_end(0, 0, 0)
            self.stop()

    def _metrics(
        self,
        memory: DeviceMemoryReport | None,
        cpu_peak: Measured | None,
        energy: EnergyReport | None,
        rss: Measured,
    ) -> dict[str, Any]:
        steps = self._tokens.steps
        times = self._clock.step_times_s if self._enabled else None
        counts = rank_counts(times, steps, self._clock.warmup_steps, self._rank) if times is not None else None
        rates = throughput(counts, self._world_size) if counts is not None else None
        figures = _memory_figures(self.device, self._enabled, memory, cpu_peak)
        figures["energy_j"] = energy.energy if energy is not None else _no_energy(self.device, self._enabled)
        figures["peak_rss_bytes"] = rss
        nvml_reason = self._owned.nvml_unavailable if self._owned is not None else None
        if nvml_reason:
            for name in ("nvml_peak_used_bytes", "energy_j"):
                if figures[name].value is None:
                    figures[name] = replace(figures[name], reason=nvml_reason)
        time_counter = _callable_name(self._clock_fn) + (f" after {self._sync_name}" if self._sync_name else "")
        metrics: dict[str, Any] = {
            "device": self.device,
            "trackers_enabled": self._enabled,
            "wall_time_s": self._clock.wall_time_s,
            "steps": len(steps),
            "step_times_s": times,
            "warmup_steps": self._clock.warmup_steps,
            "counted_steps": counts.counted_steps if counts else None,
            "counted_time_s": counts.counted_time_s if counts else None,
            "world_size": self._world_size,
            "rank": self._rank,
            "padded_tokens": sum(s.padded_tokens for s in steps),
            "nonpad_tokens": sum(s.nonpad_tokens for s in steps),
            "samples": sum(s.samples for s in steps),
            "tokens_per_s_padded": rates.tokens_per_s_padded if rates else None,
            "tokens_per_s_nonpad": rates.tokens_per_s_nonpad if rates else None,
            "samples_per_s": rates.samples_per_s if rates else None,
            "throughput_method": rates.method if rates else None,
            "rank_counts": asdict(counts) if counts else None,
        }
        for name, figure in figures.items():
            metrics[name] = figure.value
        metrics["energy_method"] = energy.method if energy else None
        metrics["devices"] = list(self._sampler.devices) if self._sampler is not None else None
        for name, figure in figures.items():
            if name != "peak_rss_bytes":
                per_device = list(figure.per_device) if self._sampler is not None else None
                metrics[f"{name}_per_device"] = per_device
        metrics["energy_method_per_device"] = list(energy.device_methods) if energy else None
        metrics["counters"] = {"wall_time_s": time_counter, "step_times_s": time_counter if times else None}
        metrics["counters"].update({name: figure.counter for name, figure in figures.items()})
        metrics["unavailable"] = {name: figure.reason for name, figure in figures.items() if figure.reason}
        return metrics


def _memory_figures(
    device: str, enabled: bool, memory: DeviceMemoryReport | None, cpu_peak: Measured | None
) -> dict[str, Measured]:
    if not enabled:
        return {name: Measured.unknown("bytes", _DISABLED) for name in _MEMORY_NAMES}
    if memory is not None:
        return {
            "peak_allocated_bytes": memory.peak_allocated,
            "peak_reserved_bytes": memory.peak_reserved,
            "nvml_peak_used_bytes": memory.nvml_peak_used,
        }
    no_gpu = f"no GPU on the {device} path"
    return {
        "peak_allocated_bytes": cpu_peak or Measured.unknown("bytes", "CPU tensor memory was not measured"),
        "peak_reserved_bytes": Measured.unknown("bytes", "no caching-allocator counter on CPU (see peak_rss_bytes)"),
        "nvml_peak_used_bytes": Measured.unknown("bytes", no_gpu),
    }


_MEMORY_NAMES = ("peak_allocated_bytes", "peak_reserved_bytes", "nvml_peak_used_bytes")


def _no_energy(device: str, enabled: bool) -> Measured:
    return Measured.unknown("J", _DISABLED if enabled is False else f"no GPU on the {device} path: energy unknown")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _cuda_sync(devices: Sequence[int] | None) -> Callable[[], None]:
    import torch

    targets = list(range(torch.cuda.device_count())) if devices is None else list(devices)

    def sync() -> None:
        for device in targets:
            torch.cuda.synchronize(device)

    return sync
