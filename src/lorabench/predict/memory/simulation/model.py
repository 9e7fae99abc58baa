"""Build the model a simulated step runs: the real HF architecture and PEFT adapter, on the meta device.

The base is built on the meta device from its config (no memory), quantized linears are swapped for the
bitsandbytes substitutes of :mod:`.sim_bnb` by transformers' own rule for what stays 16-bit, and the training
recipe (:mod:`lorabench.recipe`: k-bit preparation, checkpointing, PEFT) is applied -- with ``meta`` as the default
device, so the adapter is created there too. Every parameter and buffer has its real shape and dtype, none
has data.

Attention masks: for SDPA attention transformers decides whether a batch needs a 4-D mask by reading the
2-D mask's values, which meta tensors do not have. For models that use SDPA the simulation therefore
registers two attention implementations that are transformers' own SDPA attention with the mask decision
made up front: ``padded`` builds the 4-D mask as
transformers does for a batch with padding (:func:`transformers.masking_utils.sdpa_mask` without the
``is_causal`` shortcut); ``unpadded`` passes no mask (``is_causal``), as transformers does for an all-ones mask.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lorabench.methods import check_targets
from lorabench.models import ResolvedModel, build_meta_model
from lorabench.models.build import without_bitsandbytes
from lorabench.models.load import training_dtype
from lorabench.predict.memory.params import _is_quantized, modules_kept_unquantized
from lorabench.predict.memory.simulation.bnb import Target, quant_constant_tensors, sim_linear_4bit, sim_linear_8bit
from lorabench.recipe import prepare_for_training
from lorabench.spec import RunSpec

__all__ = ["PADDED_ATTENTION", "UNPADDED_ATTENTION", "SimModel", "build_sim_model"]

PADDED_ATTENTION = "lorabench_sdpa_padded"
UNPADDED_ATTENTION = "lorabench_sdpa_unpadded"


@dataclass
class SimModel:
    """The PEFT model on meta tensors and the roles of its static tensors."""

    model: nn.Module
    weights: list[torch.Tensor] = field(default_factory=list)
    quant_constants: list[torch.Tensor] = field(default_factory=list)
    adapter: list[nn.Parameter] = field(default_factory=list)
    quantized_layers: int = 0
    notes: tuple[str, ...] = ()

    def refresh_roles(self) -> None:
        """Re-read parameters and buffers (a forward may replace a parameter's storage, e.g. a bias cast)."""
        constants = {id(t) for module in self.model.modules() for t in quant_constant_tensors(module)}
        weights: list[torch.Tensor] = []
        adapter: list[nn.Parameter] = []
        quant: list[torch.Tensor] = []
        for param in self.model.parameters():
            if param.requires_grad:
                adapter.append(param)
            else:
                weights.append(param)
        for buffer in self.model.buffers():
            (quant if id(buffer) in constants else weights).append(buffer)
        self.weights, self.adapter, self.quant_constants = weights, adapter, quant


def _quantize_linears(model: nn.Module, bits: int, target: Target) -> int:
    """Swap every linear bitsandbytes would quantize for its substitute; returns how many."""
    skip = modules_kept_unquantized(model)
    make = sim_linear_4bit if bits == 4 else sim_linear_8bit
    swaps = [
        (name, module)
        for name, module in model.named_modules()
        if type(module) is nn.Linear and _is_quantized(name, skip)
    ]
    for name, module in swaps:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, make(module, target))
    flag = "is_loaded_in_4bit" if bits == 4 else "is_loaded_in_8bit"
    setattr(model, flag, True)  # what transformers' bitsandbytes quantizer sets; PEFT reads it
    return len(swaps)


def _no_mask(*args: Any, **kwargs: Any) -> None:
    return None


def _padded_mask(*args: Any, **kwargs: Any) -> Any:
    from transformers.masking_utils import sdpa_mask

    kwargs["allow_is_causal_skip"] = False  # the mask has padding: transformers keeps it
    return sdpa_mask(*args, **kwargs)


