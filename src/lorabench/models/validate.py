"""Sizes in a model's ``config.json`` checked before anything is built from it.

A config from a file decides how many modules and how large a tensor lorabench asks transformers (and the meta-device
simulation) to build: a billion layers hangs, a negative width or a layer count written as a float ends in a
torch / transformers traceback. Every size field lorabench knows is checked here to be a positive integer within
:data:`SIZE_BOUNDS` (generous: about 10x the largest published models), naming the file and the field. Nested
configs of multimodal models (``text_config``, ...) are checked the same way. ``null`` is accepted (transformers
then uses its default), and so is a list of per-layer sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lorabench.errors import ModelError

__all__ = ["NESTED_CONFIGS", "SIZE_BOUNDS", "check_model_config"]

_LAYERS = 1_024
_WIDTH = 1 << 20  # 1,048,576
_HEADS = 16_384
_VOCAB = 1 << 24  # 16,777,216
_POSITIONS = 1 << 26  # 67,108,864 tokens of context
_EXPERTS = 16_384

# field -> (smallest, largest) allowed value
SIZE_BOUNDS: dict[str, tuple[int, int]] = {
    "num_hidden_layers": (1, _LAYERS),
    "n_layer": (1, _LAYERS),
    "num_layers": (1, _LAYERS),
    "hidden_size": (1, _WIDTH),
    "n_embd": (1, _WIDTH),
    "d_model": (1, _WIDTH),
    "intermediate_size": (1, _WIDTH),
    "n_inner": (1, _WIDTH),
    "ffn_dim": (1, _WIDTH),
    "moe_intermediate_size": (1, _WIDTH),
    "shared_expert_intermediate_size": (1, _WIDTH),
    "num_attention_heads": (1, _HEADS),
    "n_head": (1, _HEADS),
    "num_key_value_heads": (1, _HEADS),
    "head_dim": (1, _HEADS),
    "vocab_size": (1, _VOCAB),
    "max_position_embeddings": (1, _POSITIONS),
    "n_positions": (1, _POSITIONS),
    "num_local_experts": (1, _EXPERTS),
    "num_experts": (1, _EXPERTS),
    "n_routed_experts": (1, _EXPERTS),
    "n_shared_experts": (0, _EXPERTS),
    "num_experts_per_tok": (1, _EXPERTS),
}
NESTED_CONFIGS = ("text_config", "language_config", "llm_config")


def _problem(where: str, value: Any, low: int, high: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, list) and 0 < len(value) <= _LAYERS:  # per-layer sizes (Gemma 3n's intermediate_size)
        return next((p for i, v in enumerate(value) if (p := _problem(f"{where}[{i}]", v, low, high))), None)
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{where}: must be an integer (got {value!r:.40})"
    if not low <= value <= high:
        return f"{where}: must be between {low:,} and {high:,} (got {value:,})"
    return None


def _problems(content: Mapping[str, Any], prefix: str) -> list[str]:
    found = []
    for name, (low, high) in SIZE_BOUNDS.items():
        if name in content:
            problem = _problem(f"{prefix}{name}", content[name], low, high)
            if problem:
                found.append(problem)
    heads, kv = content.get("num_attention_heads"), content.get("num_key_value_heads")
    if not found and isinstance(heads, int) and isinstance(kv, int) and heads % kv:
        found.append(f"{prefix}num_key_value_heads: must divide num_attention_heads ({heads}; got {kv})")
    experts = next((content[k] for k in ("num_local_experts", "num_experts", "n_routed_experts") if k in content), None)
    per_token = content.get("num_experts_per_tok")
    if not found and isinstance(experts, int) and isinstance(per_token, int) and per_token > experts:
        found.append(f"{prefix}num_experts_per_tok: must be at most the {experts} experts (got {per_token})")
    for nested in NESTED_CONFIGS:
        inner = content.get(nested)
        if isinstance(inner, Mapping):
            found += _problems(inner, f"{prefix}{nested}.")
        elif inner is not None:
            found.append(f"{prefix}{nested}: must be a mapping")
    return found


def check_model_config(content: Mapping[str, Any], source: str) -> None:
    """Check the size fields of a parsed ``config.json``.

    Args:
        content: The parsed file.
        source: The file, for the message.

    Raises:
        ModelError: Every size field that is not a positive integer within :data:`SIZE_BOUNDS`, in one line.
    """
    found = _problems(content, "")
    if found:
        raise ModelError(f"{source}: " + "; ".join(found))
