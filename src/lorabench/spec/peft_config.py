"""Translate a PEFT ``adapter_config.json`` into RunSpec fields, listing every key that does not become one.

A regular-expression ``target_modules`` (PEFT full-matches it against every module name) is expanded on
the base model's module graph, built on the meta device: the module names it selects, plus the decoder
layers it selects when it does not cover them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lorabench.spec.model import ALL_LINEAR
from lorabench.spec.source import NO_EFFECT, NOT_MODELLED, UNRECOGNISED, Translation

__all__ = ["expand_regex_targets", "from_adapter_config"]

_HONOURED = {
    "peft_type",
    "base_model_name_or_path",
    "r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "use_dora",
    "use_rslora",
    "modules_to_save",
    "layers_to_transform",
    "layers_pattern",
    "rank_pattern",
    "alpha_pattern",
}
_NO_EFFECT = {
    "task_type": "the task head PEFT wraps (lorabench builds the causal LM)",
    "inference_mode": "how PEFT loads the adapter",
    "revision": "the base model's hub revision",
    "auto_mapping": "PEFT bookkeeping",
    "fan_in_fan_out": "weight layout of GPT-2 style Conv1D layers",
    "init_lora_weights": "initialisation of the adapter (same shapes)",
    "megatron_config": "Megatron layers (not used)",
    "megatron_core": "Megatron layers (not used)",
    "loftq_config": "LoftQ initialisation (same shapes)",
    "eva_config": "EVA initialisation (same shapes)",
    "corda_config": "CorDA initialisation (same shapes)",
    "runtime_config": "runtime options of PEFT",
    "qalora_group_size": "QA-LoRA group size (QA-LoRA off)",
    "alora_invocation_tokens": "activated-LoRA tokens",
    "ensure_weight_tying": "keeps tied embeddings tied",
    "arrow_config": "Arrow routing (inference)",
    "lora_ga_config": "LoRA-GA initialisation (same shapes)",
    "peft_version": "the PEFT version that saved the adapter",
}
_NOT_MODELLED = {
    "bias": "trains bias terms beside the adapter",
    "lora_bias": "adds a trainable bias to each lora_B",
    "layer_replication": "replicates decoder layers (more adapters)",
    "exclude_modules": "excludes modules from the targets",
    "target_parameters": "LoRA on raw parameters (e.g. MoE expert tensors)",
    "trainable_token_indices": "trains selected embedding rows",
    "use_qalora": "QA-LoRA (quantization-aware pooling)",
}
# Values that mean "off" for the not-modelled keys.
_OFF: dict[str, tuple[Any, ...]] = {"bias": ("none",), "lora_bias": (False,), "use_qalora": (False,)}


def from_adapter_config(data: Mapping[str, Any]) -> Translation:
    """Translate a PEFT ``adapter_config.json`` (r, lora_alpha, target_modules, use_dora, modules_to_save, ...).

    The base's bit width is not recorded in an adapter config; it stays at the default (16)
    unless the command line gives ``--bits``.

    Returns:
        The translation; ``problems`` lists a non-LoRA adapter, both DoRA and rsLoRA, or a missing base.
    """
    out = Translation()
    raw = out.raw
    peft_type = data.get("peft_type", "LORA")
    if peft_type != "LORA":
        out.problems.append(f"peft_type: lorabench models LORA adapters (got {peft_type!r})")
    if data.get("base_model_name_or_path"):
        raw["model"] = data["base_model_name_or_path"]
    else:
        out.problems.append("base_model_name_or_path: missing; pass --model to say which base this adapter is for")
    for src, dst in (
        ("r", "rank"),
        ("lora_alpha", "alpha"),
        ("lora_dropout", "dropout"),
        ("modules_to_save", "modules_to_save"),
        ("rank_pattern", "rank_pattern"),
        ("alpha_pattern", "alpha_pattern"),
    ):
        if data.get(src) is not None:
            raw[dst] = data[src]
    layers = data.get("layers_to_transform")
    if layers is not None:
        raw["layers_to_transform"] = [layers] if isinstance(layers, int) and not isinstance(layers, bool) else layers
    targets = data.get("target_modules")
    if isinstance(targets, str) and targets != ALL_LINEAR:
        raw["targets"] = targets  # a regex: expanded by expand_regex_targets once the model is known
        out.notes.append(f"target_modules: regular expression {targets!r} expanded on the base model's modules")
    elif targets is not None:
        raw["targets"] = targets
    dora, rslora = bool(data.get("use_dora")), bool(data.get("use_rslora"))
    if dora and rslora:
        out.problems.append("use_dora/use_rslora: both are true; lorabench models one method per run")
    raw["method"] = "dora" if dora else "rslora" if rslora else "lora"
    for key, value in data.items():
        key = str(key)
        if key in _HONOURED or key in ("use_dora", "use_rslora") or value in (None, [], {}, ""):
            continue
        if key in _NOT_MODELLED:
            if value not in _OFF.get(key, ()):
                out.ignore(key, value, NOT_MODELLED, _NOT_MODELLED[key])
        elif key in _NO_EFFECT:
            out.ignore(key, value, NO_EFFECT, _NO_EFFECT[key])
        elif value is not False:
            out.ignore(key, value, UNRECOGNISED, "not a PEFT LoraConfig key lorabench knows")
    return out


def expand_regex_targets(pattern: str, model_ref: str) -> tuple[list[str], list[int] | None]:
    """Turn a PEFT regex ``target_modules`` into module names (and decoder layers) on ``model_ref``'s graph.

    Args:
        pattern: The regular expression PEFT full-matches against each module's qualified name.
        model_ref: The base model (catalog name, hub id, cached or local folder).

    Returns:
        The leaf names the pattern selects, and the layer indices when it selects only some layers.

    Raises:
        ConfigError: The pattern is invalid, selects nothing, or selects a set lorabench cannot express.
        ModelError: The model cannot be resolved.
    """
    from torch import nn

    from lorabench.errors import ConfigError
    from lorabench.models import build_meta_model, resolve_model

    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"target_modules: invalid regular expression {pattern!r} ({exc})") from None
    model = build_meta_model(resolve_model(model_ref).config)
    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    chosen = [name for name in linear if regex.fullmatch(name)]
    if not chosen:
        raise ConfigError(f"target_modules: {pattern!r} selects no linear module of {model_ref}")
    leaves = sorted({name.rsplit(".", 1)[-1] for name in chosen})
    candidates = [name for name in linear if name.rsplit(".", 1)[-1] in leaves]
    if len(candidates) == len(chosen):
        return leaves, None
    layer_of = re.compile(r"\.(\d+)\.")

    def layer(name: str) -> int | None:
        match = layer_of.search(name)
        return int(match.group(1)) if match else None

    layers = sorted({i for i in map(layer, chosen) if i is not None})
    expected = {name for name in candidates if layer(name) in layers}
    if set(chosen) != expected:
        raise ConfigError(
            f"target_modules: {pattern!r} selects {len(chosen)} of the {len(candidates)} modules named "
            f"{', '.join(leaves)} in a way lorabench cannot express as module names plus layers_to_transform"
        )
    return leaves, layers
