"""Read a config file and tell its kind by content: lorabench YAML, Axolotl YAML, LLaMA-Factory YAML or PEFT JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lorabench.errors import ConfigError
from lorabench.spec.model import RunSpec
from lorabench.spec.source import ConfigKind

__all__ = ["detect_kind", "read_config_file"]

_MAX_CONFIG_BYTES = 4 * 1024 * 1024

# Keys only one kind uses; the kind with the most of them wins (ties: the order of this mapping).
_SIGNATURES: dict[ConfigKind, frozenset[str]] = {
    "peft": frozenset(
        {"peft_type", "base_model_name_or_path", "target_modules", "task_type", "inference_mode", "fan_in_fan_out"}
    ),
    "llamafactory": frozenset(
        {
            "model_name_or_path",
            "finetuning_type",
            "lora_rank",
            "lora_target",
            "cutoff_len",
            "stage",
            "template",
            "quantization_bit",
            "per_device_train_batch_size",
            "dataset_dir",
            "model_class",
            "peft_config",
            "dist_config",
            "kernel_config",
            "quant_config",
            "train_dataset",
        }
    ),
    "axolotl": frozenset(
        {
            "base_model",
            "adapter",
            "lora_r",
            "lora_target_linear",
            "lora_target_modules",
            "micro_batch_size",
            "sequence_len",
            "num_epochs",
            "load_in_4bit",
            "load_in_8bit",
            "datasets",
        }
    ),
    "lorabench": frozenset({"model", "method", "bits", "rank", "micro_batch", "seq_len", "grad_ckpt", "targets"}),
}


def read_config_file(path: Path) -> tuple[ConfigKind, dict[str, Any]]:
    """Read a config file and tell which kind it is by its content.

    Args:
        path: A lorabench YAML, an Axolotl YAML, a LLaMA-Factory YAML, or a PEFT ``adapter_config.json``.

    Returns:
        The detected kind and the parsed mapping.

    Raises:
        ConfigError: The file is missing, unreadable, not text, malformed, or of no known kind.
    """
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory; give a YAML or adapter_config.json file")
        blob = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
    if not blob.strip():
        raise ConfigError(f"{path}: config file is empty")
    if len(blob) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file is {len(blob)} bytes; configs over 4 MiB are not accepted")
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file (binary?)") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (contains NUL bytes)")
    data = _parse_text(path, text)
    return detect_kind(path, data), data


def _parse_text(path: Path, text: str) -> dict[str, Any]:
    data: Any
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        except (ValueError, RecursionError) as exc:  # a number too long to convert, or nesting too deep
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
            raise ConfigError(f"{path}: malformed JSON ({reason})") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
        except RecursionError:
            raise ConfigError(f"{path}: malformed YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level, got {type(data).__name__}")
    return data


def detect_kind(path: Path, data: Mapping[str, Any]) -> ConfigKind:
    """Tell the four config kinds apart by which kind's own keys the mapping holds most of.

    A PEFT config is also recognised by ``r`` with ``target_modules``; a file holding only
    lorabench field names is a lorabench YAML.

    Raises:
        ConfigError: None of the shapes matches.
    """
    keys = {str(k) for k in data}
    if "peft_type" in keys or {"r", "target_modules"} <= keys:
        return "peft"
    scores = {kind: len(keys & signature) for kind, signature in _SIGNATURES.items()}
    # lora_* keys without other evidence are Axolotl's (lora_r, lora_alpha, lora_dropout).
    if any(k.startswith("lora_") for k in keys):
        scores["axolotl"] += 0 if scores["llamafactory"] else 1
    best = max(scores.values())
    if best > 0:
        return next(kind for kind, score in scores.items() if score == best)
    if keys & set(RunSpec.model_fields):
        return "lorabench"
    if {"distributed_type", "compute_environment"} & keys:
        raise ConfigError(
            f"{path}: this is an accelerate launcher config, not a training config; give the training YAML, and "
            "--parallelism (fsdp_full_shard, fsdp_shard_grad_op, zero1-3, ddp) with --gpus for the launch"
        )
    raise ConfigError(
        f"{path}: cannot tell what kind of config this is: expected a lorabench YAML (key 'model'), "
        "an Axolotl YAML (key 'base_model'), a LLaMA-Factory YAML (key 'model_name_or_path') "
        "or a PEFT adapter_config.json (keys 'r' and 'target_modules')"
    )
