"""Map a RunSpec's method and bits to the real PEFT ``LoraConfig`` and bitsandbytes config.

``lora`` / ``qlora`` / ``dora`` / ``rslora`` are all PEFT LoRA adapters: DoRA sets
``use_dora`` (one magnitude per output feature of each adapted layer), rsLoRA sets
``use_rslora`` (scaling alpha/sqrt(r), same parameters as LoRA). ``bits`` chooses the
frozen base's storage: bf16, bitsandbytes LLM.int8, or NF4 with double quantization and
bf16 compute (QLoRA's recipe). PEFT's ``modules_to_save``, ``layers_to_transform``, ``rank_pattern`` and
``alpha_pattern`` pass through. On transformers-5 mixture-of-experts models PEFT adapts fused expert tensors with
``lora.ParamWrapper`` (which refuses dropout and DoRA): the dropout is then 0 and the accounting says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from lorabench.errors import ModelError
from lorabench.spec import ALL_LINEAR, RunSpec

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig

__all__ = [
    "FUSED_EXPERT_DROPOUT_NOTE",
    "check_targets",
    "effective_dropout",
    "fused_expert_targets",
    "linear_leaf_names",
    "lora_config",
    "quantization_config",
]

FUSED_EXPERT_DROPOUT_NOTE = (
    "lora_dropout set to 0: PEFT adapts fused expert tensors with lora.ParamWrapper, which refuses dropout != 0"
)


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


def _peft_config(spec: RunSpec, dropout: float) -> LoraConfig:
    from peft import LoraConfig

    targets: str | list[str] = ALL_LINEAR if spec.target_list is None else list(spec.target_list)
    extra: dict[str, object] = {}
    if spec.modules_to_save:
        extra["modules_to_save"] = list(spec.modules_to_save)
    if spec.layers_to_transform is not None:
        extra["layers_to_transform"] = list(spec.layers_to_transform)
    if spec.rank_pattern:
        extra["rank_pattern"] = dict(spec.rank_pattern)
    if spec.alpha_pattern:
        extra["alpha_pattern"] = dict(spec.alpha_pattern)
    return LoraConfig(
        r=spec.rank,
        lora_alpha=cast(int, spec.alpha),  # annotated int by PEFT, used as alpha / r in floating point
        lora_dropout=dropout,
        target_modules=targets,
        use_dora=spec.method == "dora",
        use_rslora=spec.method == "rslora",
        bias="none",
        task_type="CAUSAL_LM",
        **extra,  # type: ignore[arg-type]
    )


def fused_expert_targets(spec: RunSpec, model: torch.nn.Module) -> list[str]:
    """Fused expert parameters (``experts.gate_up_proj`` ...) PEFT will adapt for ``spec`` on ``model``.

    With transformers 5, mixture-of-experts layers keep all experts in 3-D parameters instead of one
    ``nn.Linear`` per expert; PEFT maps targets such as ``all-linear`` or ``w1``/``gate_proj`` onto those
    parameters (``target_parameters``) and wraps them with ``lora.ParamWrapper``. Empty when PEFT's conversion
    is not available or targets no parameter.
    """
    import copy

    if not any(p.dim() >= 3 for p in model.parameters()):
        return []
    try:
        from peft.utils.transformers_weight_conversion import convert_peft_config_for_transformers
    except ImportError:  # PEFT without transformers-5 conversion: experts are plain linears
        return []
    config = copy.deepcopy(_peft_config(spec, 0.0))
    try:
        convert_peft_config_for_transformers(config, model=model, conversions=None)
    except ValueError as exc:
        raise ModelError(f"targets: PEFT cannot adapt the fused experts of this model ({exc})") from None
    return sorted(config.target_parameters or [])


def lora_config(spec: RunSpec, model: torch.nn.Module | None = None) -> LoraConfig:
    """The PEFT adapter config for a spec (task CAUSAL_LM, no bias), PEFT's knobs passed through.

    ``modules_to_save``, ``layers_to_transform``, ``rank_pattern`` and ``alpha_pattern`` go to PEFT as given.
    When ``model`` is given and PEFT would adapt fused expert tensors (:func:`fused_expert_targets`), the dropout
    is 0 (:data:`FUSED_EXPERT_DROPOUT_NOTE`): PEFT refuses any other value there.
    """
    dropout = spec.dropout
    fused = model is not None and fused_expert_targets(spec, model)
    if fused and spec.method == "dora":
        raise ModelError(
            "method: PEFT cannot put DoRA on fused experts (lora.ParamWrapper refuses use_dora); "
            f"use lora/rslora, or target attention/dense modules only (fused targets: {', '.join(fused)})"
        )
    if dropout > 0 and fused:
        dropout = 0.0
    return _peft_config(spec, dropout)


def effective_dropout(spec: RunSpec, model: torch.nn.Module) -> tuple[float, str | None]:
    """The dropout PEFT really gets for ``spec`` on ``model`` and, when it differs from the spec's, why."""
    if spec.dropout > 0 and fused_expert_targets(spec, model):
        return 0.0, FUSED_EXPERT_DROPOUT_NOTE
    return spec.dropout, None


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
