from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.errors import ModelError
from lorabench.infer.adapters import check_adapter_fits, describe_adapter
from lorabench.models import resolve_model
from tests.infer.adapters import make_adapter, other_architecture_adapter


def test_describe_and_fit_a_real_adapter(tmp_path: Path) -> None:
    adapter = describe_adapter(make_adapter(tmp_path / "a"))
    assert adapter.config["peft_type"] == "LORA" and adapter.config["r"] == 4
    assert len(adapter.sha256) == 64 and adapter.file_bytes > 0 and adapter.training is None
    check_adapter_fits(adapter, resolve_model("tiny").config, "tiny")


def test_adapter_of_another_architecture_is_refused(tmp_path: Path) -> None:
    adapter = describe_adapter(other_architecture_adapter(tmp_path / "other"))
    with pytest.raises(ModelError, match=r"was not trained for tiny: .*_proj\.lora_A\.weight has shape \[4, 128\]"):
        check_adapter_fits(adapter, resolve_model("tiny").config, "tiny")


def test_not_an_adapter_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"holds no adapter_config\.json"):
        describe_adapter(tmp_path)
