"""Infer the RunSpec of a live Hugging Face ``Trainer`` run from its model, PEFT config and training arguments.

Everything that cannot be read off the objects is listed in the returned notes (and the run record's
``notes``), never filled in silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, get_args

from lorabench.spec.model import ALL_LINEAR, Attention, Optimizer, RunSpec, parse_spec
from lorabench.spec.peft_config import from_adapter_config
from lorabench.spec.source import NO_EFFECT, IgnoredKey

__all__ = ["infer_spec"]

_LAYER = re.compile(r"\.(\d+)\.")


def _model_name(model: Any, peft: Mapping[str, Any] | None, notes: list[str]) -> str:
    base = peft.get("base_model_name_or_path") if peft else None
    config = getattr(model, "config", None)
    name = base or getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None)
    if name:
        return str(name)
    model_type = getattr(config, "model_type", None) or type(model).__name__
    notes.append(f"model: the model names no checkpoint (built from a config); recorded its model_type {model_type!r}")
    return str(model_type)


def _peft_fields(
    model: Any, notes: list[str], ignored: list[IgnoredKey]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    configs = getattr(model, "peft_config", None)
    if not isinstance(configs, Mapping) or not configs:
        notes.append("adapter: the model has no peft_config; recorded lorabench's default adapter fields")
        return {}, None
    name = getattr(model, "active_adapter", None)
    if not isinstance(name, str) or name not in configs:
        name = next(iter(configs))
    if len(configs) > 1:
        notes.append(f"adapter: the model has adapters {sorted(configs)}; recorded {name!r}")
    config = configs[name]
    data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    targets = data.get("target_modules")
    if isinstance(targets, (set, frozenset)):
        data["target_modules"] = sorted(targets)
    out = from_adapter_config(data)
    raw = {k: v for k, v in out.raw.items() if k != "model"}
    if isinstance(raw.get("targets"), str) and raw["targets"] != ALL_LINEAR:
        # PEFT has already matched the regex: record the module names it wrapped.
        _wrapped_targets(model, raw, notes)
    notes.extend(out.notes)
    notes.extend(f"adapter: {p}" for p in out.problems if not p.startswith("base_model_name_or_path"))
    ignored.extend(out.ignored)
    notes.extend(f"adapter: not honoured: {k.line()}" for k in out.ignored if k.category != NO_EFFECT)
    quiet = [k.key for k in out.ignored if k.category == NO_EFFECT]
    if quiet:
        notes.append(f"adapter: {len(quiet)} PEFT key(s) with no effect on resources ignored: {', '.join(quiet)}")
    return raw, data


def _wrapped_targets(model: Any, raw: dict[str, Any], notes: list[str]) -> None:
    """Replace a regex ``targets`` by the module names (and decoder layers) PEFT wrapped."""
    wrapped = [n for n, m in model.named_modules() if hasattr(m, "lora_A")]
    leaves = sorted({n.rsplit(".", 1)[-1] for n in wrapped})
    layers = sorted({int(m.group(1)) for n in wrapped if (m := _LAYER.search(n))})
    total = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    notes.append(f"target_modules: regex {raw['targets']!r} recorded as the modules PEFT wrapped: {leaves}")
    raw["targets"] = leaves or ALL_LINEAR
    if layers and isinstance(total, int) and len(layers) < total:
        raw["layers_to_transform"] = layers
        notes.append(f"target_modules: the regex wraps layers {layers} of {total}; recorded as layers_to_transform")
        if len(wrapped) != len(leaves) * len(layers):
            notes.append(
                f"target_modules: the regex wraps {len(wrapped)} modules, not every named module in those layers; "
                "the spec over-counts adapters"
            )


def _bits(model: Any, notes: list[str]) -> int:
    base = getattr(model, "base_model", model)
    inner = getattr(base, "model", base)
    for obj in (model, inner):
        if getattr(obj, "is_loaded_in_4bit", False):
            return 4
        if getattr(obj, "is_loaded_in_8bit", False):
            return 8
    quant = getattr(getattr(inner, "config", None), "quantization_config", None)
    if quant is not None:
        q = quant.to_dict() if hasattr(quant, "to_dict") else dict(quant)
        if q.get("load_in_4bit"):
            return 4
        if q.get("load_in_8bit"):
            return 8
        notes.append(f"bits: quantization_config {q.get('quant_method')!r} is not bitsandbytes 4/8-bit; recorded 16")
    return 16


def _training_fields(args: Any, state: Any, notes: list[str]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "micro_batch": args.per_device_train_batch_size,
        "grad_accum": args.gradient_accumulation_steps,
        "learning_rate": args.learning_rate,
        "grad_ckpt": bool(args.gradient_checkpointing),
        # the Trainer's mixed precision wraps the forward in torch.autocast (bf16 or fp16: the same byte sizes)
        "autocast": bool(getattr(args, "bf16", False) or getattr(args, "fp16", False)),
    }
    if getattr(args, "max_steps", -1) > 0 and getattr(state, "epoch", None):
        raw["epochs"] = float(state.epoch)
        notes.append(f"epochs: max_steps={args.max_steps} ended training; recorded the epochs run ({state.epoch:g})")
    else:
        raw["epochs"] = float(args.num_train_epochs)
    optim = str(getattr(args.optim, "value", args.optim))
    if optim in get_args(Optimizer):
        raw["optimizer"] = optim
    else:
        notes.append(f"optimizer: optim {optim!r} is not one lorabench models; recorded the default adamw_torch")
    world = int(args.world_size)
    raw["hardware"] = {"count": world}
    if world > 1:
        if getattr(args, "deepspeed", None):
            notes.append("parallelism: DeepSpeed config not read; recorded ddp")
        elif getattr(args, "fsdp", None):
            notes.append(f"parallelism: fsdp {args.fsdp!r} not read; recorded ddp")
        raw["parallelism"] = "ddp"
    return raw


def infer_spec(
    model: Any, args: Any, state: Any, gpu: str | None, seq_len: int | None
) -> tuple[RunSpec, list[str], list[IgnoredKey]]:
    """The RunSpec of a Trainer run, notes on every field that could not be read off the objects, ignored PEFT keys.

    Args:
        model: The (PEFT-wrapped) model the Trainer trains.
        args: Its ``TrainingArguments``.
        state: Its ``TrainerState`` (for the epochs run under ``max_steps``).
        gpu: The GPU name, or None on CPU.
        seq_len: The longest batch sequence seen (tokens), or None if no batch was counted.

    Returns:
        The spec, the notes, and the PEFT config keys the spec does not carry.
    """
    notes: list[str] = []
    ignored: list[IgnoredKey] = []
    raw, peft = _peft_fields(model, notes, ignored)
    raw["model"] = _model_name(model, peft, notes)
    raw.update(_training_fields(args, state, notes))
    raw["bits"] = _bits(model, notes)
    if raw["bits"] == 4 and raw.get("method", "lora") == "lora":
        raw["method"] = "qlora"
    if gpu is not None:
        raw["hardware"]["gpu"] = gpu
    else:
        notes.append("hardware.gpu: trained without CUDA; no GPU recorded (give gpu to price the run)")
    if seq_len is not None:
        raw["seq_len"] = seq_len
        notes.append(f"seq_len: the longest batch seen ({seq_len} tokens, padded); the Trainer sets no length")
    else:
        notes.append("seq_len: no batch was counted; recorded the default 512")
    attn = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if attn in get_args(Attention):
        raw["attention"] = attn
    else:
        notes.append(f"attention: implementation {attn!r} not one lorabench models; recorded sdpa")
    return parse_spec(raw, "ResourceCallback (inferred spec)"), notes, ignored
