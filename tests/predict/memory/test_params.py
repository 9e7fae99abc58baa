from __future__ import annotations

from typing import Any

import pytest

from lorabench.errors import ModelError
from lorabench.predict import account, estimate
from lorabench.spec import parse_spec

# Parameter counts published by the model makers / shown on their Hugging Face model cards.
PUBLISHED_PARAMS = {
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "mistral-7b-v0.3": 7_248_023_552,
    "qwen2.5-7b": 7_615_616_512,
    "gemma-2-9b": 9_241_705_984,
}


@pytest.mark.parametrize(("model", "params"), sorted(PUBLISHED_PARAMS.items()))
def test_base_parameters_match_published_counts(model: str, params: int) -> None:
    assert account(parse_spec({"model": model})).base_params == params


def test_seed_figures_for_llama_3_1_8b() -> None:
    r8 = account(parse_spec({"model": "llama-3.1-8b", "rank": 8}))
    r4 = account(parse_spec({"model": "llama-3.1-8b", "rank": 4}))
    assert r8.base_params == 8_030_261_248
    assert r8.trainable_params == 4_718_592
    assert r4.trainable_params == 2_359_296
    assert round(r8.base_bytes(16) / 1e9, 2) == 16.06
    # PEFT keeps adapter weights in fp32 on a bf16 base: the seed's 16.08 GB (r8) and 16.07 GB (r4).
    assert round(r8.weights_bytes(16) / 1e9, 2) == 16.08
    assert round(r4.weights_bytes(16) / 1e9, 2) == 16.07


def _hand_lora_params(cfg: Any, rank: int, targets: tuple[str, ...]) -> tuple[int, int]:
    """LoRA A (r x in) + B (out x r) per adapted layer, and DoRA's one magnitude per output feature."""
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    shapes = {
        "q_proj": (cfg.hidden_size, cfg.num_attention_heads * head_dim),
        "k_proj": (cfg.hidden_size, cfg.num_key_value_heads * head_dim),
        "v_proj": (cfg.hidden_size, cfg.num_key_value_heads * head_dim),
        "o_proj": (cfg.num_attention_heads * head_dim, cfg.hidden_size),
        "gate_proj": (cfg.hidden_size, cfg.intermediate_size),
        "up_proj": (cfg.hidden_size, cfg.intermediate_size),
        "down_proj": (cfg.intermediate_size, cfg.hidden_size),
    }
    lora = sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets) * cfg.num_hidden_layers
    dora = sum(shapes[t][1] for t in targets) * cfg.num_hidden_layers
    return lora, dora


ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen2.5-7b", "gemma-2-9b", "mistral-7b-v0.3", "tiny"])
@pytest.mark.parametrize("method", ["lora", "qlora", "dora", "rslora"])
@pytest.mark.parametrize("rank", [4, 16])
def test_trainable_parameters_for_every_method(model: str, method: str, rank: int) -> None:
    spec = parse_spec({"model": model, "method": method, "rank": rank})
    acc = account(spec)
    lora, dora = _hand_lora_params(acc.model.config, rank, ("q_proj", "k_proj", "v_proj"))
    assert acc.lora_params == lora
    assert acc.dora_magnitude_params == (dora if method == "dora" else 0)
    assert acc.trainable_params == acc.lora_params + acc.dora_magnitude_params
    assert acc.adapter_bytes == 4 * acc.trainable_params  # PEFT keeps adapters in fp32
    assert acc.base_bytes(16) > acc.base_bytes(8) > acc.base_bytes(4)


@pytest.mark.parametrize("model", ["llama-3.2-1b", "qwen2.5-7b", "gemma-2-9b"])
def test_all_linear_targets_every_block_linear_but_not_lm_head(model: str) -> None:
    acc = account(parse_spec({"model": model, "targets": "all-linear", "method": "dora"}))
    lora, dora = _hand_lora_params(acc.model.config, 8, ALL_LINEAR)
    assert (acc.lora_params, acc.dora_magnitude_params) == (lora, dora)


def _component(acc: Any, name: str) -> Any:
    return next(c for c in acc.components if c.name == name)


@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen2.5-7b", "gemma-2-9b"])
def test_bytes_by_bits_follow_bitsandbytes_storage(model: str) -> None:
    acc = account(parse_spec({"model": model}))
    cfg = acc.model.config
    embeddings = _component(acc, "embeddings")
    # embeddings (and an untied lm_head) stay 16-bit at every width
    assert embeddings.bytes_by_bits[4] == embeddings.bytes_by_bits[16] == 2 * cfg.vocab_size * cfg.hidden_size
    if not cfg.tie_word_embeddings:
        assert _component(acc, "lm_head").quantized_params == 0
    else:
        assert all(c.name != "lm_head" for c in acc.components)
    quantized = sum(c.quantized_params for c in acc.components)
    assert quantized == _component(acc, "attention").quantized_params + _component(acc, "mlp").quantized_params
    unquantized_bytes = acc.base_bytes(16) - 2 * quantized
    # 8-bit: one byte per quantized weight + fp32 row scales
    assert acc.base_bytes(8) - unquantized_bytes - quantized == acc.constant_bytes(8)
    # 4-bit: half a byte per weight + about 1/64 byte (uint8 absmax per 64-block) + second-level constants
    assert acc.base_bytes(4) - unquantized_bytes - quantized // 2 == acc.constant_bytes(4)
    assert quantized / 64 < acc.constant_bytes(4) < quantized / 64 * 1.1
    # biases (Qwen2's q/k/v) are not quantized
    if model == "qwen2.5-7b":
        attention = _component(acc, "attention")
        assert attention.params > attention.quantized_params


def test_nominal_size_understates_quantized_models() -> None:
    acc = account(parse_spec({"model": "llama-3.1-8b"}))
    assert acc.nominal_base_bytes(4) == 8_030_261_248 // 2
    assert acc.base_bytes(4) > 1.4 * acc.nominal_base_bytes(4)  # embeddings + lm_head stay bf16


def test_unknown_target_module_is_named() -> None:
    with pytest.raises(ModelError, match=r"c_attn not found in Llama-3\.1-8B.*q_proj"):
        account(parse_spec({"model": "llama-3.1-8b", "targets": "q_proj,c_attn"}))


def test_estimate_record_fields() -> None:
    record = estimate(parse_spec({"model": "llama-3.1-8b", "bits": 4}))
    assert record["schema"] == "lorabench.estimate"
    assert record["base_params"] == 8_030_261_248
    assert record["trainable_params"] == 4_718_592
    assert record["weights_bytes"] == record["weights_bytes_by_bits"]["4"]
    assert record["weights_bytes"] == record["base_weights_bytes"] + record["adapter_bytes"]
    assert sum(c["bytes"] for c in record["components"]) == record["base_weights_bytes"]
    assert record["spec"]["bits"] == 4
    assert "predicted" in record["provenance"]["weights_bytes"]
