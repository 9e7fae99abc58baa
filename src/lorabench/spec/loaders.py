"""Build a RunSpec from CLI flags, a lorabench YAML, an Axolotl YAML or a PEFT adapter_config.json.

Each loader translates its format into lorabench's raw field names; :func:`load_spec`
merges command-line overrides on top and validates once with :func:`parse_spec`, so
every source gets the same error messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from lorabench.errors import ConfigError
from lorabench.spec.model import ALL_LINEAR, RunSpec, parse_spec

__all__ = [
    "SpecSource",
    "detect_kind",
    "from_adapter_config",
    "from_axolotl",
    "from_lorabench_yaml",
    "load_spec",
    "read_config_file",
]

SpecSource = Literal["lorabench", "axolotl", "peft"]

_MAX_CONFIG_BYTES = 4 * 1024 * 1024

# Axolotl optimizer names -> lorabench's three.
_AXOLOTL_OPTIMIZERS = {
    "adamw_torch": "adamw_torch",
    "adamw_torch_fused": "adamw_torch",
    "adamw_hf": "adamw_torch",
    "adamw_bnb_8bit": "adamw_8bit",
    "adamw_8bit": "adamw_8bit",
    "paged_adamw_8bit": "paged_adamw_8bit",
}


def read_config_file(path: Path) -> tuple[SpecSource, dict[str, Any]]:
    """Read a config file and tell which kind it is by its content.

    Args:
        path: A lorabench YAML, an Axolotl YAML, or a PEFT ``adapter_config.json``.

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


def detect_kind(path: Path, data: Mapping[str, Any]) -> SpecSource:
    """Tell a PEFT adapter config, an Axolotl YAML and a lorabench YAML apart by their keys.

    Raises:
        ConfigError: None of the three shapes matches.
    """
    if "peft_type" in data or ("r" in data and "target_modules" in data):
        return "peft"
    if "base_model" in data or "adapter" in data or any(str(k).startswith("lora_") for k in data):
        return "axolotl"
    if "model" in data:
        return "lorabench"
    raise ConfigError(
        f"{path}: cannot tell what kind of config this is: expected a lorabench YAML (key 'model'), "
        "an Axolotl YAML (key 'base_model') or a PEFT adapter_config.json (keys 'r' and 'target_modules')"
    )


def from_lorabench_yaml(data: Mapping[str, Any]) -> dict[str, Any]:
    """A lorabench YAML uses RunSpec's own field names; ``hardware`` may also be a string like ``4xA5000``."""
    raw = dict(data)
    if "hardware" in raw:
        raw["hardware"] = _hardware(raw["hardware"])
    return raw


def _hardware(value: Any) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\S.*?)\s*", value)
        if match:
            return {"gpu": match.group(2), "count": int(match.group(1))}
        return {"gpu": value.strip() or None, "count": 1}
    return value


def from_axolotl(data: Mapping[str, Any], base_dir: Path | None = None) -> dict[str, Any]:
    """Translate Axolotl's keys (base_model, adapter, lora_r, load_in_4bit, ...) into RunSpec fields.

    Keys Axolotl has and lorabench does not model (datasets, wandb, ...) are ignored.

    Raises:
        ConfigError: Contradictory or unsupported values, all listed at once.
    """
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if data.get("base_model") in (None, ""):
        problems.append("base_model: required (the model to fine-tune)")
    else:
        raw["model"] = data["base_model"]

    adapter = data.get("adapter")
    if adapter not in (None, "lora", "qlora"):
        problems.append(f"adapter: lorabench models 'lora' and 'qlora' adapters (got {adapter!r})")
    in8, in4 = bool(data.get("load_in_8bit")), bool(data.get("load_in_4bit"))
    if in8 and in4:
        problems.append("load_in_8bit/load_in_4bit: both are true; choose one")
    if adapter == "qlora" or in4:
        raw["bits"] = 4
    elif in8:
        raw["bits"] = 8
    dora, rslora = bool(data.get("peft_use_dora")), bool(data.get("peft_use_rslora"))
    if dora and rslora:
        problems.append("peft_use_dora/peft_use_rslora: both are true; lorabench models one method per run")
    raw["method"] = "dora" if dora else "rslora" if rslora else "qlora" if adapter == "qlora" else "lora"

    for src, dst in (
        ("lora_r", "rank"),
        ("lora_alpha", "alpha"),
        ("lora_dropout", "dropout"),
        ("micro_batch_size", "micro_batch"),
        ("gradient_accumulation_steps", "grad_accum"),
        ("sequence_len", "seq_len"),
        ("num_epochs", "epochs"),
        ("learning_rate", "learning_rate"),
    ):
        if data.get(src) is not None:
            raw[dst] = data[src]
    if data.get("gradient_checkpointing") is not None:
        raw["grad_ckpt"] = bool(data["gradient_checkpointing"])
    if data.get("lora_target_linear"):
        raw["targets"] = ALL_LINEAR
    elif data.get("lora_target_modules") is not None:
        raw["targets"] = data["lora_target_modules"]

    optimizer = data.get("optimizer")
    if optimizer is not None:
        if isinstance(optimizer, str) and optimizer in _AXOLOTL_OPTIMIZERS:
            raw["optimizer"] = _AXOLOTL_OPTIMIZERS[optimizer]
        else:
            problems.append(f"optimizer: {optimizer!r} is not modelled; allowed: {', '.join(_AXOLOTL_OPTIMIZERS)}")
    if data.get("deepspeed"):
        stage = _deepspeed_stage(str(data["deepspeed"]), base_dir)
        if stage is None:
            problems.append(
                f"deepspeed: cannot tell the ZeRO stage of {data['deepspeed']!r} (no readable "
                "zero_optimization.stage and no zero1/zero2/zero3 in its name)"
            )
        else:
            raw["parallelism"] = f"zero{stage}"
    if problems:
        raise ConfigError("; ".join(problems))
    return raw


