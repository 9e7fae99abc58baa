"""Several adapters served by one base (PEFT multi-adapter) with mixed batches.

Each request of a batch names its adapter; PEFT's ``adapter_names`` forward argument runs every LoRA layer once per
adapter present in the batch, on that adapter's rows. Requests are drawn from a uniform or a zipf popularity (seeded),
so a skewed workload has fewer distinct adapters per batch. The slowdown is against the single-adapter (unmerged)
cell of the same batch size and prompt length.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lorabench.errors import ModelError
from lorabench.models.build import quiet_hf

__all__ = ["adapter_names", "draw_requests", "load_adapters", "popularity_weights", "unload_adapters"]


def adapter_names(count: int) -> list[str]:
    """Names of ``count`` served adapters: ``default`` (the single-adapter one) then ``adapter_1`` ..."""
    return ["default", *(f"adapter_{i}" for i in range(1, count))]


def load_adapters(model: Any, folders: Sequence[Path], count: int) -> list[str]:
    """Load adapters ``adapter_1`` .. ``adapter_{count-1}`` beside ``default``, cycling over ``folders``.

    Returns:
        Every served adapter's name, ``default`` first.

    Raises:
        ModelError: PEFT cannot load one of them.
    """
    names = adapter_names(count)
    for index, name in enumerate(names[1:], start=1):
        folder = folders[index % len(folders)]
        try:
            with quiet_hf():
                model.load_adapter(str(folder), adapter_name=name, is_trainable=False)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ModelError(f"--adapter: PEFT cannot load {folder} as a further adapter ({str(exc)[:300]})") from None
    model.set_adapter("default")
    model.eval()
    return names


def unload_adapters(model: Any, names: Sequence[str]) -> None:
    """Delete the extra adapters so only ``default`` remains (before merging it)."""
    for name in names:
        if name != "default":
            model.delete_adapter(name)
    model.set_adapter("default")


def popularity_weights(count: int, popularity: str, zipf_s: float) -> list[float]:
    """Request probability of each adapter: equal, or proportional to ``1 / (k + 1) ** zipf_s``."""
    raw = [1.0] * count if popularity == "uniform" else [1.0 / (k + 1) ** zipf_s for k in range(count)]
    total = sum(raw)
    return [w / total for w in raw]


def draw_requests(names: Sequence[str], weights: Sequence[float], batch: int, rng: random.Random) -> list[str]:
    """The adapter of each request of one batch."""
    return rng.choices(list(names), weights=list(weights), k=batch)
