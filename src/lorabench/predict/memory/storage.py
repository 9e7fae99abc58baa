"""Bytes a frozen linear weight occupies as bitsandbytes stores it.

- 16 bit: bf16, 2 bytes per element.
- 8 bit (``Linear8bitLt``, LLM.int8): int8 weight plus one fp32 scale per output row (``SCB``).
- 4 bit (``Linear4bit``, NF4, QLoRA's recipe): two 4-bit codes per byte (uint8 storage), one
  absmax per block of 64 elements; with double quantization those absmax values are
  themselves stored as uint8, with one fp32 absmax per 256 of them, a 256-entry fp32
  code book for that second level, the 16-entry NF4 code book and one fp32 offset.

``tests/predict/test_storage.py`` checks these rules against tensors that bitsandbytes
really allocates when it quantizes a model on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NF4_BLOCKSIZE", "NF4_NESTED_BLOCKSIZE", "LinearStorage", "linear_storage"]

NF4_BLOCKSIZE = 64
NF4_NESTED_BLOCKSIZE = 256
_FP32 = 4


@dataclass(frozen=True)
class LinearStorage:
    """Storage of one frozen linear weight: the (packed) weight and its quantization constants."""

    weight_bytes: int
    constant_bytes: int

    @property
    def total_bytes(self) -> int:
        """Weight plus constants."""
        return self.weight_bytes + self.constant_bytes


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def linear_storage(
    out_features: int, in_features: int, bits: int, unquantized_bytes_per_element: int = 2
) -> LinearStorage:
    """Storage of an ``out_features x in_features`` weight at ``bits``.

    Args:
        out_features: Rows of the weight.
        in_features: Columns of the weight.
        bits: 16, 8 or 4.
        unquantized_bytes_per_element: Element size when not quantized (2 for bf16).

    Returns:
        Weight and constant bytes.

    Raises:
        ValueError: ``bits`` is not 4, 8 or 16.
    """
    numel = out_features * in_features
    if bits == 16:
        return LinearStorage(numel * unquantized_bytes_per_element, 0)
    if bits == 8:
        return LinearStorage(numel, out_features * _FP32)
    if bits == 4:
        blocks = _ceil_div(numel, NF4_BLOCKSIZE)
        nested_blocks = _ceil_div(blocks, NF4_NESTED_BLOCKSIZE)
        constants = blocks + nested_blocks * _FP32 + 256 * _FP32 + 16 * _FP32 + _FP32
        return LinearStorage(_ceil_div(numel, 2), constants)
    raise ValueError(f"bits must be 4, 8 or 16, got {bits}")
