from __future__ import annotations

from typing import Any

import pytest

from lorabench.errors import ConfigError, ModelError
from lorabench.models import resolve_model
from lorabench.predict.time.flops import FlopsBreakdown, training_flops
from lorabench.spec import parse_spec

# Llama-3.1-8B: published parameters, embeddings (128256 x 4096) and the 65 RMSNorm weights (2 per layer + final).
LLAMA_8B_PARAMS = 8_030_261_248
LLAMA_8B_EMBED = 128_256 * 4_096
LLAMA_8B_NORMS = 65 * 4_096
LLAMA_8B_LM_HEAD = 128_256 * 4_096
# Linear weights = everything but the embedding lookup and the norms (lm_head is untied, so counted once in params).
LLAMA_8B_LINEAR_FWD = 2 * (LLAMA_8B_PARAMS - LLAMA_8B_EMBED - LLAMA_8B_NORMS)
# r8 on q/k/v, 32 layers: r x (in + out) = 8 x (4096+4096 + 2 x (4096+1024)) per layer = the trainable params.
LLAMA_8B_R8_QKV_ADAPTER_FWD = 2 * 4_718_592
LLAMA_8B_QKV_WEIGHTS = 32 * (4096 * 4096 + 2 * 4096 * 1024)


def _flops(model: str = "llama-3.1-8b", **kw: Any) -> FlopsBreakdown:
    return training_flops(parse_spec({"model": model, **kw}))


@pytest.fixture(scope="module")
def llama_lora() -> FlopsBreakdown:
    return _flops()


@pytest.fixture(scope="module")
def llama_lora_ckpt() -> FlopsBreakdown:
    return _flops(grad_ckpt=True)


@pytest.fixture(scope="module")
def llama_dora() -> FlopsBreakdown:
    return _flops(method="dora")


def test_llama_8b_linear_forward_is_twice_the_non_embedding_weights(llama_lora: FlopsBreakdown) -> None:
    assert LLAMA_8B_LINEAR_FWD == 2 * 7_504_658_432
    assert llama_lora.linear_forward_per_token == LLAMA_8B_LINEAR_FWD
    assert llama_lora.linear_layers == 32 * 7 + 1
    assert llama_lora.adapted_layers == 32 * 3


def test_llama_8b_lora_per_token_by_hand(llama_lora: FlopsBreakdown) -> None:
    # causal half: 2 matmuls x 2 FLOPs x (512 / 2) keys x 4096 (32 heads x 128) x 32 layers
    attention = 2 * 2 * 256 * 4096 * 32
    assert attention == 134_217_728
    assert llama_lora.attention_forward_per_token == attention
    assert llama_lora.forward_per_token == LLAMA_8B_LINEAR_FWD + attention
    assert llama_lora.backward_per_token == LLAMA_8B_LINEAR_FWD + 2 * attention
    assert llama_lora.adapter_per_token == 3 * LLAMA_8B_R8_QKV_ADAPTER_FWD == 28_311_552
    assert llama_lora.recompute_per_token == 0
    assert llama_lora.dora_per_token == llama_lora.dora_per_micro_batch == 0
    assert llama_lora.total_per_token == 2 * LLAMA_8B_LINEAR_FWD + 3 * attention + 3 * LLAMA_8B_R8_QKV_ADAPTER_FWD
    assert llama_lora.total_per_token == 30_449_598_464
    assert (llama_lora.method, llama_lora.seq_len, llama_lora.grad_ckpt) == ("lora", 512, False)


def test_gradient_checkpointing_adds_a_forward_of_the_decoder_layers(
    llama_lora: FlopsBreakdown, llama_lora_ckpt: FlopsBreakdown
) -> None:
    # the decoder layers (with their adapters) run forward again; lm_head sits outside them
    recompute = LLAMA_8B_LINEAR_FWD - 2 * LLAMA_8B_LM_HEAD + llama_lora.attention_forward_per_token
    recompute += LLAMA_8B_R8_QKV_ADAPTER_FWD
    assert llama_lora_ckpt.recompute_per_token == recompute == 14_102_298_624
    assert llama_lora_ckpt.total_per_token == llama_lora.total_per_token + recompute
    assert llama_lora_ckpt.total_per_token == 44_551_897_088
    assert llama_lora_ckpt.forward_per_token == llama_lora.forward_per_token


