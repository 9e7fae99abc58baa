"""One timed greedy generation: a visible prefill + decode loop over the KV cache.

The loop is manual rather than ``model.generate`` so the prefill/decode split is exact: one forward over the whole
prompt fills the KV cache and yields the first token (time to first token), then each further token is one forward
of a single position per request (time per output token). Decoding is greedy (argmax) and ignores EOS, so every
request produces exactly ``max_new_tokens`` tokens and cells compare. Only the last position's logits are computed
(``logits_to_keep=1``), as ``generate`` does.

On CUDA the marks are ``torch.cuda.Event(enable_timing=True)`` recorded on the current stream, after a
``torch.cuda.synchronize()`` before the start, and read after another synchronize at the end: the loop never waits
for the GPU in between. On CPU the marks are ``time.perf_counter()`` (monotonic); CPU work is done when a call
returns.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "CPU_CLOCK",
    "CUDA_CLOCK",
    "LOOP",
    "GenerationTiming",
    "cache_argument",
    "clock_description",
    "timed_generate",
]

LOOP = (
    "manual greedy loop: one prefill forward over the prompt with a KV cache (logits_to_keep=1) gives the first "
    "token; then max_new_tokens-1 decode forwards of one token per request reuse the cache; EOS ignored"
)
CPU_CLOCK = "time.perf_counter (monotonic) marks at start, after the first token and at the end"
CUDA_CLOCK = (
    "torch.cuda.Event(enable_timing=True) recorded at start, after the first token and at the end on the current "
    "stream; torch.cuda.synchronize() before the start and before reading elapsed_time"
)


def clock_description(device: torch.device) -> str:
    """The clock used on ``device`` (for the record)."""
    return CUDA_CLOCK if device.type == "cuda" else CPU_CLOCK


@dataclass(frozen=True)
class GenerationTiming:
    """Times of one batched generation.

    Attributes:
        ttft_s: Prefill forward plus first-token selection (time to first token of every request in the batch).
        decode_s: The ``max_new_tokens - 1`` decode steps.
        e2e_s: Start to last token (``ttft_s + decode_s``).
        decode_steps: ``max_new_tokens - 1``.
        output_tokens: Tokens generated over the batch (batch x max_new_tokens).
        tokens: The generated ids, ``(batch, max_new_tokens)``, on CPU.
    """

    ttft_s: float
    decode_s: float
    e2e_s: float
    decode_steps: int
    output_tokens: int
    tokens: torch.Tensor

    @property
    def time_per_output_token_s(self) -> float | None:
        """Mean decode step time (None with a single new token: there is no decode step)."""
        return self.decode_s / self.decode_steps if self.decode_steps else None


class _CpuMarks:
    def __init__(self) -> None:
        self._t: list[float] = []

    def mark(self) -> None:
        self._t.append(time.perf_counter())

    def seconds(self) -> list[float]:
        return [b - a for a, b in zip(self._t, self._t[1:], strict=False)]


class _CudaMarks:
    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._events: list[Any] = []
        torch.cuda.synchronize(device)

    def mark(self) -> None:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        self._events.append(event)

    def seconds(self) -> list[float]:
        torch.cuda.synchronize(self._device)
        return [a.elapsed_time(b) / 1000.0 for a, b in zip(self._events, self._events[1:], strict=False)]


def cache_argument(model: Any) -> str:
    """The name of the KV-cache argument and output: ``cache`` (transformers >= 5.2x) or ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def timed_generate(
    model: Any,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    forward_kwargs: Mapping[str, Any] | None = None,
) -> GenerationTiming:
    """Generate exactly ``max_new_tokens`` tokens per request, greedily, timing prefill and decode.

    Args:
        model: A causal LM (transformers model or PEFT model) in eval mode.
        input_ids: ``(batch, prompt_len)`` ids on the model's device; no padding.
        max_new_tokens: Tokens to generate per request (>= 1).
        forward_kwargs: Extra arguments to every forward (e.g. PEFT's ``adapter_names`` for mixed batches).

    Returns:
        The timing.
    """
    extra = dict(forward_kwargs or {})
    key = cache_argument(model)
    device = input_ids.device
    marks: _CpuMarks | _CudaMarks = _CudaMarks(device) if device.type == "cuda" else _CpuMarks()
    generated: list[torch.Tensor] = []
    with torch.inference_mode():
        marks.mark()
        out = model(input_ids=input_ids, use_cache=True, logits_to_keep=1, **extra)
        token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        generated.append(token)
        marks.mark()
        cache = out[key]
        for _ in range(max_new_tokens - 1):
            out = model(input_ids=token, use_cache=True, **{key: cache}, **extra)
            cache = out[key]
            token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
            generated.append(token)
        marks.mark()
    ttft, decode = marks.seconds()
    tokens = torch.cat(generated, dim=1).cpu()
    return GenerationTiming(
        ttft_s=ttft,
        decode_s=decode,
        e2e_s=ttft + decode,
        decode_steps=max_new_tokens - 1,
        output_tokens=int(tokens.numel()),
        tokens=tokens,
    )
