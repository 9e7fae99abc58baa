"""infer_spec: a Trainer run's RunSpec read off a real PEFT model and real TrainingArguments (no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch


def _peft_model(**lora: Any) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from lorabench.models import resolve_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(resolve_model("tiny").config)
    return get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))


def _args(tmp_path: Path, **kwargs: Any) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, **kwargs)


class _State:
    epoch = None


def test_dora_modules_to_save_grad_ckpt_epochs(tmp_path: Path) -> None:
    from lorabench.measure.callback_spec import infer_spec

    model = _peft_model(r=16, lora_alpha=32, target_modules="all-linear", use_dora=True, modules_to_save=["lm_head"])
    model.config._name_or_path = "meta-llama/Llama-3.2-1B"  # what from_pretrained sets
    args = _args(tmp_path, num_train_epochs=3, gradient_checkpointing=True, optim="adamw_torch_fused")
    spec, notes, _ = infer_spec(model, args, _State(), gpu="A5000", seq_len=256)
    assert (spec.model, spec.method, spec.rank, spec.alpha) == ("meta-llama/Llama-3.2-1B", "dora", 16, 32.0)
    # PEFT has already expanded all-linear to the modules it wrapped (lm_head excluded): those are recorded.
    assert set(spec.targets) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert spec.modules_to_save == ("lm_head",) and spec.grad_ckpt and spec.epochs == 3.0
    assert spec.optimizer == "adamw_torch_fused" and spec.hardware.gpu == "A5000" and spec.seq_len == 256
    assert not any(n.startswith(("model:", "epochs:", "hardware.gpu:", "optimizer:")) for n in notes)


def test_what_it_cannot_infer_is_noted_not_guessed(tmp_path: Path) -> None:
    from lorabench.measure.callback_spec import infer_spec

    model = _peft_model(r=4, target_modules=r".*\.0\.self_attn\.(q|v)_proj", bias="all")
    spec, notes, ignored = infer_spec(model, _args(tmp_path, optim="sgd"), _State(), gpu=None, seq_len=None)
    text = " | ".join(notes)
    assert spec.optimizer == "adamw_torch" and "optimizer: optim 'sgd' is not one lorabench models" in text
    assert "not honoured: bias = 'all'" in text and any(k.key == "bias" for k in ignored)
    assert spec.targets == ("q_proj", "v_proj") and "recorded as the modules PEFT wrapped" in text
    assert spec.layers_to_transform == (0,) and "recorded as layers_to_transform" in text
    assert "seq_len: no batch was counted" in text and spec.seq_len == 512


def test_quantization_config_sets_bits(tmp_path: Path) -> None:
    from transformers import BitsAndBytesConfig

    from lorabench.measure.callback_spec import infer_spec

    model = _peft_model(r=8, target_modules=["q_proj"])
    # from_pretrained(quantization_config=...) leaves it on the config; bitsandbytes itself needs CUDA.
    model.base_model.model.config.quantization_config = BitsAndBytesConfig(load_in_4bit=True)
    spec, _, _ = infer_spec(model, _args(tmp_path), _State(), gpu=None, seq_len=64)
    assert (spec.bits, spec.method) == (4, "qlora")
    model.base_model.model.config.quantization_config = BitsAndBytesConfig(load_in_8bit=True)
    assert infer_spec(model, _args(tmp_path), _State(), gpu=None, seq_len=64)[0].bits == 8


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_attention_read_off_the_model(tmp_path: Path, attn: str) -> None:
    from lorabench.measure.callback_spec import infer_spec

    model = _peft_model(r=8, target_modules=["q_proj"])
    model.base_model.model.config._attn_implementation = attn
    assert infer_spec(model, _args(tmp_path), _State(), gpu=None, seq_len=64)[0].attention == attn


@pytest.mark.parametrize(("precision", "autocast"), [({}, False), ({"bf16": True}, True)])
def test_trainer_mixed_precision_is_recorded_as_autocast(
    tmp_path: Path, precision: dict[str, Any], autocast: bool
) -> None:
    from lorabench.measure.callback_spec import infer_spec

    spec, _, _ = infer_spec(_peft_model(r=4), _args(tmp_path, **precision), _State(), gpu="A5000", seq_len=64)
    assert spec.autocast is autocast