def test_dora_costs_more_than_lora(llama_lora: FlopsBreakdown, llama_dora: FlopsBreakdown) -> None:
    assert llama_dora.total_per_token > llama_lora.total_per_token
    # with dropout PEFT recomputes the base q/k/v on the dropped-out input: forward + input gradient
    assert llama_dora.dora_per_token == 2 * 2 * LLAMA_8B_QKV_WEIGHTS == 3_221_225_472
    assert llama_dora.total_per_token == llama_lora.total_per_token + llama_dora.dora_per_token
    # per pass: BA through an in x in identity (2 r in (in + out)) and the norm (4 in out), per adapted layer
    per_layer = 2 * 8 * 4096 * (4096 + 4096) + 2 * 2 * 8 * 4096 * (4096 + 1024) + 4 * LLAMA_8B_QKV_WEIGHTS // 32
    assert llama_dora.dora_per_micro_batch == 32 * per_layer == 41_875_931_136


def test_dora_norm_is_redone_under_checkpointing(llama_dora: FlopsBreakdown) -> None:
    ckpt = _flops(method="dora", grad_ckpt=True)
    assert ckpt.dora_per_micro_batch == 2 * llama_dora.dora_per_micro_batch
    # recompute: decoder layers' forward + adapter forward + DoRA's second base matmul forward
    expected = LLAMA_8B_LINEAR_FWD - 2 * LLAMA_8B_LM_HEAD + ckpt.attention_forward_per_token
    expected += LLAMA_8B_R8_QKV_ADAPTER_FWD + 2 * LLAMA_8B_QKV_WEIGHTS
    assert ckpt.recompute_per_token == expected


def test_dora_without_dropout_reuses_the_base_result() -> None:
    no_dropout = _flops(method="dora", dropout=0.0)
    assert no_dropout.dora_per_token == 0
    assert no_dropout.dora_per_micro_batch > 0


def test_tiny_by_hand_from_its_config() -> None:
    cfg = resolve_model("tiny").config
    h, layers, inter, vocab = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, cfg.vocab_size
    q_out = cfg.num_attention_heads * cfg.head_dim
    kv_out = cfg.num_key_value_heads * cfg.head_dim
    per_layer = h * q_out + 2 * h * kv_out + q_out * h + 3 * h * inter
    linear = 2 * (layers * per_layer + h * vocab)
    assert linear == 7_897_088
    flops = _flops("tiny", seq_len=128, rank=4, targets="q_proj,v_proj")
    attention = 2 * 2 * 64 * q_out * layers
    adapter = 3 * 2 * 4 * ((h + q_out) + (h + kv_out)) * layers
    assert flops.linear_forward_per_token == linear
    assert flops.attention_forward_per_token == attention
    assert flops.adapter_per_token == adapter
    assert flops.total_per_token == 2 * linear + 3 * attention + adapter


def test_seq_len_argument_overrides_the_spec_and_only_moves_attention() -> None:
    spec = parse_spec({"model": "tiny", "seq_len": 128})
    short, long = training_flops(spec), training_flops(spec, seq_len=1024)
    assert long.seq_len == 1024
    assert long.attention_forward_per_token == 8 * short.attention_forward_per_token
    assert long.linear_forward_per_token == short.linear_forward_per_token
    with pytest.raises(ConfigError, match="seq_len: must be a positive integer"):
        training_flops(spec, seq_len=0)


def test_all_linear_rank_and_rslora() -> None:
    qkv = _flops("tiny")
    every = _flops("tiny", targets="all-linear")
    assert every.adapted_layers == 4 * 7  # lm_head is not adapted
    assert every.adapter_per_token > qkv.adapter_per_token
    assert _flops("tiny", rank=16).adapter_per_token == 2 * qkv.adapter_per_token
    assert _flops("tiny", method="rslora").total_per_token == qkv.total_per_token
    assert _flops("tiny", method="qlora").total_per_token == qkv.total_per_token  # bits do not change FLOPs


def test_gemma_sliding_window_layers_attend_to_at_most_the_window() -> None:
    full = _flops("gemma-2-9b", seq_len=4096)
    long = _flops("gemma-2-9b", seq_len=8192)
    width = 16 * 256  # heads x head_dim
    # 21 global layers attend to 8192 / 2 keys; 21 local ones to 4096 - 4096^2 / (2 x 8192) = 3072 on average
    assert long.attention_forward_per_token == 21 * 4 * width * 4096 + 21 * 4 * width * 3072
    assert full.attention_forward_per_token == 42 * 4 * width * 2048


def test_unknown_target_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="c_attn not found"):
        _flops("tiny", targets="c_attn")


def test_breakdown_to_dict_is_plain() -> None:
    record = _flops("tiny").to_dict()
    assert record["method"] == "lora"
    assert record["total_per_token"] == _flops("tiny").total_per_token
