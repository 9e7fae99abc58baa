"""Exact parameter and model-size accounting from the real module graph.

The Hugging Face model is built on the meta device from its config and PEFT is applied to
it, so every count comes from the modules transformers and PEFT really create (not from a
hand formula). Sizes at 8 and 4 bits follow bitsandbytes' storage (:mod:`.storage`) and
transformers' own rule for which modules stay unquantized (the output embedding / lm_head,
tied weights, a model's ``_keep_in_fp32_modules``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lorabench.models import ResolvedModel, resolve_model
from lorabench.predict.memory.storage import linear_storage
from lorabench.spec import RunSpec

if TYPE_CHECKING:
    import torch

__all__ = [
    "BITS",
    "MODULE_GROUPS",
    "Accounting",
    "Component",
    "ModuleGroup",
    "account",
    "module_group",
    "modules_kept_unquantized",
]

MODULE_GROUPS: tuple[str, ...] = ("attention", "dense mlp", "experts", "shared experts", "router")
_ROUTER_LEAVES = ("gate", "router", "shared_expert_gate")

BITS: tuple[int, int, int] = (16, 8, 4)


@dataclass
class Component:
    """Parameters of one part of the base model and their bytes at each bit width."""

    name: str
    params: int = 0
    quantized_params: int = 0
    bytes_by_bits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(BITS, 0))
    constant_bytes_by_bits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(BITS, 0))


@dataclass
class ModuleGroup:
    """One group of a decoder's modules (attention, dense mlp, experts, shared experts, router).

    Attributes:
        name: The group.
        units: Weights LoRA could adapt: linear layers, and fused expert / router parameters.
        adapted: Of those, how many PEFT adapted for this spec.
        params: Base parameters of the group.
        quantized_params: Of those, what bitsandbytes quantizes at 8/4 bits (weights of exact ``nn.Linear``
            modules that transformers does not keep in 16-bit).
        unquantized_kinds: Class names of the group's weights bitsandbytes leaves 16-bit (e.g. ``MixtralExperts``
            for fused 3-D experts, ``FalconLinear`` for a Linear subclass).
    """

    name: str
    units: int = 0
    adapted: int = 0
    params: int = 0
    quantized_params: int = 0
    unquantized_kinds: set[str] = field(default_factory=set)

    @property
    def adapted_state(self) -> str:
        """``all``, ``none`` or ``partial``."""
        if self.adapted == 0:
            return "none"
        return "all" if self.adapted >= self.units else "partial"

    def quant_verdict(self) -> str:
        """What bitsandbytes really does with this group's weights at 8/4 bits, in one phrase."""
        if self.params == 0:
            return "no parameters"
        if self.quantized_params >= self.params:
            return "quantized (exact nn.Linear)"
        kinds = ", ".join(sorted(self.unquantized_kinds)) or "non-Linear parameters"  # e.g. MixtralExperts
        share = 100.0 * self.quantized_params / self.params
        lead = "not quantized" if self.quantized_params == 0 else f"{share:.0f}% quantized"
        return (
            f"{lead}: bitsandbytes quantizes exact nn.Linear only ({kinds} stay 16-bit, upcast to fp32 by "
            "k-bit preparation)"
        )


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
    modules_to_save_params: int = 0
    module_groups: tuple[ModuleGroup, ...] = ()
    dropout: float | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def quantized_share(self) -> float:
        """Fraction of the base parameters bitsandbytes quantizes at 8/4 bits."""
        quantized = sum(c.quantized_params for c in self.components)
        return quantized / self.base_params if self.base_params else 0.0

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
    import torch

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
    import torch

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


def module_group(path: str, module: torch.nn.Module | None = None) -> str | None:
    """The module group of a decoder weight's path, or None outside the decoder layers' groups.

    ``shared_expert(s)`` -> shared experts; ``experts`` -> experts; a ``gate`` / ``router`` leaf or a
    ``*Router`` module -> router; a path through ``attn`` / ``attention`` -> attention; ``mlp`` /
    ``feed_forward`` / ``ffn`` -> dense mlp.
    """
    parts = [p for p in path.split(".") if p != "base_layer"]
    lowered = [p.lower() for p in parts]
    if any(p.startswith("shared_expert") and p != "shared_expert_gate" for p in lowered):
        return "shared experts"
    if "experts" in lowered:
        return "experts"
    if (lowered and lowered[-1] in _ROUTER_LEAVES) or (module is not None and "Router" in type(module).__name__):
        return "router"
    joined = ".".join(lowered)
    if "attn" in joined or "attention" in joined:
        return "attention"
    if "mlp" in joined or "feed_forward" in joined or "ffn" in joined:
        return "dense mlp"
    return None


