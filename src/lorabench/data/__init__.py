"""Datasets as they are, built-in synthetic data, tokenizers, causal-LM encoding, batching, packing and stats.

Files: JSONL, JSON, CSV, parquet, Arrow, save_to_disk folders, the local HF cache; formats: alpaca, chat,
sharegpt, text, completion and FinLoRA.

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
    encode_rendered,
    make_batches,
    model_inputs,
    pack_examples,
    pad_to_for,
)
from lorabench.data.formats import FORMATS, DataFormat, Rendered, detect_format, parse_fields, render_records
from lorabench.data.jsonl import read_jsonl
from lorabench.data.read import read_records
from lorabench.data.synthetic import SYNTHETIC_TASKS, synthetic_dataset, write_jsonl
from lorabench.data.tokenizer import SPECIAL_TOKENS, build_tokenizer, load_tokenizer

__all__ = [
    "FORMATS",
    "IGNORE_INDEX",
    "SPECIAL_TOKENS",
    "SYNTHETIC_TASKS",
    "BatchStrategy",
    "DataFormat",
    "EncodedExamples",
    "Example",
    "Rendered",
    "batch_token_counts",
    "build_tokenizer",
    "collate",
    "detect_format",
    "encode_examples",
    "encode_rendered",
    "load_tokenizer",
    "make_batches",
    "model_inputs",
    "pack_examples",
    "pad_to_for",
    "parse_fields",
    "read_jsonl",
    "read_records",
    "render_records",
    "synthetic_dataset",
    "write_jsonl",
]