def _use_attention(model: nn.Module, padded: bool) -> None:
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return  # eager attention always builds the 4-D mask, reading no values
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface

    name = PADDED_ATTENTION if padded else UNPADDED_ATTENTION
    AttentionInterface.register(name, sdpa_attention_forward)
    AttentionMaskInterface.register(name, _padded_mask if padded else _no_mask)
    model.set_attn_implementation(name)  # type: ignore[operator]


FLASH_NOTE = (
    "attention flash_attention_2: simulated as SDPA without a mask (CUDA picks the flash kernel; no s x s matrix)"
)
FUSED_CE_NOTE = (
    "cross_entropy fused: simulated as a chunked linear cross-entropy (Liger's chunk size), each chunk's fp32 "
    "logits recomputed in backward; never the full logits"
)


class _HiddenHead(nn.Module):
    """Stands in for ``lm_head``: passes the hidden states on, so the (chunked) loss applies the real head."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden


def _chunk_loss(head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    return nn.functional.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")


def _chunked_cross_entropy(head: nn.Module, vocab: int) -> Any:
    """A fused linear cross-entropy: the head and the loss in token chunks, no full logits kept or built."""
    from torch.utils.checkpoint import checkpoint

    def loss(logits: torch.Tensor, labels: torch.Tensor, vocab_size: int, **kwargs: Any) -> torch.Tensor:
        hidden = logits[..., :-1, :].reshape(-1, logits.shape[-1])  # ``logits`` are the hidden states here
        targets = labels[..., 1:].reshape(-1)
        tokens, width = hidden.shape
        # Liger's FusedLinearCrossEntropy: chunk = next power of 2 of tokens / ceil(vocab / hidden)
        chunk = 1 << max(0, math.ceil(math.log2(max(1, math.ceil(tokens / math.ceil(vocab / width))))))
        total: torch.Tensor | None = None
        for start in range(0, tokens, chunk):
            part = checkpoint(
                _chunk_loss, head, hidden[start : start + chunk], targets[start : start + chunk], use_reentrant=False
            )
            total = part if total is None else total + part
        assert total is not None
        return total / max(tokens, 1)

    return loss


def _fuse_cross_entropy(model: nn.Module) -> None:
    """Replace the causal LM's head + loss by :func:`_chunked_cross_entropy` (Liger / cut-cross-entropy)."""
    get_base = getattr(model, "get_base_model", None)
    base: Any = get_base() if callable(get_base) else model
    head = base.get_output_embeddings()
    for name, module in list(base.named_children()):
        if module is head:
            setattr(base, name, _HiddenHead(head))
            base.loss_function = _chunked_cross_entropy(head, int(base.config.vocab_size))
            return


def build_sim_model(spec: RunSpec, resolved: ResolvedModel, target: Target, padded: bool) -> SimModel:
    """Build ``spec``'s model with its adapter on the meta device.

    Args:
        spec: The run spec.
        resolved: Its resolved model.
        target: The device the simulation predicts for (chooses bitsandbytes' code path).
        padded: Batches have padding (transformers builds a 4-D attention mask).

    Returns:
        The model (in training mode) and its static tensors by role.

    Raises:
        ModelError: A target module the architecture does not have.
    """
    base = build_meta_model(resolved.config, training_dtype(spec.bits, target).dtype)  # as the runner loads it
    check_targets(spec, base, resolved.display_name)
    notes: list[str] = []
    if spec.attention == "eager":
        base.set_attn_implementation("eager")
    elif spec.attention == "flash_attention_2":
        padded = False  # flash attention takes no mask (transformers unpads the batch instead)
        notes.append(FLASH_NOTE)
    _use_attention(base, padded)
    quantized = _quantize_linears(base, spec.bits, target) if spec.bits < 16 else 0
    unquantized = without_bitsandbytes() if spec.bits == 16 else contextlib.nullcontext()
    with torch.device("meta"), unquantized:
        model = prepare_for_training(base, spec)
    if spec.cross_entropy == "fused":
        _fuse_cross_entropy(model)
        notes.append(FUSED_CE_NOTE)
    model.train()
    sim = SimModel(model=model, quantized_layers=quantized, notes=tuple(notes))
    sim.refresh_roles()
    return sim