def _deepspeed_stage(ref: str, base_dir: Path | None) -> int | None:
    candidates = [Path(ref)] + ([base_dir / ref] if base_dir is not None else [])
    for candidate in candidates:
        try:
            stage = json.loads(candidate.read_text("utf-8"))["zero_optimization"]["stage"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if stage in (1, 2, 3):
            return int(stage)
    match = re.search(r"zero[_-]?([123])", Path(ref).name, re.IGNORECASE)
    return int(match.group(1)) if match else None


def from_adapter_config(data: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a PEFT ``adapter_config.json`` (r, lora_alpha, target_modules, use_dora, use_rslora, ...).

    The base's bit width is not recorded in an adapter config; it stays at the default (16)
    unless the command line gives ``--bits``.

    Raises:
        ConfigError: Not a LoRA adapter, or both DoRA and rsLoRA set.
    """
    problems: list[str] = []
    peft_type = data.get("peft_type", "LORA")
    if peft_type != "LORA":
        problems.append(f"peft_type: lorabench models LORA adapters (got {peft_type!r})")
    raw: dict[str, Any] = {}
    if data.get("base_model_name_or_path"):
        raw["model"] = data["base_model_name_or_path"]
    else:
        problems.append("base_model_name_or_path: missing; pass --model to say which base this adapter is for")
    for src, dst in (("r", "rank"), ("lora_alpha", "alpha"), ("lora_dropout", "dropout")):
        if data.get(src) is not None:
            raw[dst] = data[src]
    targets = data.get("target_modules")
    if isinstance(targets, str) and targets != ALL_LINEAR:
        problems.append(f"target_modules: regular-expression targets are not supported (got {targets!r}); list names")
    elif targets is not None:
        raw["targets"] = targets
    dora, rslora = bool(data.get("use_dora")), bool(data.get("use_rslora"))
    if dora and rslora:
        problems.append("use_dora/use_rslora: both are true; lorabench models one method per run")
    raw["method"] = "dora" if dora else "rslora" if rslora else "lora"
    if problems:
        raise ConfigError("; ".join(problems))
    return raw


def load_spec(config: Path | None = None, overrides: Mapping[str, Any] | None = None) -> RunSpec:
    """Build the RunSpec from an optional config file plus command-line overrides.

    Args:
        config: A lorabench YAML, Axolotl YAML or adapter_config.json (kind detected by content).
        overrides: Field values from flags; None values mean "not given" and are skipped.

    Returns:
        The validated spec.

    Raises:
        ConfigError: The file or any value is invalid (every problem listed).
    """
    raw: dict[str, Any] = {}
    source = "command line"
    if config is not None:
        kind, data = read_config_file(config)
        try:
            if kind == "peft":
                raw = from_adapter_config(data)
            elif kind == "axolotl":
                raw = from_axolotl(data, config.parent)
            else:
                raw = from_lorabench_yaml(data)
        except ConfigError as exc:
            raise ConfigError(f"{config} ({kind} config): {exc}") from None
        source = f"{config} ({kind} config)" + (" + command line" if overrides else "")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if "model" not in given and "model" not in raw:
        raise ConfigError("no model given: pass --model NAME (or a config file that names one)")
    hardware_overrides = {k: given.pop(k) for k in ("gpu", "gpus") if k in given}
    if hardware_overrides:
        current = _hardware(raw.get("hardware")) or {}
        hardware = dict(current) if isinstance(current, Mapping) else {}
        if "gpu" in hardware_overrides:
            hardware["gpu"] = hardware_overrides["gpu"]
        if "gpus" in hardware_overrides:
            hardware["count"] = hardware_overrides["gpus"]
        raw["hardware"] = hardware
    if given.get("method") == "qlora" and "bits" not in given:
        raw["bits"] = None  # qlora implies 4 bits unless the user says otherwise
    raw.update(given)
    return parse_spec(raw, source)
