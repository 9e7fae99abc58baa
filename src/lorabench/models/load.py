"""Load a causal LM for real training: local weights, or random weights built from the config.

Resource use does not depend on weight values, so a model built from its config with random
weights measures the same memory and time as the released checkpoint; that is how ``tiny`` runs
here, and how a GPU user can measure Llama-3.1-8B without downloading it (``--random-weights``).
Quantized bases always go through transformers' real ``from_pretrained`` + bitsandbytes path
(random weights are saved as safetensors first), so the layers are exactly what users get.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lorabench.errors import ModelError
from lorabench.methods import quantization_config
from lorabench.models.build import quiet_hf
from lorabench.models.catalog import ResolvedModel
from lorabench.spec import RunSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["BUILT_IN_RANDOM", "has_local_weights", "load_for_training"]

# Catalog models that exist only as configs: they always train with random weights.
BUILT_IN_RANDOM = frozenset({"tiny"})


def has_local_weights(model: ResolvedModel) -> bool:
    """True when the model is a local directory holding safetensors weights."""
    return model.local_dir is not None and any(model.local_dir.glob("*.safetensors"))


def load_for_training(
    model: ResolvedModel, spec: RunSpec, device: torch.device, random_weights: bool, seed: int
) -> PreTrainedModel:
    """Load the base model for ``spec`` on ``device`` (bf16 base; bitsandbytes at 8/4 bits).

    Args:
        model: The resolved model.
        spec: The run spec (bits decide quantization).
        device: Where the model lives (one device per process).
        random_weights: Build from the config with random weights instead of loading weights.
        seed: Seed for the random weights.

    Returns:
        The model, not yet wrapped by PEFT.

    Raises:
        ModelError: No local weights and random weights not requested, or loading fails.
    """
    from transformers import AutoModelForCausalLM

    use_random = random_weights or model.key in BUILT_IN_RANDOM
    if not use_random and not has_local_weights(model):
        raise ModelError(
            f"model {model.display_name!r} has no local safetensors weights; pass --random-weights to measure "
            "with random weights of the same shapes (resource use does not depend on weight values)"
        )
    quant = quantization_config(spec)
    device_map = {"": device}
    with quiet_hf():
        if not use_random and model.local_dir is not None:
            return AutoModelForCausalLM.from_pretrained(
                model.local_dir,
                dtype=torch.bfloat16,
                quantization_config=quant,
                device_map=device_map,
                use_safetensors=True,
                trust_remote_code=False,
                local_files_only=True,
            )
        torch.manual_seed(seed)
        random_model: PreTrainedModel = AutoModelForCausalLM.from_config(
            model.config, dtype=torch.bfloat16, trust_remote_code=False
        )
        if quant is None:
            return random_model.to(device)  # type: ignore[arg-type, no-any-return]
        with tempfile.TemporaryDirectory(prefix="lorabench-random-") as tmp:
            random_model.save_pretrained(tmp, safe_serialization=True)
            del random_model
            return AutoModelForCausalLM.from_pretrained(
                Path(tmp),
                dtype=torch.bfloat16,
                quantization_config=quant,
                device_map=device_map,
                use_safetensors=True,
                trust_remote_code=False,
                local_files_only=True,
            )
