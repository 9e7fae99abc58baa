"""Build a Hugging Face causal LM from its config: on the meta device for accounting, or for real.

Building on ``meta`` allocates no memory, so an 8B or 70B model's module graph is available
in well under a second on a laptop.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from lorabench.errors import ModelError

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

__all__ = ["build_meta_model", "quiet_hf", "without_bitsandbytes"]


@contextlib.contextmanager
def quiet_hf() -> Iterator[None]:
    """Silence transformers/PEFT deprecation chatter that would otherwise reach the user's terminal."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _clear_bnb_checks() -> None:
    """Forget PEFT's and transformers' cached "is bitsandbytes installed" answers (they are re-checked on next use)."""
    for module_name, names in (
        ("peft.import_utils", ("is_bnb_available", "is_bnb_4bit_available")),
        ("transformers.utils.import_utils", ("is_bitsandbytes_available",)),
    ):
        module = sys.modules.get(module_name)
        for name in names:
            clear = getattr(getattr(module, name, None), "cache_clear", None)
            if callable(clear):
                clear()


@contextlib.contextmanager
def without_bitsandbytes() -> Iterator[None]:
    """Keep bitsandbytes unimported while an unquantized (16-bit or meta) model gets its PEFT adapter.

    PEFT imports bitsandbytes eagerly (``peft.helpers``) and tries its 8/4-bit dispatchers on every adapted
    layer; importing it costs about 1.5 s on two cores (it pulls ``torch._inductor``). Its dispatchers only match
    bitsandbytes layers, which an unquantized model has none of, so the adapter PEFT builds is the same. Inside this
    block ``import bitsandbytes`` fails as if it were not installed; on exit the block is undone and PEFT's and
    transformers' cached availability checks are cleared, so a later quantized load in the same process imports it
    normally. Does nothing when bitsandbytes is already imported.
    """
    if "bitsandbytes" in sys.modules:
        yield
        return
    sys.modules["bitsandbytes"] = None  # type: ignore[assignment]  # Python's "not importable" marker
    _clear_bnb_checks()
    try:
        yield
    finally:
        if "bitsandbytes" in sys.modules and sys.modules["bitsandbytes"] is None:
            del sys.modules["bitsandbytes"]
        _clear_bnb_checks()


def build_meta_model(config: PretrainedConfig, dtype: torch.dtype = torch.bfloat16) -> PreTrainedModel:
    """Instantiate the causal LM for ``config`` on the meta device (shapes and dtypes, no storage).

    Args:
        config: A transformers config.
        dtype: Parameter dtype of the base model.

    Returns:
        The model, every parameter and buffer on ``meta``.

    Raises:
        ModelError: transformers has no causal-LM class for this config.
    """
    from transformers import AutoModelForCausalLM

    try:
        with quiet_hf(), torch.device("meta"):
            model: PreTrainedModel = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=False)
            return model
    except ValueError as exc:
        raise ModelError(f"transformers has no causal-LM model for {type(config).__name__}: {exc}") from None
