"""Pieces the Axolotl and LLaMA-Factory loaders share: optimizer names, DeepSpeed files, FSDP, attention."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorabench.spec.source import NOT_MODELLED, Translation

__all__ = [
    "OPTIMIZERS",
    "DeepSpeed",
    "apply_deepspeed",
    "fsdp_parallelism",
    "read_deepspeed",
    "set_optimizer",
]

# Hugging Face TrainingArguments / Axolotl optimizer names -> RunSpec.optimizer, with a note where approximate.
OPTIMIZERS: dict[str, tuple[str, str | None]] = {
    "adamw_torch": ("adamw_torch", None),
    "adamw_torch_fused": ("adamw_torch_fused", None),
    "adamw_hf": ("adamw_torch", "adamw_hf (transformers' own AdamW) has the same fp32 states as adamw_torch"),
    "adamw_bnb_8bit": ("adamw_8bit", None),
    "adamw_8bit": ("adamw_8bit", None),
    "adamw_torch_8bit": (
        "adamw_8bit",
        "adamw_torch_8bit (torchao AdamW8bit) is modelled as bitsandbytes adamw_8bit: one byte per state element",
    ),
    "paged_adamw_8bit": ("paged_adamw_8bit", None),
    "paged_adamw_32bit": ("paged_adamw_32bit", None),
    "adamw_torch_4bit": ("adamw_4bit", None),
    "adamw_4bit": ("adamw_4bit", None),
}


def set_optimizer(out: Translation, key: str, value: Any) -> None:
    """Map an optimizer name into ``out.raw['optimizer']`` or record a problem listing the allowed names."""
    if value is None:
        return
    if isinstance(value, str) and value in OPTIMIZERS:
        name, note = OPTIMIZERS[value]
        out.raw["optimizer"] = name
        if note:
            out.notes.append(f"{key}: {note}")
        return
    out.problems.append(f"{key}: {value!r} is not modelled; allowed: {', '.join(OPTIMIZERS)}")


@dataclass(frozen=True)
class DeepSpeed:
    """What lorabench reads from a DeepSpeed config reference: the ZeRO stage and any CPU/NVMe offload."""

    stage: int | None
    offload: tuple[str, ...]


def read_deepspeed(ref: str, base_dirs: tuple[Path, ...]) -> DeepSpeed:
    """Read the ZeRO stage (and offload) from the DeepSpeed file, or failing that from its name.

    Names such as ``zero3_bf16_cpuoffload_all.json`` (Axolotl) and ``ds_z2_offload_config.json``
    (LLaMA-Factory) are understood when the file itself is not at hand.
    """
    for candidate in [Path(ref), *(base / ref for base in base_dirs)]:
        try:
            zero = json.loads(candidate.read_text("utf-8"))["zero_optimization"]
            stage = zero["stage"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue
        if stage not in (0, 1, 2, 3):
            continue
        offload = tuple(
            f"{name} to {zero[name].get('device')}"
            for name in ("offload_optimizer", "offload_param")
            if isinstance(zero.get(name), dict) and zero[name].get("device") not in (None, "none")
        )
        return DeepSpeed(int(stage), offload)
    name = Path(ref).name
    match = re.search(r"(?:zero|z)[_-]?([0123])", name, re.IGNORECASE)
    offload = ("offload (from the file name)",) if "offload" in name.lower() else ()
    return DeepSpeed(int(match.group(1)) if match else None, offload)


def apply_deepspeed(out: Translation, key: str, ref: Any, base_dirs: tuple[Path, ...]) -> None:
    """Set ``parallelism`` from a DeepSpeed reference; offload is recorded as not modelled."""
    if ref in (None, "", False):
        return
    if isinstance(ref, dict):
        # An inline DeepSpeed dict (LLaMA-Factory/HF accept one).
        zero = ref.get("zero_optimization")
        stage = zero.get("stage") if isinstance(zero, dict) else None
        info = DeepSpeed(int(stage) if stage in (0, 1, 2, 3) else None, ())
    else:
        info = read_deepspeed(str(ref), base_dirs)
    if info.stage is None:
        out.problems.append(
            f"{key}: cannot tell the ZeRO stage of {ref!r} (no readable zero_optimization.stage and no "
            "zero1/zero2/zero3 or z1/z2/z3 in its name)"
        )
        return
    out.raw["parallelism"] = "ddp" if info.stage == 0 else f"zero{info.stage}"
    if info.offload:
        out.ignore(
            f"{key} (offload)",
            ", ".join(info.offload),
            NOT_MODELLED,
            "DeepSpeed CPU/NVMe offload moves optimizer state or parameters off the GPU; lorabench predicts "
            "the ZeRO stage without offload (an upper bound on GPU memory)",
        )


def fsdp_parallelism(out: Translation, strategy: str, offload: bool) -> None:
    """Set FSDP parallelism from a sharding strategy name (FULL_SHARD, SHARD_GRAD_OP, HYBRID_SHARD, ...)."""
    text = strategy.lower()
    if "shard_grad_op" in text or "hybrid_shard_zero2" in text:
        out.raw["parallelism"] = "fsdp_shard_grad_op"
    elif "full_shard" in text or "hybrid_shard" in text:
        out.raw["parallelism"] = "fsdp_full_shard"
        if "hybrid" in text:
            out.notes.append(f"fsdp: {strategy} is modelled as full sharding within the GPUs of the spec")
    elif "no_shard" in text:
        out.raw["parallelism"] = "ddp"
    else:
        out.problems.append(
            f"fsdp: sharding strategy {strategy!r} not understood; allowed: full_shard, shard_grad_op, "
            "hybrid_shard, no_shard"
        )
        return
    if offload:
        out.raw["fsdp_offload"] = True
