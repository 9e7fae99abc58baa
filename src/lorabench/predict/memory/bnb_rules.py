"""bitsandbytes' kernel-selection rules that both engines need, without importing torch or bitsandbytes.

The simulation (:mod:`lorabench.predict.memory.simulation.bnb`) and the closed-form time counts
(:mod:`lorabench.predict.time.closed_form`) ask the same question: does ``gemm_4bit`` materialise a dequantized
weight for a call with this many rows, or does it take the fused inference kernel?
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Target", "gemm_4bit_dequantizes"]

Target = Literal["cuda", "cpu"]

# bitsandbytes' CUDA gemm_4bit dispatch: beyond these row counts it always dequantizes + F.linear.
_GEMM4_CUSTOM_MAX_M = 1536
_GEMM4_LARGE_WEIGHT_MAX_M = 512
_GEMM4_SMALL_WEIGHT = 4 * 1024 * 1024


def gemm_4bit_dequantizes(target: Target, rows: int, shape_b: tuple[int, int], blocksize: int) -> bool:
    """Whether bitsandbytes' gemm_4bit materializes a dequantized weight for this call."""
    if target == "cpu":
        return True  # the default implementation: dequantize_4bit + F.linear
    n, k = shape_b
    if rows > _GEMM4_CUSTOM_MAX_M or k % blocksize != 0:
        return True
    if rows <= 4:
        return False
    if n * k >= _GEMM4_SMALL_WEIGHT:
        return rows > _GEMM4_LARGE_WEIGHT_MAX_M
    # small weights: the per-architecture tiers (Hopper/Ampere HBM) keep the fused kernel only at small M
    return rows > (320 if k * 2 < n else 32)
