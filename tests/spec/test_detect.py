from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.spec import detect_kind


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"r": 8, "target_modules": ["q_proj"]}, "peft"),
        ({"peft_type": "LORA"}, "peft"),
        ({"base_model": "x", "adapter": "lora", "lora_r": 8}, "axolotl"),
        ({"adapter": "lora", "lora_r": 8}, "axolotl"),
        ({"model_name_or_path": "x", "finetuning_type": "lora", "lora_rank": 8, "lora_alpha": 16}, "llamafactory"),
        ({"model_name_or_path": "x", "lora_target": "all"}, "llamafactory"),
        ({"model": "x", "peft_config": {"name": "lora"}}, "llamafactory"),  # LLaMA-Factory v1
        ({"model": "tiny", "rank": 8}, "lorabench"),
        ({"hardware": "4xA5000"}, "lorabench"),
    ],
)
def test_kinds_are_told_apart_by_content(data: dict[str, object], kind: str) -> None:
    assert detect_kind(Path("f.yaml"), data) == kind
