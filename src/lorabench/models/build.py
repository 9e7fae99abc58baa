"""Build a Hugging Face causal LM from its config: on the meta device for accounting, or for real.

Building on ``meta`` allocates no memory, so an 8B or 70B model's module graph is available
in well under a second on a laptop.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from lorabench.errors import ModelError

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

__all__ = ["build_meta_model", "quiet_hf"]


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
