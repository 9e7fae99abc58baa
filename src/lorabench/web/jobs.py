"""What the web worker process runs: one request's payload in, one CLI-identical JSON record out.

Each job takes the validated request as a plain mapping (it crosses a process boundary), turns it into a
spec exactly as the CLI does (an uploaded config file is written to the worker's scratch folder and read by
:func:`lorabench.spec.load_spec_source`; an uploaded ``config.json`` becomes a model folder), and calls the
public API (:mod:`lorabench.api`). A model named by a local path is refused: the server reads no file a
request names, only what a request uploads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lorabench.errors import ConfigError, LorabenchError

__all__ = ["SPEC_FIELDS", "run_job"]

SPEC_FIELDS = (
    "model",
    "method",
    "bits",
    "rank",
    "alpha",
    "dropout",
    "targets",
    "micro_batch",
    "grad_accum",
    "seq_len",
    "epochs",
    "grad_ckpt",
    "autocast",
    "pure_bf16",
    "optimizer",
    "parallelism",
    "gpu",
    "gpus",
)
"""Request fields that are RunSpec overrides (``gpu`` / ``gpus`` set the hardware), as the CLI's flags."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_model_name(model: str, field: str = "model") -> None:
    """Refuse a model given as a local path (the server reads only catalog entries, the HF cache and uploads).

    Raises:
        ConfigError: The name looks like a path (absolute, relative, home, or more than ORG/NAME).
    """
    text = model.strip()
    if text.startswith(("/", "~", ".", "\\")) or "\\" in text or ".." in text or text.count("/") > 1:
        raise ConfigError(
            f"{field}: local paths are not read by the web server (got {model!r}); give a catalog name or a hub "
            "id, or upload the model's config.json"
        )


def _model_folder(scratch: Path, text: str) -> str:
    """Write an uploaded HF ``config.json`` into a folder of its own (named by its content) and return it."""
    try:
        content = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"model_config: not valid JSON ({str(exc).split(';')[0]})") from None
    if not isinstance(content, dict) or "model_type" not in content:
        raise ConfigError("model_config: expected a Hugging Face config.json (a JSON object with model_type)")
    folder = scratch / "models" / f"uploaded-config-{_digest(text)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(text, "utf-8")
    return str(folder)


def _config_file(scratch: Path, text: str, name: str | None) -> Path:
    """Write an uploaded lorabench / Axolotl / LLaMA-Factory / PEFT file to the scratch folder."""
    base = _SAFE_NAME.sub("_", Path(name or "config.yaml").name).strip("._") or "config.yaml"
    if "." not in base:
        base += ".json" if text.lstrip().startswith("{") else ".yaml"
    folder = scratch / "configs" / _digest(text + base)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / base
    path.write_text(text, "utf-8")
    return path


def _loaded_spec(payload: Mapping[str, Any], scratch: Path) -> Any:
    from lorabench.spec import load_spec_source

    overrides = {k: payload[k] for k in SPEC_FIELDS if payload.get(k) is not None}
    if isinstance(overrides.get("targets"), list):
        overrides["targets"] = ",".join(str(t) for t in overrides["targets"])
    if payload.get("model_config"):
        overrides["model"] = _model_folder(scratch, str(payload["model_config"]))
    elif "model" in overrides:
        check_model_name(str(overrides["model"]))
    config = None
    if payload.get("config_text"):
        config = _config_file(scratch, str(payload["config_text"]), payload.get("config_name"))
    try:
        loaded = load_spec_source(config, overrides)
    except LorabenchError as exc:
        message = str(exc)
        if config is not None:
            message = message.replace(str(config), f"config_text ({payload.get('config_name') or 'uploaded file'})")
        if payload.get("model_config"):
            message = message.replace(str(overrides["model"]), "model_config (uploaded config.json)")
        raise type(exc)(message) from None
    if not payload.get("model_config"):
        check_model_name(loaded.spec.model, "model (from the config file)" if config is not None else "model")
    return loaded


def _estimate(payload: Mapping[str, Any], scratch: Path) -> dict[str, Any]:
    from lorabench.api import estimate

    loaded = _loaded_spec(payload, scratch)
    return estimate(
        loaded.spec,
        engine=payload.get("engine") or "formula",
        device=payload.get("device") or "cuda",
        tokens=payload.get("tokens"),
        loaded=loaded,
    ).record


def _fit(payload: Mapping[str, Any], scratch: Path) -> dict[str, Any]:
    from lorabench.api import fit

    loaded = _loaded_spec(payload, scratch)
    return fit(loaded.spec, gpu=str(payload["gpu"]), gpus=payload.get("gpus")).record


def _cost(payload: Mapping[str, Any], scratch: Path) -> list[dict[str, Any]]:
    from lorabench.api import cost_scenario

    scenario = dict(payload)
    for i, row in enumerate(scenario.get("self_hosted") or []):
        spec = row.get("spec") if isinstance(row, Mapping) else None
        uploaded = str(scratch / "models") + os.sep
        if isinstance(spec, Mapping) and isinstance(spec.get("model"), str) and not spec["model"].startswith(uploaded):
            check_model_name(spec["model"], f"self_hosted.{i}.spec.model")
    result = cost_scenario(scenario)
    return [row.model_dump(mode="json") for row in result.rows]


_JOBS = {"estimate": _estimate, "fit": _fit, "cost": _cost}


def run_job(kind: str, payload: Mapping[str, Any], scratch: Path) -> Any:
    """Run one job and return its JSON-ready result.

    Args:
        kind: ``estimate``, ``fit`` or ``cost``.
        payload: The validated request body.
        scratch: The worker's own folder for uploads.

    Raises:
        LorabenchError: Bad input (the message names the field).
    """
    return _JOBS[kind](payload, scratch)
