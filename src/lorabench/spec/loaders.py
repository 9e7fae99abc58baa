"""Build a RunSpec from CLI flags and a config file: lorabench YAML, Axolotl YAML, LLaMA-Factory YAML or PEFT JSON.

Each loader (:mod:`~lorabench.spec.axolotl`, :mod:`~lorabench.spec.llamafactory`,
:mod:`~lorabench.spec.peft_config`) translates its format into lorabench's raw field names and lists every
key it did not honour; :func:`load_spec_source` merges command-line overrides on top and validates once with
:func:`parse_spec`, so every source gets the same error messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lorabench.errors import ConfigError, ModelError
from lorabench.spec.axolotl import from_axolotl
from lorabench.spec.detect import detect_kind, read_config_file
from lorabench.spec.llamafactory import from_llamafactory
from lorabench.spec.model import ALL_LINEAR, RunSpec, parse_spec
from lorabench.spec.model_names import quantized_upload_bits
from lorabench.spec.peft_config import expand_regex_targets, from_adapter_config
from lorabench.spec.source import ConfigKind, LoadedSpec, Translation

__all__ = [
    "SpecSource",
    "detect_kind",
    "from_adapter_config",
    "from_axolotl",
    "from_llamafactory",
    "from_lorabench_yaml",
    "load_spec",
    "load_spec_source",
    "read_config_file",
]

SpecSource = ConfigKind
"""The kind of a config file (kept under its old name)."""


def from_lorabench_yaml(data: Mapping[str, Any]) -> Translation:
    """A lorabench YAML uses RunSpec's own field names; ``hardware`` may also be a string like ``4xA5000``.

    Unknown keys are not ignored: validation names them as unknown fields.
    """
    raw = dict(data)
    if "hardware" in raw:
        raw["hardware"] = _hardware(raw["hardware"])
    return Translation(raw=raw)


def _hardware(value: Any) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\S.*?)\s*", value)
        if match:
            return {"gpu": match.group(2), "count": int(match.group(1))}
        return {"gpu": value.strip() or None, "count": 1}
    return value


def _translate(kind: ConfigKind, data: dict[str, Any], config: Path) -> Translation:
    if kind == "peft":
        return from_adapter_config(data)
    if kind == "axolotl":
        return from_axolotl(data, config.parent)
    if kind == "llamafactory":
        return from_llamafactory(data, config.parent)
    return from_lorabench_yaml(data)


def load_spec_source(config: Path | str | None = None, overrides: Mapping[str, Any] | None = None) -> LoadedSpec:
    """Build the RunSpec from an optional config file plus command-line overrides, keeping what the file said.

    Args:
        config: A lorabench YAML, Axolotl YAML, LLaMA-Factory YAML or adapter_config.json (kind detected by
            content).
        overrides: Field values from flags; None values mean "not given" and are skipped.

    Returns:
        The validated spec with the file's ignored keys, notes and dataset hints.

    Raises:
        ConfigError: The file or any value is invalid (every problem listed).
        ModelError: A regex ``target_modules`` names a model that cannot be resolved.
    """
    translation = Translation()
    kind: ConfigKind | None = None
    source = "command line"
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if config is not None:
        config = Path(config)  # a str path too (the public API's lorabench.load_spec already accepts one)
        kind, data = read_config_file(config)
        translation = _translate(kind, data, config)
        if "model" in given:
            translation.problems = [p for p in translation.problems if not _is_missing_model(p)]
        if translation.problems:
            raise ConfigError(f"{config} ({kind} config): " + "; ".join(translation.problems))
        source = f"{config} ({kind} config)" + (" + command line" if overrides else "")
    raw = translation.raw
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
    if (
        kind == "peft"
        and isinstance(raw.get("targets"), str)
        and raw["targets"] != ALL_LINEAR
        and "targets" not in given
    ):
        _expand_targets(raw, translation, config)
    spec = parse_spec(raw, source)
    translation.notes.extend(_spec_notes(spec, kind, given))
    return LoadedSpec(
        spec=spec,
        kind=kind,
        path=config,
        ignored_keys=tuple(translation.ignored),
        notes=tuple(translation.notes),
        datasets=tuple(translation.datasets),
    )


def _spec_notes(spec: RunSpec, kind: ConfigKind | None, given: Mapping[str, Any]) -> list[str]:
    """Notes on the validated spec that a file cannot say: GPU count, pre-quantized bases."""
    notes = []
    from_file = kind in ("axolotl", "llamafactory") and "gpus" not in given
    if from_file and spec.parallelism != "single" and spec.hardware.count == 1:
        notes.append(
            f"parallelism: {spec.parallelism} read from the file, which does not say how many GPUs; "
            "estimated for 1 (pass --gpus N)"
        )
    bits = quantized_upload_bits(spec.model)
    if bits is not None and spec.bits != bits:
        notes.append(
            f"model: {spec.model} is a pre-quantized {bits}-bit upload, but the spec's base is {spec.bits}-bit "
            f"(pass --bits {bits} to match the checkpoint)"
        )
    return notes


def _is_missing_model(problem: str) -> bool:
    return problem.split(":", 1)[0] in ("base_model", "model_name_or_path", "base_model_name_or_path")


def _expand_targets(raw: dict[str, Any], translation: Translation, config: Path | None) -> None:
    try:
        names, layers = expand_regex_targets(str(raw["targets"]), str(raw["model"]))
    except ConfigError as exc:
        raise ConfigError(f"{config} (peft config): {exc}") from None
    except ModelError as exc:
        raise ConfigError(
            f"{config} (peft config): target_modules: the regular expression {raw['targets']!r} is expanded on "
            f"the base model's modules, and {exc}"
        ) from None
    raw["targets"] = names
    if layers is not None:
        if raw.get("layers_to_transform") not in (None, layers):
            translation.notes.append("layers_to_transform: PEFT ignores it when target_modules is a regex")
        raw["layers_to_transform"] = layers
    translation.notes.append(
        f"target_modules: expanded to {', '.join(names)}" + (f" in layers {layers}" if layers is not None else "")
    )


def load_spec(config: Path | str | None = None, overrides: Mapping[str, Any] | None = None) -> RunSpec:
    """Build the RunSpec from an optional config file plus command-line overrides.

    Args:
        config: A lorabench YAML, Axolotl YAML, LLaMA-Factory YAML or adapter_config.json (kind detected by
            content).
        overrides: Field values from flags; None values mean "not given" and are skipped.

    Returns:
        The validated spec (:func:`load_spec_source` also returns the keys the file had that it does not carry).

    Raises:
        ConfigError: The file or any value is invalid (every problem listed).
    """
    return load_spec_source(config, overrides).spec
