"""Map a RunSpec's method and bits to the real PEFT ``LoraConfig`` and bitsandbytes config.

``lora`` / ``qlora`` / ``dora`` / ``rslora`` are all PEFT LoRA adapters: DoRA sets
``use_dora`` (one magnitude per output feature of each adapted layer), rsLoRA sets
``use_rslora`` (scaling alpha/sqrt(r), same parameters as LoRA). ``bits`` chooses the
frozen base's storage: bf16, bitsandbytes LLM.int8, or NF4 with double quantization and
bf16 compute (QLoRA's recipe).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from lorabench.errors import ModelError
from lorabench.spec import ALL_LINEAR, RunSpec

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig

__all__ = ["check_targets", "linear_leaf_names", "lora_config", "quantization_config"]


def linear_leaf_names(model: torch.nn.Module) -> list[str]:
    """Names (last path component) of the model's linear layers, sorted, without duplicates."""
    names = {name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)}
    return sorted(names)


def check_targets(spec: RunSpec, model: torch.nn.Module, model_name: str) -> None:
    """Fail clearly when a target module name matches no layer of the architecture.

    PEFT matches a target name against a module's full path or its last components; we
    apply the same rule before PEFT does, so the user gets the list of valid names.

    Raises:
        ModelError: One or more targets match nothing.
    """
    targets = spec.target_list
    if targets is None:
        return
    names = [name for name, _ in model.named_modules()]
    unknown = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if unknown:
        allowed = ", ".join([*linear_leaf_names(model), ALL_LINEAR])
        raise ModelError(f"targets: {', '.join(unknown)} not found in {model_name}; linear layers are: {allowed}")


def lora_config(spec: RunSpec) -> LoraConfig:
    """The PEFT adapter config for a spec (task CAUSAL_LM, no bias)."""
    from peft import LoraConfig

    targets: str | list[str] = ALL_LINEAR if spec.target_list is None else list(spec.target_list)
    return LoraConfig(
        r=spec.rank,
        lora_alpha=cast(int, spec.alpha),  # annotated int by PEFT, used as alpha / r in floating point
        lora_dropout=spec.dropout,
        target_modules=targets,
        use_dora=spec.method == "dora",
        use_rslora=spec.method == "rslora",
        bias="none",
        task_type="CAUSAL_LM",
    )


def quantization_config(spec: RunSpec) -> BitsAndBytesConfig | None:
    """The bitsandbytes config for the base, or None at 16 bits."""
    if spec.bits == 16:
        return None
    from transformers import BitsAndBytesConfig

    if spec.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
