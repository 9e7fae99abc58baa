"""Reading facts from a model's name alone: pre-quantized re-uploads (``unsloth/...-bnb-4bit``, ``-GPTQ``, ...)."""

from __future__ import annotations

import re

__all__ = ["QUANT_SUFFIX", "quantized_upload_bits"]

# Re-upload suffixes of quantized checkpoints (Unsloth, TheBloke, ...): the architecture is the base's.
QUANT_SUFFIX = re.compile(r"(?:-unsloth)?-(?:bnb-4bit|bnb-8bit|4bit|8bit|gptq(?:-int[48])?|awq|fp8|gguf)$")


def quantized_upload_bits(ref: str) -> int | None:
    """4 or 8 when ``ref``'s name ends like a pre-quantized re-upload (``-bnb-4bit``, ``-8bit``, ...), else None."""
    name = ref.strip().rsplit("/", 1)[-1].lower()
    for suffix in ("-instruct", "-it", "-chat"):
        name = name.removesuffix(suffix)
    match = QUANT_SUFFIX.search(name)
    if match is None:
        return None
    return 8 if "8" in match.group(0) else 4
