"""Exact parameter and model-size accounting from the real module graph.

The Hugging Face model is built on the meta device from its config and PEFT is applied to
it, so every count comes from the modules transformers and PEFT really create (not from a
hand formula). Sizes at 8 and 4 bits follow bitsandbytes' storage (:mod:`.storage`) and
transformers' own rule for which modules stay unquantized (the output embedding / lm_head,
tied weights, a model's ``_keep_in_fp32_modules``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lorabench.methods import check_targets, lora_config
from lorabench.models import ResolvedModel, build_meta_model, resolve_model
from lorabench.models.build import quiet_hf
from lorabench.predict.memory.storage import linear_storage
from lorabench.spec import RunSpec

__all__ = ["BITS", "Accounting", "Component", "account", "modules_kept_unquantized"]

BITS: tuple[int, int, int] = (16, 8, 4)


@dataclass
class Component:
    """Parameters of one part of the base model and their bytes at each bit width."""

    name: str
    params: int = 0
    quantized_params: int = 0
    bytes_by_bits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(BITS, 0))
    constant_bytes_by_bits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(BITS, 0))


@dataclass(frozen=True)
class Accounting:
    """Parameter counts and weight bytes of one spec's model, base and adapter."""

    model: ResolvedModel
    base_params: int
    components: tuple[Component, ...]
    trainable_params: int
    lora_params: int
    dora_magnitude_params: int
    adapter_bytes: int
    adapter_dtype: str

    def base_bytes(self, bits: int) -> int:
        """Frozen base model bytes as loaded at ``bits`` (quantization constants included)."""
        return sum(c.bytes_by_bits[bits] for c in self.components)

    def constant_bytes(self, bits: int) -> int:
        """Quantization constants alone (absmax, scales, code books) at ``bits``."""
        return sum(c.constant_bytes_by_bits[bits] for c in self.components)

    def weights_bytes(self, bits: int) -> int:
        """Base at ``bits`` plus the adapter in its training dtype."""
        return self.base_bytes(bits) + self.adapter_bytes

    def nominal_base_bytes(self, bits: int) -> int:
        """Parameters x bits / 8: the back-of-envelope size (ignores unquantized layers and constants)."""
        return self.base_params * bits // 8


def modules_kept_unquantized(model: torch.nn.Module) -> list[str]:
    """Module names transformers' bitsandbytes quantizer leaves in 16-bit, by transformers' own rule."""
    try:
        from transformers.quantizers.base import get_keys_to_not_convert
    except ImportError:  # transformers < 5
        from transformers.integrations.bitsandbytes import (  # type: ignore[attr-defined, no-redef]
            get_keys_to_not_convert,
        )
    skip = set(get_keys_to_not_convert(model))
    skip.update(getattr(model, "_keep_in_fp32_modules", None) or [])
    return sorted(skip)


def _is_quantized(name: str, skip: list[str]) -> bool:
    try:
        from transformers.quantizers.quantizers_utils import should_convert_module
    except ImportError:  # transformers < 5: a plain component match
        return not any(name == key or name.endswith("." + key) or f".{key}." in f".{name}." for key in skip)
    return bool(should_convert_module(name, skip))


def _component_name(module_name: str, module: torch.nn.Module, output_embedding: torch.nn.Module | None) -> str:
    if module is output_embedding:
        return "lm_head"
    if isinstance(module, torch.nn.Embedding):
        return "embeddings"
    lowered = module_name.lower()
    if "norm" in lowered:
        return "norms"
    if "attn" in lowered or "attention" in lowered:
        return "attention"
    if "mlp" in lowered or "feed_forward" in lowered or "ffn" in lowered:
        return "mlp"
    return "other"


def _base_components(model: torch.nn.Module) -> tuple[int, list[Component]]:
    get_out = getattr(model, "get_output_embeddings", None)
    output_embedding = get_out() if callable(get_out) else None
    skip = modules_kept_unquantized(model)
    comps: dict[str, Component] = {}
    seen: set[int] = set()
    total = 0
    for module_name, module in model.named_modules():
        comp_name = _component_name(module_name, module, output_embedding)
        for param_name, param in module.named_parameters(recurse=False):
            if id(param) in seen:  # tied weights count once, as transformers stores them once
                continue
            seen.add(id(param))
            comp = comps.setdefault(comp_name, Component(comp_name))
            numel, elem = param.numel(), param.element_size()
            comp.params += numel
            total += numel
            quantizable = (
                type(module) is torch.nn.Linear and param_name == "weight" and _is_quantized(module_name, skip)
            )
            for bits in BITS:
                if quantizable and bits < 16:
                    storage = linear_storage(param.shape[0], param.shape[1], bits)
                    comp.bytes_by_bits[bits] += storage.total_bytes
                    comp.constant_bytes_by_bits[bits] += storage.constant_bytes
                else:
                    comp.bytes_by_bits[bits] += numel * elem
            if quantizable:
                comp.quantized_params += numel
    buffers = Component("buffers")
    for _, buf in model.named_buffers():
        if id(buf) not in seen:
            seen.add(id(buf))
            for bits in BITS:
                buffers.bytes_by_bits[bits] += buf.numel() * buf.element_size()
    order = ["embeddings", "attention", "mlp", "norms", "other", "lm_head"]
    ordered = [comps[n] for n in order if n in comps] + [c for n, c in comps.items() if n not in order]
    if buffers.bytes_by_bits[16]:
        ordered.append(buffers)
    return total, ordered


def account(spec: RunSpec, model: ResolvedModel | None = None) -> Accounting:
    """Count parameters and bytes for a spec by building its model on meta and applying PEFT.

    Args:
        spec: The run spec (model, method, rank, targets are what matter here).
        model: An already resolved model, to skip resolving ``spec.model`` again.

    Returns:
        The accounting: base parameters and bytes by component and bit width; trainable
        adapter parameters (LoRA A/B, DoRA magnitudes) and their bytes.

    Raises:
        ModelError: Unknown model, or a target module the architecture does not have.
    """
    from peft import get_peft_model

    resolved = model or resolve_model(spec.model)
    base = build_meta_model(resolved.config)
    base_params, components = _base_components(base)
    check_targets(spec, base, resolved.display_name)
    with quiet_hf():
        peft_model = get_peft_model(base, lora_config(spec, base))
    lora = dora = adapter_bytes = 0
    dtypes: set[str] = set()
    for name, param in peft_model.named_parameters():
        if not param.requires_grad:
            continue
        adapter_bytes += param.numel() * param.element_size()
        dtypes.add(str(param.dtype).removeprefix("torch."))
        if "lora_magnitude_vector" in name:
            dora += param.numel()
        else:
            lora += param.numel()
    return Accounting(
        model=resolved,
        base_params=base_params,
        components=tuple(components),
        trainable_params=lora + dora,
        lora_params=lora,
        dora_magnitude_params=dora,
        adapter_bytes=adapter_bytes,
        adapter_dtype="/".join(sorted(dtypes)) or "n/a",
    )
