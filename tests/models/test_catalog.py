from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.errors import ModelError
from lorabench.models import architecture_catalog, resolve_model

REQUIRED = [
    "tiny",
    "llama-2-7b",
    "llama-2-13b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "mistral-7b-v0.3",
    "qwen2.5-7b",
    "gemma-2-9b",
]


def test_catalog_has_the_required_architectures() -> None:
    assert set(REQUIRED) <= set(architecture_catalog())
    for entry in architecture_catalog().values():
        assert entry.source


@pytest.mark.parametrize(
    ("ref", "key"),
    [
        ("llama-3.1-8b", "llama-3.1-8b"),
        ("Llama-3.1-8B", "llama-3.1-8b"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
        ("NousResearch/Meta-Llama-3.1-8B-Instruct", "llama-3.1-8b"),
        ("meta-llama/Llama-2-7b-chat-hf", "llama-2-7b"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b-v0.3"),
        ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"),
        ("google/gemma-2-9b-it", "gemma-2-9b"),
        ("someone/llama-3.2-1b-instruct", "llama-3.2-1b"),
    ],
)
def test_hub_ids_resolve_to_catalog_entries(ref: str, key: str) -> None:
    assert resolve_model(ref).key == key


def test_unknown_model_lists_what_is_known() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'gpt-17'.*llama-3\.1-8b"):
        resolve_model("gpt-17")


def test_local_directory_with_config(tmp_path: Path) -> None:
    from transformers import Qwen2Config

    Qwen2Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=300,
    ).save_pretrained(tmp_path)
    resolved = resolve_model(str(tmp_path))
    assert resolved.local_dir == tmp_path
    assert resolved.config.model_type == "qwen2"


def test_local_directory_problems(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"has no config\.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="transformers cannot read it"):
        resolve_model(str(tmp_path))
