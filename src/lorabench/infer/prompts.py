"""Prompts at exact token lengths: random token ids, or FinLoRA contexts tokenized and cut to length.

Every prompt of a cell has exactly ``prompt_len`` tokens, so a batch needs no padding and no attention mask, and
cells with the same length compare. Dataset prompts are real text: each request takes the next dataset contexts,
tokenized (no special tokens), joined until ``prompt_len`` tokens and cut there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lorabench.data import build_tokenizer, load_tokenizer, read_jsonl
from lorabench.data.tokenizer import SPECIAL_TOKENS
from lorabench.errors import DataError
from lorabench.infer.options import SYNTHETIC_PROMPTS

if TYPE_CHECKING:
    from lorabench.models import ResolvedModel

__all__ = ["PromptSource", "make_prompts", "prompt_source"]


@dataclass(frozen=True)
class PromptSource:
    """Where prompts come from.

    Attributes:
        kind: ``synthetic`` or ``dataset``.
        description: How prompts are made (for the record).
        vocab_size: Token ids are below this.
        streams: For a dataset, every context's token ids, in file order.
    """

    kind: str
    description: str
    vocab_size: int
    streams: tuple[tuple[int, ...], ...] = ()


def prompt_source(prompts: str, model: ResolvedModel) -> PromptSource:
    """Prepare the prompt source for a model.

    Args:
        prompts: ``synthetic`` or a FinLoRA-format JSONL path.
        model: The resolved model (its vocabulary bounds the token ids; a local folder's tokenizer is used).

    Returns:
        The source.

    Raises:
        DataError: The dataset is unreadable, malformed, or holds no text.
    """
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    if vocab <= len(SPECIAL_TOKENS):
        raise DataError(f"model {model.display_name}: config has no usable vocab_size ({vocab})")
    if prompts == SYNTHETIC_PROMPTS:
        return PromptSource(
            "synthetic",
            f"random token ids in [{len(SPECIAL_TOKENS)}, {vocab}) (seeded), exactly prompt_len per request",
            vocab,
        )
    path = Path(prompts)
    records = read_jsonl(path)
    local = load_tokenizer(model.local_dir) if model.local_dir is not None else None
    if local is not None:
        tokenizer, how = local, f"the tokenizer in {model.local_dir}"
    else:
        texts = [r["context"] + r["target"] for r in records]
        tokenizer = build_tokenizer(texts, vocab_size=min(vocab, 32_000))
        how = f"a byte-level BPE trained offline on the dataset (vocab {len(tokenizer)})"
    encoded = tokenizer([r["context"] for r in records], add_special_tokens=False)["input_ids"]
    streams = tuple(tuple(int(t) for t in ids) for ids in encoded if ids)
    if not streams:
        raise DataError(f"{path}: no context encodes to any token")
    return PromptSource(
        "dataset",
        f"{path.name} contexts tokenized with {how}, joined in file order and cut to exactly prompt_len tokens",
        vocab,
        streams,
    )


def make_prompts(source: PromptSource, batch: int, prompt_len: int, seed: int, offset: int = 0) -> torch.Tensor:
    """A ``(batch, prompt_len)`` tensor of token ids (int64, CPU).

    Args:
        source: From :func:`prompt_source`.
        batch: Requests.
        prompt_len: Tokens per prompt.
        seed: Seed of synthetic ids.
        offset: First dataset context to use (a different offset gives different real prompts).
    """
    if source.kind == "synthetic":
        generator = torch.Generator().manual_seed(seed * 1_000_003 + offset)
        return torch.randint(len(SPECIAL_TOKENS), source.vocab_size, (batch, prompt_len), generator=generator)
    rows = []
    index = offset * batch
    for _ in range(batch):
        ids: list[int] = []
        while len(ids) < prompt_len:
            ids += source.streams[index % len(source.streams)]
            index += 1
        rows.append(ids[:prompt_len])
    return torch.tensor(rows, dtype=torch.long)
