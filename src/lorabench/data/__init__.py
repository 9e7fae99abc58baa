"""Datasets: FinLoRA-format JSONL reading (and, later, synthetic data and tokenization)."""

from lorabench.data.jsonl import read_jsonl

__all__ = ["read_jsonl"]
