"""Cross-check the byte rule against models that bitsandbytes really quantizes on this CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lorabench.predict import account, linear_storage
from lorabench.spec import parse_spec

pytestmark = pytest.mark.integration


def _save_random_model(config: object, folder: Path) -> None:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(folder)


def _real_constant_bytes(model: torch.nn.Module, bits: int) -> int:
    import bitsandbytes as bnb

    total = 0
    for module in model.modules():
        if bits == 8 and isinstance(module, bnb.nn.Linear8bitLt):
            total += module.weight.SCB.numel() * module.weight.SCB.element_size()
        if bits == 4 and isinstance(module, bnb.nn.Linear4bit):
            qs = module.weight.quant_state
            parts = [qs.absmax, qs.code, qs.offset, qs.state2.absmax, qs.state2.code]
            total += sum(t.numel() * t.element_size() for t in parts)
    return total


CONFIGS = {
    # Llama with an untied lm_head, like Llama-3.1-8B
    "llama": dict(
        model_type="llama",
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1000,
        tie_word_embeddings=False,
    ),
    # Qwen2: q/k/v carry biases, which bitsandbytes leaves unquantized
    "qwen2": dict(
        model_type="qwen2",
        hidden_size=192,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=3,
        num_key_value_heads=1,
        vocab_size=900,
        tie_word_embeddings=True,
    ),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def saved_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import CONFIG_MAPPING

    facts = dict(CONFIGS[request.param])
    config = CONFIG_MAPPING[facts.pop("model_type")](**facts)
    folder = tmp_path_factory.mktemp(request.param)
    _save_random_model(config, folder)
    return folder


@pytest.mark.parametrize("bits", [16, 8, 4])
def test_rule_matches_real_bitsandbytes_model(saved_model: Path, bits: int) -> None:
    from transformers import AutoModelForCausalLM

    from lorabench.methods import quantization_config

    spec = parse_spec({"model": str(saved_model), "bits": bits})
    predicted = account(spec)
    real = AutoModelForCausalLM.from_pretrained(
        saved_model, dtype=torch.bfloat16, quantization_config=quantization_config(spec), device_map="cpu"
    )
    # get_memory_footprint() counts parameters and buffers, not bitsandbytes' side tensors
    assert predicted.base_bytes(bits) - predicted.constant_bytes(bits) == real.get_memory_footprint()
    assert predicted.constant_bytes(bits) == _real_constant_bytes(real, bits)


def test_linear_storage_rule_values() -> None:
    assert linear_storage(4096, 4096, 16).total_bytes == 2 * 4096 * 4096
    eight = linear_storage(1024, 4096, 8)
    assert (eight.weight_bytes, eight.constant_bytes) == (1024 * 4096, 1024 * 4)
    four = linear_storage(4096, 4096, 4)
    blocks = 4096 * 4096 // 64
    assert four.weight_bytes == 4096 * 4096 // 2
    assert four.constant_bytes == blocks + (blocks // 256) * 4 + 256 * 4 + 16 * 4 + 4
    with pytest.raises(ValueError, match="bits must be"):
        linear_storage(1, 1, 2)
