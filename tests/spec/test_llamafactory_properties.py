"""Whatever a LLaMA-Factory or Axolotl YAML holds, the loader gives a spec or one ConfigError line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lorabench.errors import LorabenchError
from lorabench.spec import load_spec_source

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["all", "q_proj,v_proj", "bnb", "hqq", "fa2", "auto", "ds_z3_config.json", "full_shard", "x"]),
    st.lists(st.sampled_from(["q_proj", "full_shard", "offload", 1]), max_size=3),
    st.dictionaries(
        st.sampled_from(["name", "r", "quantization_bit", "offload_params"]), st.integers(0, 9), max_size=2
    ),
)
_LF_KEYS = st.sampled_from(
    [
        "finetuning_type",
        "lora_rank",
        "lora_alpha",
        "lora_target",
        "quantization_bit",
        "quantization_method",
        "cutoff_len",
        "per_device_train_batch_size",
        "deepspeed",
        "flash_attn",
        "optim",
        "use_dora",
        "use_rslora",
        "dataset",
        "additional_target",
        "fsdp",
        "disable_gradient_checkpointing",
        "peft_config",
        "dist_config",
        "quant_config",
        "stage",
        "junk",
    ]
)
_AX_KEYS = st.sampled_from(
    [
        "adapter",
        "fsdp",
        "fsdp_config",
        "fsdp_version",
        "gradient_checkpointing",
        "activation_offloading",
        "plugins",
        "liger_fused_linear_cross_entropy",
        "cut_cross_entropy",
        "flash_attention",
        "sdp_attention",
        "attn_implementation",
        "lora_modules_to_save",
        "peft_layers_to_transform",
        "lora_rank_pattern",
        "batch_size",
        "datasets",
        "bf16",
        "fp16",
        "junk",
    ]
)


def _check(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(text)
        try:
            load_spec_source(path)
        except LorabenchError as exc:
            assert str(exc).strip() and "\n" not in str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_LF_KEYS, _VALUES, max_size=8))
def test_llamafactory_documents(doc: dict[str, Any]) -> None:
    _check(json.dumps({"model_name_or_path": "tiny", **doc}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_AX_KEYS, _VALUES, max_size=8))
def test_axolotl_documents(doc: dict[str, Any]) -> None:
    _check(json.dumps({"base_model": "tiny", "adapter": "lora", **doc}))
