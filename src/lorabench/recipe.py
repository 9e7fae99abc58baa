"""The training recipe: what ``lorabench run`` measures and what the simulation replays on fake tensors.

Kept in one place (the runner in :mod:`lorabench.measure.runner` and the engine in
:mod:`lorabench.predict.memory.simulation.engine` both call it) so a simulated step and a measured step
differ only in the
tensors they run on:

- 8/4-bit base: PEFT's ``prepare_model_for_kbit_training`` (freezes the base, upcasts every non-quantized
  parameter -- embeddings, lm_head, norms, biases -- to fp32, and with gradient checkpointing enables it with
  input gradients); 16-bit with checkpointing: ``gradient_checkpointing_enable(use_reentrant=False)`` and
  ``enable_input_require_grads()``.
- ``use_cache = False`` (transformers' Trainer default); PEFT ``get_peft_model`` with :func:`lora_config`
  (adapters in fp32, PEFT's default; with ``pure_bf16`` in the base's dtype, and a k-bit base is not upcast).
- Optimizers with weight decay 0: ``torch.optim.AdamW`` (foreach or fused), bitsandbytes ``AdamW8bit``,
  ``PagedAdamW8bit`` or ``PagedAdamW32bit``, torchao ``AdamW4bit``.
- A step: ``model(**batch).loss / grad_accum``, ``backward()`` per micro-batch, then ``step()`` and
  ``zero_grad(set_to_none=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from lorabench.methods import lora_config
from lorabench.models.build import quiet_hf
from lorabench.spec import RunSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["make_optimizer", "optimizer_name", "prepare_for_training", "training_step"]


def prepare_for_training(base: Any, spec: RunSpec) -> nn.Module:
    """Apply the k-bit preparation / gradient checkpointing and wrap the base model with the spec's adapter.

    Args:
        base: A transformers causal LM (real, or built on the meta device).
        spec: The run spec (bits, grad_ckpt, adapter settings).

    Returns:
        The PEFT model.
    """
    from peft import get_peft_model, prepare_model_for_kbit_training

    with quiet_hf():
        if spec.bits < 16 and not spec.pure_bf16:
            base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=spec.grad_ckpt)
        elif spec.grad_ckpt:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            base.enable_input_require_grads()
        base.config.use_cache = False
        # pure_bf16: the adapters in the base's dtype (PEFT's default upcasts them to fp32)
        model: nn.Module = get_peft_model(base, lora_config(spec, base), autocast_adapter_dtype=not spec.pure_bf16)
    if spec.pure_bf16:
        # PEFT leaves new adapters in fp32 beside a quantized (integer) weight and on meta tensors; a pure-bf16
        # trainer casts every trainable tensor to the model's dtype (LLaMA-Factory skips its fp32 cast)
        dtype = base.get_input_embeddings().weight.dtype
        for param in model.parameters():
            if param.requires_grad and param.is_floating_point() and param.dtype != dtype:
                param.data = param.data.to(dtype)
    return model


def make_optimizer(
    spec: RunSpec, params: Iterable[torch.nn.Parameter], foreach: bool | None = None
) -> torch.optim.Optimizer:
    """The spec's optimizer over ``params`` (learning rate from the spec, no weight decay).

    ``adamw_torch`` / ``adamw_torch_fused``: ``torch.optim.AdamW`` (``fused=True`` for the latter);
    ``adamw_8bit`` / ``paged_adamw_8bit`` / ``paged_adamw_32bit``: bitsandbytes ``AdamW8bit`` /
    ``PagedAdamW8bit`` / ``PagedAdamW32bit``; ``adamw_4bit``: torchao's ``AdamW4bit``.

    Args:
        spec: The run spec.
        params: Trainable parameters.
        foreach: ``torch.optim.AdamW``'s ``foreach`` (None: PyTorch's default for the parameters' device).

    Returns:
        The optimizer.

    Raises:
        ConfigError: ``adamw_4bit`` without torchao installed.
    """
    params = list(params)
    lr = spec.learning_rate
    if spec.optimizer == "adamw_torch":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=foreach)
    if spec.optimizer == "adamw_torch_fused":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
    if spec.optimizer == "adamw_4bit":
        try:
            from torchao.optim import AdamW4bit  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            from lorabench.errors import ConfigError

            raise ConfigError("optimizer: adamw_4bit needs torchao (pip install torchao)") from None
        optimizer_4bit: torch.optim.Optimizer = AdamW4bit(params, lr=lr, weight_decay=0.0)
        return optimizer_4bit
    from bitsandbytes.optim.adamw import AdamW8bit, PagedAdamW8bit, PagedAdamW32bit

    classes = {"adamw_8bit": AdamW8bit, "paged_adamw_8bit": PagedAdamW8bit, "paged_adamw_32bit": PagedAdamW32bit}
    optimizer: torch.optim.Optimizer = classes[spec.optimizer](params, lr=lr, weight_decay=0.0)
    return optimizer


_OPTIMIZER_CLASSES = {
    "adamw_torch": "torch.optim.AdamW",
    "adamw_torch_fused": "torch.optim.AdamW(fused=True)",
    "adamw_8bit": "bitsandbytes.optim.AdamW8bit",
    "paged_adamw_8bit": "bitsandbytes.optim.PagedAdamW8bit",
    "paged_adamw_32bit": "bitsandbytes.optim.PagedAdamW32bit",
    "adamw_4bit": "torchao.optim.AdamW4bit",
}


def optimizer_name(spec: RunSpec) -> str:
    """The class :func:`make_optimizer` builds for ``spec``, as recorded in run records."""
    name = _OPTIMIZER_CLASSES[spec.optimizer]
    if spec.optimizer.startswith("paged") and not torch.cuda.is_available():
        name += " (bitsandbytes falls back to non-paged state on CPU)"
    return name


def training_step(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    optimizer: torch.optim.Optimizer,
    grad_accum: int,
    on_phase: Callable[[str], None] | None = None,
) -> None:
    """One optimizer step over ``batches`` (micro-batches), as the runner does it.

    Args:
        model: The PEFT model, in training mode.
        batches: Model inputs per micro-batch (``input_ids``, ``labels``, ``attention_mask``).
        optimizer: The optimizer.
        grad_accum: The loss is divided by this (the spec's gradient accumulation).
        on_phase: Called with ``forward``, ``forward_end``, ``backward``, ``backward_end``, ``optimizer``,
            ``optimizer_end`` as the step moves on (the simulation's hook).
    """
    mark = on_phase or (lambda _: None)
    for batch in batches:
        mark("forward")
        loss = model(**batch).loss / grad_accum
        mark("forward_end")
        mark("backward")
        loss.backward()
        del loss
        mark("backward_end")
    mark("optimizer")
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    mark("optimizer_end")
