"""The models a benchmark serves: the base, the base with the adapter unmerged, merged, and the quantized base.

One bf16 copy of the base serves the bf16 variants in turn, so weights are loaded once: the plain base first, then
the adapter is attached with PEFT (``PeftModel.from_pretrained``: LoRA layers beside the frozen weights), then merged
into the weights with ``merge_and_unload``. The quantized variants load the base again through transformers'
``from_pretrained`` with bitsandbytes (random weights are saved as safetensors first, as training does); an adapter
is served unmerged on it, because merging into 4- or 8-bit weights would round the merged weights to the quantized
grid (lossy), so the merged-quantized variant is skipped with that reason.
"""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lorabench.errors import ModelError
from lorabench.models.build import quiet_hf
from lorabench.models.load import BUILT_IN_RANDOM, has_local_weights

if TYPE_CHECKING:
    from lorabench.models import ResolvedModel

__all__ = [
    "MERGE_QUANT_SKIPPED",
    "attach_adapter",
    "avoid_bnb_cpu_packing",
    "load_base",
    "merge",
    "release_memory",
    "weight_bytes",
]

MERGE_QUANT_SKIPPED = (
    "merging a LoRA adapter into a {bits}-bit bitsandbytes base rounds the merged weights to the quantized grid "
    "(lossy): quantized bases serve their adapter unmerged"
)


def _quantization(bits: int) -> Any:
    if bits == 16:
        return None
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def _from_pretrained(folder: Path, bits: int, device: torch.device) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        folder,
        dtype=torch.bfloat16,
        quantization_config=_quantization(bits),
        device_map={"": device},
        use_safetensors=True,
        trust_remote_code=False,
        local_files_only=True,
    )


def load_base(model: ResolvedModel, bits: int, device: torch.device, random_weights: bool, seed: int) -> Any:
    """Load the base for inference (eval mode): bf16 at 16 bits, bitsandbytes LLM.int8 / NF4 at 8 / 4 bits.

    Random weights are initialised directly on ``device`` (fast on a GPU even for 8B models).

    Raises:
        ModelError: No local weights and random weights not requested.
    """
    from transformers import AutoModelForCausalLM

    use_random = random_weights or model.key in BUILT_IN_RANDOM
    if not use_random and not has_local_weights(model):
        raise ModelError(
            f"model {model.display_name!r} has no local safetensors weights; pass --random-weights to measure "
            "with random weights of the same shapes (speed and memory do not depend on weight values)"
        )
    with quiet_hf():
        if not use_random and model.local_dir is not None:
            loaded = _from_pretrained(model.local_dir, bits, device)
        else:
            torch.manual_seed(seed)
            with device:
                built = AutoModelForCausalLM.from_config(model.config, dtype=torch.bfloat16, trust_remote_code=False)
            if bits == 16:
                loaded = built
            else:
                with tempfile.TemporaryDirectory(prefix="lorabench-infer-") as tmp:
                    built.save_pretrained(tmp, safe_serialization=True)
                    del built
                    release_memory()
                    loaded = _from_pretrained(Path(tmp), bits, device)
    loaded.eval()
    # Frozen, as PEFT leaves the base of the adapter variants: on CPU, generation with frozen bf16 weights
    # allocates more (2.26 vs 0.30 MB on tiny), so base and adapter variants must agree on this.
    loaded.requires_grad_(False)
    loaded.config.use_cache = True
    return loaded


def attach_adapter(base: Any, adapter_dir: Path, name: str = "default") -> Any:
    """Wrap ``base`` with the adapter (PEFT, inference mode); the base's layers are modified in place.

    Raises:
        ModelError: PEFT cannot load the adapter onto this base.
    """
    from peft import PeftModel

    try:
        with quiet_hf():
            model = PeftModel.from_pretrained(base, str(adapter_dir), adapter_name=name, is_trainable=False)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"--adapter: PEFT cannot load {adapter_dir} onto this base ({str(exc)[:300]})") from None
    model.eval()
    return model


def merge(model: Any) -> Any:
    """Merge the active adapter into the base weights and drop the LoRA layers (PEFT ``merge_and_unload``)."""
    with quiet_hf():
        merged = model.merge_and_unload()
    merged.eval()
    return merged


def avoid_bnb_cpu_packing(model: Any) -> str | None:
    """Keep bitsandbytes off its packed CPU 4-bit kernel for layers it cannot pack; returns a note or None.

    bitsandbytes 0.50 repacks NF4 weights for its AVX512-bf16 CPU kernel on the first eval-mode forward and asserts
    that every layer's output features divide by 32 (and its packing needs input features in whole 64-blocks); a
    layer that does not (``tiny``'s 688-wide MLP) would crash.
    Those layers use bitsandbytes' generic dequantize + matmul path instead. Nothing changes on CUDA.
    """
    skipped = [
        name
        for name, module in model.named_modules()
        if getattr(module, "support_avx512bf16_for_cpu", False)
        and (int(getattr(module, "out_features", 32)) % 32 or int(getattr(module, "in_features", 64)) % 64)
    ]
    for name in skipped:
        model.get_submodule(name).support_avx512bf16_for_cpu = False
    if not skipped:
        return None
    return (
        f"{len(skipped)} 4-bit layers whose features do not divide by 32 (out) / 64 (in) use bitsandbytes' generic "
        "CPU path (its packed AVX512-bf16 kernel fails on them)"
    )


def weight_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers as stored.

    bitsandbytes packs 4-bit weights two per byte; its quantization constants are not parameters and not counted.
    """
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def release_memory() -> None:
    """Collect garbage and return the CUDA allocator's cache (after the caller dropped a model)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
