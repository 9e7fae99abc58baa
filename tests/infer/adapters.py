"""Real PEFT LoRA adapters for the inference tests (random weights, built with get_peft_model + save_pretrained)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def make_adapter(folder: Path, model: str = "tiny", seed: int = 0, **config: Any) -> Path:
    """Save a LoRA r4 q/k/v adapter (non-zero B, so it changes outputs) for a catalog model or a config override."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    from lorabench.models import resolve_model

    model_config = LlamaConfig(**config) if config else resolve_model(model).config
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_config(model_config, dtype=torch.bfloat16)
    lora = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "k_proj", "v_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(base, lora)
    for cfg in peft_model.peft_config.values():
        cfg.base_model_name_or_path = model
    peft_model.save_pretrained(folder, safe_serialization=True)
    return folder


def other_architecture_adapter(folder: Path) -> Path:
    """A real adapter of a Llama-architecture model with other shapes than ``tiny`` (hidden 128, 2 layers)."""
    return make_adapter(
        folder,
        model="other-llama",
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=512,
    )
