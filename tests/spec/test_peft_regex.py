"""A regex ``target_modules`` (PEFT full-matches it against module names) becomes module names and layers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorabench.errors import ConfigError
from lorabench.spec import load_spec_source

# The pattern Unsloth writes into adapter_config.json for q/v/o targets (seen in published adapters).
UNSLOTH_QVO = (
    r"(?:.*?(?:language|text).*?(?:self_attn|attention|attn|mixer|mlp|feed_forward|ffn|dense|mixer).*?\.(?:q_proj|v_proj"
    r"|o_proj))|(?:\bmodel\.layers\.[\d]{1,}(?!.*\.experts\.\d)\..*?(?:self_attn|attention|attn|mixer|mlp|feed_forward"
    r"|ffn|dense|mixer).*?\.(?:(?:q_proj|v_proj|o_proj)))"
)


def _adapter(tmp_path: Path, target: str, **extra: object) -> Path:
    path = tmp_path / "adapter_config.json"
    config = {"peft_type": "LORA", "base_model_name_or_path": "tiny", "r": 4, "target_modules": target, **extra}
    path.write_text(json.dumps(config))
    return path


def test_unsloth_pattern_selects_module_names(tmp_path: Path) -> None:
    loaded = load_spec_source(_adapter(tmp_path, UNSLOTH_QVO))
    assert loaded.spec.targets == ("o_proj", "q_proj", "v_proj")
    assert loaded.spec.layers_to_transform is None
    assert any("expanded to o_proj, q_proj, v_proj" in note for note in loaded.notes)


def test_a_pattern_over_some_layers_sets_layers_to_transform(tmp_path: Path) -> None:
    loaded = load_spec_source(_adapter(tmp_path, r"model\.layers\.[23]\.self_attn\.(q_proj|k_proj)"))
    assert loaded.spec.targets == ("k_proj", "q_proj")
    assert loaded.spec.layers_to_transform == (2, 3)


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        (r"model\.layers\.(", "invalid regular expression"),
        (r".*\.nothing_here", "selects no linear module"),
        (r"model\.layers\.0\.self_attn\.q_proj|model\.layers\.1\.self_attn\.k_proj", "cannot express"),
    ],
)
def test_patterns_lorabench_cannot_express_are_one_clear_error(tmp_path: Path, target: str, needle: str) -> None:
    path = _adapter(tmp_path, target)
    with pytest.raises(ConfigError) as err:
        load_spec_source(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_unknown_base_for_a_pattern_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({"r": 4, "target_modules": ".*q_proj", "base_model_name_or_path": "acme/none"}))
    with pytest.raises(ConfigError, match="regular expression"):
        load_spec_source(path)
