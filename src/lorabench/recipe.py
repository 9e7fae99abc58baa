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
  (adapters in fp32, PEFT's default).
- Optimizers with weight decay 0: ``torch.optim.AdamW``, bitsandbytes ``AdamW8bit`` or ``PagedAdamW8bit``.
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
        if spec.bits < 16:
            base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=spec.grad_ckpt)
        elif spec.grad_ckpt:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            base.enable_input_require_grads()
        base.config.use_cache = False
        model: nn.Module = get_peft_model(base, lora_config(spec, base))
    return model


def make_optimizer(
    spec: RunSpec, params: Iterable[torch.nn.Parameter], foreach: bool | None = None
) -> torch.optim.Optimizer:
    """The spec's optimizer over ``params`` (learning rate from the spec, no weight decay).

    Args:
        spec: The run spec.
        params: Trainable parameters.
        foreach: ``torch.optim.AdamW``'s ``foreach`` (None: PyTorch's default for the parameters' device).

    Returns:
        The optimizer.
    """
    params = list(params)
    if spec.optimizer == "adamw_torch":
        return torch.optim.AdamW(params, lr=spec.learning_rate, weight_decay=0.0, foreach=foreach)
    from bitsandbytes.optim.adamw import AdamW8bit, PagedAdamW8bit

    optimizer_class = AdamW8bit if spec.optimizer == "adamw_8bit" else PagedAdamW8bit
    optimizer: torch.optim.Optimizer = optimizer_class(params, lr=spec.learning_rate, weight_decay=0.0)
    return optimizer


def optimizer_name(spec: RunSpec) -> str:
    """The class :func:`make_optimizer` builds for ``spec``, as recorded in run records."""
    if spec.optimizer == "adamw_torch":
        return "torch.optim.AdamW"
    if spec.optimizer == "adamw_8bit":
        return "bitsandbytes.optim.AdamW8bit"
    note = "" if torch.cuda.is_available() else " (bitsandbytes falls back to non-paged state on CPU)"
    return "bitsandbytes.optim.PagedAdamW8bit" + note


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
