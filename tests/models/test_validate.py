"""Model config sizes: positive integers within documented bounds, the field named, before anything is built."""

from __future__ import annotations

import pytest

from lorabench.errors import ModelError
from lorabench.models.catalog import architecture_catalog
from lorabench.models.validate import SIZE_BOUNDS, check_model_config

BASE = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 99}


def test_every_catalog_architecture_passes() -> None:
    for key, entry in architecture_catalog().items():
        check_model_config(entry.config, key)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"num_hidden_layers": 10**9}, "num_hidden_layers"),
        ({"num_hidden_layers": 2.0}, "num_hidden_layers"),
        ({"num_hidden_layers": True}, "num_hidden_layers"),
        ({"hidden_size": -64}, "hidden_size"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"intermediate_size": [128, -1]}, "intermediate_size[1]"),
        ({"num_key_value_heads": 3}, "num_key_value_heads"),
        ({"num_local_experts": 4, "num_experts_per_tok": 8}, "num_experts_per_tok"),
        ({"text_config": {"hidden_size": "wide"}}, "text_config.hidden_size"),
        ({"text_config": [1]}, "text_config"),
    ],
)
def test_a_bad_size_names_its_field(patch: dict[str, object], field: str) -> None:
    with pytest.raises(ModelError, match=r"config\.json: ") as caught:
        check_model_config({**BASE, **patch}, "m/config.json")
    assert f"{field}:" in str(caught.value)


def test_null_and_per_layer_lists_are_accepted() -> None:
    check_model_config({**BASE, "head_dim": None, "intermediate_size": [128, 256]}, "m/config.json")
    assert all(low >= 0 and high > low for low, high in SIZE_BOUNDS.values())