def _scan_groups(base: torch.nn.Module) -> tuple[dict[str, ModuleGroup], dict[str, str]]:
    """Adaptable units, parameters and quantized parameters of each module group of the bare base model."""
    import torch

    get_out = getattr(base, "get_output_embeddings", None)
    output_embedding = get_out() if callable(get_out) else None
    skip = modules_kept_unquantized(base)
    groups = {name: ModuleGroup(name) for name in MODULE_GROUPS}
    units: dict[str, str] = {}  # adaptable weight -> its group
    for name, module in base.named_modules():
        if module is output_embedding:
            continue
        group = module_group(name, module)
        if group is None:
            continue
        linear = isinstance(module, torch.nn.Linear)
        for param_name, param in module.named_parameters(recurse=False):
            if not linear and param.dim() < 2:  # norms and their scales are not part of a group's weights
                continue
            groups[group].params += param.numel()
            if type(module) is torch.nn.Linear and _is_quantized(name, skip):
                if param_name == "weight":
                    groups[group].quantized_params += param.numel()
                else:
                    groups[group].params -= param.numel()  # a quantized linear's bias is not a weight
            else:
                groups[group].unquantized_kinds.add(type(module).__name__)
            if (linear and param_name == "weight") or not linear:
                units[name if linear else f"{name}.{param_name}"] = group
                groups[group].units += 1
    return groups, units


def _count_adapted(
    peft_model: torch.nn.Module, groups: dict[str, ModuleGroup], units: dict[str, str]
) -> list[ModuleGroup]:
    """Count the units PEFT adapted per group (linear layers and ``ParamWrapper``-wrapped parameters)."""
    from peft.tuners.lora import LoraLayer

    adapted: set[str] = set()
    for name, module in peft_model.named_modules():
        if not isinstance(module, LoraLayer) or not module.r:
            continue
        path = ".".join(p for p in name.split(".") if p != "base_layer").removeprefix("base_model.model.")
        parameter = getattr(module, "parameter_name", None)
        key = f"{path}.{parameter}" if parameter else path
        if key in units and key not in adapted:
            adapted.add(key)
            groups[units[key]].adapted += 1
    return [g for g in groups.values() if g.units or g.params]


def _group_warnings(spec: RunSpec, groups: list[ModuleGroup]) -> list[str]:
    adapted_any = {g.name for g in groups if g.adapted}
    mlp_like = ("dense mlp", "experts", "shared experts")
    found: list[str] = []
    for group in groups:
        if group.name not in mlp_like or not group.units:
            continue
        if group.adapted_state == "none" and (spec.target_list is None or adapted_any & set(mlp_like)):
            found.append(
                f"{group.name}: no adapter on its {group.units} weights (targets {spec.targets!r} did not reach "
                "them with the installed transformers/PEFT)"
            )
        elif group.adapted_state == "partial" and spec.layers_to_transform is None and not spec.rank_pattern:
            found.append(f"{group.name}: only {group.adapted} of its {group.units} weights have an adapter")
    router = next((g for g in groups if g.name == "router"), None)
    if router is not None and router.adapted:
        found.append(
            f"router: {router.adapted} router weights have an adapter (PEFT maps {spec.targets!r} onto them); "
            "list explicit targets to leave the routers frozen"
        )
    return found


def account(spec: RunSpec, model: ResolvedModel | None = None) -> Accounting:
    """Count parameters and bytes for a spec from its model built on meta with PEFT applied.

    The module graph is read once per (config, adapter) and cached (:mod:`lorabench.models.facts`).

    Args:
        spec: The run spec (model, method, rank, targets are what matter here).
        model: An already resolved model, to skip resolving ``spec.model`` again.

    Returns:
        The accounting: base parameters and bytes by component and bit width; trainable
        adapter parameters (LoRA A/B, DoRA magnitudes) and their bytes.

    Raises:
        ModelError: Unknown model, or a target module the architecture does not have.
    """
    from lorabench.models.facts import model_facts

    resolved = model or resolve_model(spec.model)
    facts = model_facts(spec, resolved)  # one meta build per (config, adapter), shared with formula and FLOPs
    groups = [
        ModuleGroup(
            name=str(g["name"]),
            units=int(g["units"]),
            adapted=int(g["adapted"]),
            params=int(g["params"]),
            quantized_params=int(g["quantized_params"]),
            unquantized_kinds=set(g["unquantized_kinds"]),
        )
        for g in facts.module_groups
    ]
    # the cache key holds "dropout > 0", so a build-time dropout of 0 under a spec dropout > 0 means PEFT forced it
    dropout = 0.0 if spec.dropout > 0 and facts.dropout == 0.0 else spec.dropout
    return Accounting(
        model=resolved,
        base_params=facts.base_params,
        components=tuple(
            Component(c.name, c.params, c.quantized_params, dict(c.bytes_by_bits), dict(c.constant_bytes_by_bits))
            for c in facts.components
        ),
        trainable_params=facts.lora_params + facts.dora_magnitude_params + facts.modules_to_save_params,
        lora_params=facts.lora_params,
        dora_magnitude_params=facts.dora_magnitude_params,
        adapter_bytes=facts.adapter_bytes,
        adapter_dtype=facts.adapter_dtype,
        modules_to_save_params=facts.modules_to_save_params,
        module_groups=tuple(groups),
        dropout=dropout,
        notes=tuple(facts.notes),
        warnings=tuple(_group_warnings(spec, groups)),
    )
