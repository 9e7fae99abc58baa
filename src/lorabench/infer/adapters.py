"""Adapters to serve: find a PEFT LoRA adapter folder, describe and hash it, and check it fits a base model.

``--adapter`` takes a PEFT adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``) or a folder
written by ``lorabench run`` (its adapter is in ``adapter/`` beside the run record ``result.json``, whose training
cost then appears in the adapter-lifecycle line). Fit is checked from the adapter's tensor shapes against the base's
module graph built on the meta device, before any weight is loaded, so an adapter trained for another architecture
fails with one message naming the first mismatch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lorabench.errors import ModelError

__all__ = ["AdapterInfo", "check_adapter_fits", "describe_adapter"]

_CONFIG = "adapter_config.json"
_WEIGHTS = "adapter_model.safetensors"  # safetensors only: a pickled adapter_model.bin is never loaded
_RUN_RECORD = "result.json"
_RUN_SCHEMA = "lorabench.run"


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter folder, described.

    Attributes:
        path: The folder holding ``adapter_config.json``.
        sha256: SHA-256 over the adapter's config and weight files (name and bytes, in name order).
        file_bytes: Size of the weight file.
        config: The adapter config's fields that matter here (peft_type, r, lora_alpha, target_modules, ...).
        shapes: Tensor name to shape, from the weight file.
        training: Figures of the ``lorabench run`` that trained it (record path, cost, GPU-hours), or None.
    """

    path: Path
    sha256: str
    file_bytes: int
    config: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    training: dict[str, Any] | None

    def record(self) -> dict[str, Any]:
        """The adapter's description for an inference record."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "file_bytes": self.file_bytes,
            "config": self.config,
            "tensors": len(self.shapes),
            "training": self.training,
        }


def _folder(path: Path) -> Path:
    if (path / _CONFIG).is_file():
        return path
    if (path / "adapter" / _CONFIG).is_file():
        return path / "adapter"
    raise ModelError(
        f"--adapter: {path} holds no {_CONFIG} (give a PEFT adapter folder, or a lorabench run folder with adapter/)"
    )


def _shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as handle:
            return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors and torch raise their own types for a corrupt file
        raise ModelError(f"--adapter: {weights} is not a readable adapter weight file ({exc})") from None


def _training(run_dir: Path) -> dict[str, Any] | None:
    file = run_dir / _RUN_RECORD
    try:
        record = json.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("schema") != _RUN_SCHEMA:
        return None
    raw_metrics, raw_spec = record.get("metrics"), record.get("spec")
    metrics: dict[str, Any] = raw_metrics if isinstance(raw_metrics, dict) else {}
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    return {
        "record": str(file),
        "status": record.get("status"),
        "spec": spec,
        "device": metrics.get("device"),
        "wall_time_s": metrics.get("wall_time_s"),
        "gpu_hours": metrics.get("gpu_hours"),
        "cost_usd": metrics.get("cost_usd"),
        "cost_provenance": metrics.get("cost_provenance"),
        "nonpad_tokens": metrics.get("nonpad_tokens"),
    }


def describe_adapter(path: Path) -> AdapterInfo:
    """Read an adapter folder (or a ``lorabench run`` folder's ``adapter/``).

    Raises:
        ModelError: No adapter config or weights, an unreadable file, or not a LoRA adapter.
    """
    folder = _folder(path)
    try:
        config = json.loads((folder / _CONFIG).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"--adapter: {folder / _CONFIG} is not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ModelError(f"--adapter: {folder / _CONFIG} is not a JSON object")
    if config.get("peft_type") != "LORA":
        raise ModelError(
            f"--adapter: {folder / _CONFIG} has peft_type {config.get('peft_type')!r}; only LoRA adapters "
            "(LoRA, DoRA, rsLoRA) are served"
        )
    weights = folder / _WEIGHTS
    if not weights.is_file():
        hint = (
            " (it has adapter_model.bin: pickled weights are not loaded; re-save with safe_serialization=True)"
            if (folder / "adapter_model.bin").exists()
            else ""
        )
        raise ModelError(f"--adapter: {folder} has no {_WEIGHTS}{hint}")
    digest = hashlib.sha256()
    for file in sorted([folder / _CONFIG, weights]):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    keep = ("peft_type", "base_model_name_or_path", "r", "lora_alpha", "target_modules", "use_dora", "use_rslora")
    run_dir = folder.parent if folder.name == "adapter" else folder
    return AdapterInfo(
        path=folder,
        sha256=digest.hexdigest(),
        file_bytes=weights.stat().st_size,
        config={k: config.get(k) for k in keep},
        shapes=_shapes(weights),
        training=_training(run_dir),
    )


def _module_path(key: str) -> tuple[str, str] | None:
    """``base_model.model.X.lora_A.weight`` -> (``X``, ``lora_A``); None for tensors that are not LoRA factors."""
    parts = key.split(".")
    for marker in ("lora_A", "lora_B", "lora_magnitude_vector"):
        if marker in parts:
            index = parts.index(marker)
            path = parts[:index]
            if path[:2] == ["base_model", "model"]:
                path = path[2:]
            return ".".join(path), marker
    return None


def check_adapter_fits(adapter: AdapterInfo, config: Any, model_name: str) -> None:
    """Fail unless every LoRA tensor of ``adapter`` matches a linear layer of the model built from ``config``.

    The base is built on the meta device (no memory). ``lora_A`` must be ``(r, in_features)``, ``lora_B``
    ``(out_features, r)``.

    Raises:
        ModelError: A module the adapter targets is missing, or its shape differs (the first problem is named).
    """
    from lorabench.models import build_meta_model

    modules = dict(build_meta_model(config).named_modules())
    checked = 0
    for key, shape in sorted(adapter.shapes.items()):
        found = _module_path(key)
        if found is None:
            continue
        path, kind = found
        module = modules.get(path)
        hint = f"adapter {adapter.path} was not trained for {model_name}"
        if module is None or not isinstance(getattr(module, "weight", None), torch.Tensor):
            raise ModelError(f"--adapter: {hint}: it targets {path}, which {model_name} does not have")
        out_features, in_features = int(module.weight.shape[0]), int(module.weight.shape[-1])
        bad = (
            (kind == "lora_A" and shape[-1] != in_features)
            or (kind == "lora_B" and shape[0] != out_features)
            or (kind == "lora_magnitude_vector" and shape[0] != out_features)
        )
        if bad:
            raise ModelError(
                f"--adapter: {hint}: {key} has shape {list(shape)} but {path} is {out_features}x{in_features} there"
            )
        checked += 1
    if checked == 0:
        raise ModelError(f"--adapter: {adapter.path} holds no LoRA tensors (lora_A / lora_B)")
