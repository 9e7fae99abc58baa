"""``ResourceCallback``: lorabench's tracking for anyone's own Hugging Face ``Trainer`` script.

One line in an Axolotl / LLaMA-Factory / plain-Trainer script::

    ResourceCallback(out="runs/my-run").install(trainer)

``install`` puts the callback first (so the metrics it adds to each log reach the ``report_to``
loggers that run after it) and wraps the trainer's data collator to count padded and non-padded
tokens of every batch. When the Trainer logs its train summary (``train_runtime``, after the last step) the
trackers stop, the final figures join that log as ``lorabench/<name>`` keys, and rank 0 writes the same
``result.json`` record as ``lorabench run``, with a RunSpec inferred from the model, its PEFT config and the
training arguments (what cannot be inferred is listed in the record's ``notes``).

Passing it as ``callbacks=[ResourceCallback(...)]`` also works, but the Trainer then runs it after the
``report_to`` loggers (they miss its figures), and tokens come from the Trainer's own ``num_input_tokens_seen``
(one kind only, labelled) when that is enabled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from lorabench.errors import ConfigError
from lorabench.measure.aggregate import combine_ranks_metrics, gather_metrics
from lorabench.measure.callback_spec import infer_spec
from lorabench.measure.environment import describe_environment
from lorabench.measure.record import write_run_record
from lorabench.measure.trackers import ResourceTracker
from lorabench.spec import RunSpec

__all__ = ["ResourceCallback"]


class _CountingCollator:
    """Wraps a collator; adds each batch's padded / non-padded token and sample counts to running totals."""

    def __init__(self, collator: Callable[[Any], Any]) -> None:
        self.collator = collator
        self.padded = self.nonpad = self.samples = 0
        self.longest = 0

    def __call__(self, features: Any) -> Any:
        batch = self.collator(features)
        ids = batch.get("input_ids") if isinstance(batch, dict) or hasattr(batch, "get") else None
        if isinstance(ids, torch.Tensor):
            self.padded += ids.numel()
            self.samples += int(ids.shape[0])
            self.longest = max(self.longest, int(ids.shape[-1]))
            mask = batch.get("attention_mask")
            self.nonpad += int(mask.sum()) if isinstance(mask, torch.Tensor) else ids.numel()
        return batch


