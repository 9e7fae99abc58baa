"""Options of one measured run, beside the RunSpec (what to train on, for how long, where to write)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lorabench.spec.model import NotBool

__all__ = ["SYNTHETIC_PREFIX", "RunOptions"]

SYNTHETIC_PREFIX = "synthetic:"


class RunOptions(BaseModel):
    """How to run a spec: dataset, length, warm-up, seed, output folder.

    ``dataset`` is a dataset file or folder (JSONL, JSON array, CSV, parquet, Arrow, ``save_to_disk``; see
    :func:`lorabench.data.read.read_records`), a dataset name in the local Hugging Face cache, or
    ``synthetic:TASK`` for a built-in synthetic finance dataset of ``examples`` records. ``format`` names its
    format (``alpaca``, ``chat``, ``sharegpt``, ``text``, ``completion``, ``finlora``; default: detected from
    the columns) and ``fields`` maps a format's fields to other columns (``"output=answer"``).
    ``max_steps`` counts optimizer steps; without it the run lasts ``epochs`` (default: the spec's) passes
    over the data. ``warmup_steps`` are excluded from
    throughput (never from the wall clock) and the learning rate ramps up linearly over them.
    ``batching="pad_to_max"`` pads every batch to the sequence length, as FinLoRA did, so every step is the
    worst case for memory; ``longest`` pads to the longest example of each batch; ``length_grouped`` also
    groups similar lengths; ``packed`` packs whole examples into rows of ``seq_len`` tokens with position ids
    that restart at each one (Axolotl's ``sample_packing``, TRL's ``packing``). ``cpu_dtype`` chooses a
    16-bit base's dtype on CPU: ``auto`` is bf16 where the CPU computes it natively, else fp32 (see
    :func:`lorabench.models.load.training_dtype`); GPUs always use bf16.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    dataset: str = "synthetic:sentiment"
    examples: Annotated[int, NotBool] = Field(default=256, ge=1, le=10_000_000)
    max_steps: Annotated[int | None, NotBool] = Field(default=None, ge=1)
    epochs: Annotated[float | None, NotBool] = Field(default=None, gt=0, le=10_000)
    warmup_steps: Annotated[int, NotBool] = Field(default=2, ge=0)
    seed: Annotated[int, NotBool] = Field(default=0, ge=-(2**63), lt=2**63)
    out: Path
    random_weights: bool = False
    format: Literal["finlora", "alpaca", "completion", "text", "chat", "sharegpt"] | None = None
    fields: str | dict[str, str] | None = None
    batching: Literal["pad_to_max", "longest", "length_grouped", "packed"] = "pad_to_max"
    usd_per_gpu_hour: float | None = Field(default=None, gt=0)
    trackers: bool = True
    cpu_dtype: Literal["auto", "bf16", "fp32"] = "auto"

    @model_validator(mode="after")
    def _warmup_leaves_steps(self) -> RunOptions:
        if self.max_steps is not None and self.warmup_steps >= self.max_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be below max_steps ({self.max_steps}), "
                "or no step would be counted in throughput"
            )
        return self

    @property
    def synthetic_task(self) -> str | None:
        """The synthetic task name, or None for a file dataset."""
        return self.dataset.removeprefix(SYNTHETIC_PREFIX) if self.dataset.startswith(SYNTHETIC_PREFIX) else None
