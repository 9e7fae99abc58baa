"""Datasets: FinLoRA-format JSONL, built-in synthetic data, tokenizers, and causal-LM encoding and batching.

Heavy libraries (torch, transformers, tokenizers) are imported only when a function that needs them runs.
"""

from lorabench.data.encode import (
    IGNORE_INDEX,
    BatchStrategy,
    EncodedExamples,
    Example,
    batch_token_counts,
    collate,
    encode_examples,
    make_batches,
    pad_to_for,
)
from lorabench.data.jsonl import read_jsonl
from lorabench.data.synthetic import SYNTHETIC_TASKS, synthetic_dataset, write_jsonl
from lorabench.data.tokenizer import SPECIAL_TOKENS, build_tokenizer, load_tokenizer

__all__ = [
    "IGNORE_INDEX",
    "SPECIAL_TOKENS",
    "SYNTHETIC_TASKS",
    "BatchStrategy",
    "EncodedExamples",
    "Example",
    "batch_token_counts",
    "build_tokenizer",
    "collate",
    "encode_examples",
    "load_tokenizer",
    "make_batches",
    "pad_to_for",
    "read_jsonl",
    "synthetic_dataset",
    "write_jsonl",
]