class ResourceCallback(TrainerCallback):
    """Track wall clock, tokens, memory and energy of a Trainer run and write a lorabench run record.

    Args:
        out: Folder for ``result.json``.
        spec: The run's spec, if known (recorded as is; cost and reports use its hardware).
        warmup_steps: Optimizer steps left out of throughput.
        usd_per_gpu_hour: Rate for ``cost_usd`` (default: the catalog rate of the GPU, none on CPU).
        trackers_enabled: False keeps only the wall clock.
    """

    def __init__(
        self,
        out: str | Path,
        spec: RunSpec | None = None,
        warmup_steps: int = 2,
        usd_per_gpu_hour: float | None = None,
        trackers_enabled: bool = True,
    ) -> None:
        self.out = Path(out)
        self.spec = spec
        self.warmup_steps = warmup_steps
        self.usd_per_gpu_hour = usd_per_gpu_hour
        self.trackers_enabled = trackers_enabled
        self.tracker: ResourceTracker | None = None
        self.record: dict[str, Any] | None = None
        self._counter: _CountingCollator | None = None
        self._last = (0, 0, 0)
        self._last_seen = 0
        self._token_source = "none"
        self._unknown_kind: str | None = None
        self._started: float | None = None
        self._nonpad_total = 0

    def install(self, trainer: Any) -> ResourceCallback:
        """Add this callback first in ``trainer`` and count tokens in its data collator; returns self."""
        self._counter = _CountingCollator(trainer.data_collator)
        trainer.data_collator = self._counter
        trainer.callback_handler.callbacks.insert(0, self)
        return self

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start the clock and trackers."""
        cuda = torch.cuda.is_available()
        self.tracker = ResourceTracker(
            warmup_steps=self.warmup_steps,
            world_size=args.world_size,
            rank=args.process_index,
            devices=[args.local_process_index] if cuda else None,
            trackers_enabled=self.trackers_enabled,
        )
        self.tracker.start()
        self._started = time.perf_counter()
        self._nonpad_total = 0
        self._last_seen = state.num_input_tokens_seen or 0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Open a step (one optimizer step, all its micro-batches)."""
        if self.tracker is not None:
            self.tracker.step_begin()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Close the step with the tokens its micro-batches held."""
        if self.tracker is None:
            return
        if self._counter is not None:
            now = (self._counter.padded, self._counter.nonpad, self._counter.samples)
            padded, nonpad, samples = (a - b for a, b in zip(now, self._last, strict=True))
            self._last = now
            self._token_source = "collator: input_ids.numel (padded), attention_mask.sum (non-pad)"
        else:
            seen = state.num_input_tokens_seen or 0
            delta, self._last_seen = (seen - self._last_seen) // max(1, args.world_size), seen
            kind = args.include_num_input_tokens_seen
            # The Trainer counts one kind; the other is unknown and nulled in the record (see _finish).
            self._unknown_kind = "nonpad" if kind in (True, "all", "yes") else "padded"
            padded = nonpad = delta  # the tracker needs nonpad <= padded; the unknown kind is not reported
            samples = args.per_device_train_batch_size * args.gradient_accumulation_steps
            self._token_source = f"Trainer num_input_tokens_seen ({kind})"
        if self._unknown_kind != "nonpad":
            self._nonpad_total += nonpad
        self.tracker.step_end(padded_tokens=padded, nonpad_tokens=nonpad, samples=samples)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Add ``lorabench/*`` figures to the Trainer's logs (running ones; the final ones on its train summary).

        Running: ``wall_time_s`` since training began, ``tokens_per_s_nonpad`` over that time (warm-up steps
        included) and, on CUDA, ``peak_allocated_bytes`` so far. The summary log (``train_runtime``) comes after
        the last step: the trackers stop there and the run record's final figures replace the running ones.
        """
        if logs is None or self.tracker is None:
            return
        if "train_runtime" in logs and self.record is None:
            self._finish(args, state, kwargs.get("model"))
        if self.record is not None:
            metrics = self.record["metrics"]
            for key in _FINAL_KEYS:
                if metrics.get(key) is not None:
                    logs[f"lorabench/{key}"] = metrics[key]
            history = state.log_history
            if history and "train_runtime" in history[-1]:  # the Trainer stored a copy of this log before on_log
                history[-1].update({k: v for k, v in logs.items() if k.startswith("lorabench/")})
            return
        if self._started is not None:
            elapsed = time.perf_counter() - self._started
            logs["lorabench/wall_time_s"] = elapsed
            if self._nonpad_total and elapsed > 0:
                logs["lorabench/tokens_per_s_nonpad"] = self._nonpad_total / elapsed
        if torch.cuda.is_available():
            logs["lorabench/peak_allocated_bytes"] = torch.cuda.max_memory_allocated()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Stop the trackers and write the record, unless the train summary log already did."""
        if self.tracker is not None and self.record is None:
            self._finish(args, state, kwargs.get("model"))

    def _finish(self, args: Any, state: Any, model: Any) -> None:
        """Stop the trackers; rank 0 writes the record."""
        assert self.tracker is not None
        metrics = self.tracker.stop()
        per_rank = gather_metrics(metrics, args.world_size)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad) if model is not None else None
        losses = [float(h["loss"]) for h in state.log_history if "loss" in h]
        cuda = torch.cuda.is_available()
        device = torch.device("cuda", args.local_process_index) if cuda else torch.device("cpu")
        combined = combine_ranks_metrics(per_rank, self.usd_per_gpu_hour)
        combined["token_source"] = self._token_source
        if self._unknown_kind is not None:
            for figures in (combined, *per_rank):
                for key in [k for k in figures if self._unknown_kind in k and "token" in k]:
                    figures[key] = None
        notes: list[str] = []
        ignored: list[dict[str, str]] = []
        if self.spec is not None:
            spec = self.spec
        elif model is None:
            raise ConfigError("ResourceCallback: the Trainer passed no model to infer the spec from; give spec=")
        else:
            gpu = _gpu_name(device) if cuda else None
            longest = self._counter.longest if self._counter is not None and self._counter.longest else None
            spec, notes, keys = infer_spec(model, args, state, gpu, longest)
            ignored = [k.as_dict() for k in keys]
        model_name = spec.model
        self.record = {
            "status": "ok",
            "message": None,
            "spec": spec.model_dump(mode="json"),
            "spec_source": "given" if self.spec is not None else "inferred from the Trainer's model and arguments",
            "notes": notes,
            "ignored_keys": ignored,
            "model": {"key": model_name, "display_name": model_name, "config_source": "the trained model"},
            "options": {"warmup_steps": self.warmup_steps, "usd_per_gpu_hour": self.usd_per_gpu_hour},
            "environment": describe_environment(device),
            "world_size": args.world_size,
            "engine": {"loop": "transformers.Trainer with lorabench.ResourceCallback"},
            "trainable_params": trainable,
            "steps": state.global_step,
            "losses": losses,
            "final_loss": losses[-1] if losses else None,
            "first_loss": losses[0] if losses else None,
            "metrics": combined,
            "per_rank": per_rank,
        }
        if args.process_index == 0:
            write_run_record(self.out, self.record)


_FINAL_KEYS = (
    "wall_time_s",
    "tokens_per_s_nonpad",
    "tokens_per_s_padded",
    "peak_allocated_bytes",
    "peak_reserved_bytes",
    "energy_j",
    "gpu_hours",
    "cost_usd",
)


def _gpu_name(device: torch.device) -> str:
    """The catalog key of ``device``'s GPU, or its CUDA name when the catalog does not know it."""
    from lorabench.errors import CatalogError
    from lorabench.hardware import resolve_gpu

    name = torch.cuda.get_device_name(device)
    try:
        return resolve_gpu(name).key
    except CatalogError:
        return name
