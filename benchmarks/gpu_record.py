"""The run record the GPU benchmark scripts write for a model with random weights (one definition for all)."""

from __future__ import annotations

from typing import Any

from lorabench.models import ResolvedModel
from lorabench.spec import RunSpec


def random_weights_record(
    result: dict[str, Any],
    metrics: dict[str, Any],
    spec: RunSpec,
    model_ref: ResolvedModel,
    env: dict[str, Any],
    *,
    script: str,
    steps: int,
    warmup_steps: int,
    trainable_params: int,
    **extra: Any,
) -> dict[str, Any]:
    """A ``lorabench run``-shaped record for one measured cell of a benchmark script.

    Args:
        result: The script's measurement (``status``, ``message``, ``metrics`` of the one rank).
        metrics: The metrics combined over ranks (:func:`lorabench.measure.aggregate.combine_ranks_metrics`).
        spec: The cell's spec.
        model_ref: The resolved model (built with random weights of the same shapes).
        env: The environment block.
        script: The script's path, named in the record's engine.
        steps: Optimizer steps measured.
        warmup_steps: Steps left out of rates.
        trainable_params: Trainable parameters of the PEFT model.
        **extra: More top-level fields (e.g. ``kernel_classes``).

    Returns:
        The record for :func:`lorabench.measure.record.write_run_record`.
    """
    return {
        "status": result["status"],
        "message": result["message"],
        "spec": spec.model_dump(mode="json"),
        "options": {"steps": steps, "warmup_steps": warmup_steps, "data": "random token ids, no padding"},
        "model": {
            "key": model_ref.key,
            "display_name": model_ref.display_name,
            "config_source": model_ref.source,
            "weights": "random (same shapes)",
        },
        "environment": env,
        "world_size": 1,
        "engine": {"loop": f"{script} (transformers + PEFT + bitsandbytes)"},
        "trainable_params": trainable_params,
        "steps": steps,
        "metrics": metrics,
        "per_rank": [result["metrics"]],
        **extra,
    }
