"""The knobs people use: PEFT's adapter options, attention, fused cross-entropy, offload, optimizers."""

from __future__ import annotations

from typing import Any

import pytest

from lorabench.models import build_meta_model, resolve_model
from lorabench.predict import account
from lorabench.predict.memory.formula import formula_memory, static_components
from lorabench.predict.memory.simulation.engine import simulate
from lorabench.spec import RunSpec, parse_spec


def _spec(**raw: Any) -> RunSpec:
    values: dict[str, Any] = {"model": "tiny", "micro_batch": 2, "seq_len": 64}
    values.update(raw)
    return parse_spec(values)


def _peft_trainable(**lora: Any) -> int:
    """PEFT's own count for a LoraConfig written here (not lorabench's), on the meta device."""
    from peft import LoraConfig, get_peft_model

    base = build_meta_model(resolve_model("tiny").config)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM", **lora)
    trainable, _ = get_peft_model(base, config).get_nb_trainable_parameters()
    return int(trainable)


@pytest.mark.parametrize(
    ("raw", "lora"),
    [
        ({}, {"target_modules": ["q_proj", "k_proj", "v_proj"]}),
        (
            {"modules_to_save": ["embed_tokens", "lm_head"]},
            {"target_modules": ["q_proj", "k_proj", "v_proj"], "modules_to_save": ["embed_tokens", "lm_head"]},
        ),
        ({"layers_to_transform": [0]}, {"target_modules": ["q_proj", "k_proj", "v_proj"], "layers_to_transform": [0]}),
        (
            {"targets": "all-linear", "rank_pattern": {"q_proj": 32}, "alpha_pattern": {"q_proj": 8}},
            {"target_modules": "all-linear", "rank_pattern": {"q_proj": 32}, "alpha_pattern": {"q_proj": 8}},
        ),
    ],
)
def test_trainable_count_equals_peft(raw: dict[str, Any], lora: dict[str, Any]) -> None:
    assert account(_spec(**raw)).trainable_params == _peft_trainable(**lora)


def test_modules_to_save_are_counted_apart_and_dwarf_the_adapter() -> None:
    plain = account(_spec())
    saved = account(_spec(modules_to_save=["embed_tokens", "lm_head"]))
    cfg = resolve_model("tiny").config
    copies = 2 * cfg.vocab_size * cfg.hidden_size  # untied embedding and head, copied in full
    assert saved.modules_to_save_params == copies
    assert saved.trainable_params == plain.trainable_params + copies


def test_layers_to_transform_scales_the_adapter() -> None:
    layers = int(resolve_model("tiny").config.num_hidden_layers)
    full = account(_spec()).trainable_params
    assert account(_spec(layers_to_transform=[0])).trainable_params * layers == full


@pytest.mark.parametrize("knobs", [{}, {"modules_to_save": ["lm_head"]}, {"layers_to_transform": [1]}])
def test_formula_static_parts_follow_the_knobs(knobs: dict[str, Any]) -> None:
    spec = _spec(**knobs)
    static = static_components(spec, device="cpu")
    sim = simulate(spec, device="cpu")
    assert static["adapter"] == sim.breakdown["adapter"]
    assert static["optimizer_state"] == sim.breakdown["optimizer_state"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer", ["adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"]
)
def test_optimizer_state_formula_equals_simulation(optimizer: str) -> None:
    # rank 64 on all linears: tensors above bitsandbytes' 4096-element threshold, and below the 100k paging one
    spec = _spec(optimizer=optimizer, rank=64, targets="all-linear", modules_to_save=["lm_head"])
    sim = simulate(spec, device="cuda")
    static = static_components(spec, device="cuda")
    assert static["optimizer_state"] == sim.breakdown["optimizer_state"]
    assert static["paged_optimizer_bytes"] == sim.paged_optimizer_bytes
    if optimizer.startswith("paged"):
        assert sim.paged_optimizer_bytes > 0  # the lm_head copy's state is large enough to be paged


def test_adamw_4bit_is_smaller_than_8bit_and_says_it_is_approximated() -> None:
    spec = _spec(optimizer="adamw_4bit", rank=64, targets="all-linear")
    four = simulate(spec, device="cuda")
    eight = simulate(_spec(optimizer="adamw_8bit", rank=64, targets="all-linear"), device="cuda")
    assert four.breakdown["optimizer_state"] < eight.breakdown["optimizer_state"]
    assert four.breakdown["optimizer_state"] == static_components(spec)["optimizer_state"]
    assert any("adamw_4bit" in note for note in four.notes)


@pytest.mark.slow
def test_attention_loss_and_offload_knobs_in_the_simulation() -> None:
    base = simulate(_spec()).peak_allocated_bytes
    assert simulate(_spec(attention="eager")).peak_allocated_bytes > base  # keeps b x heads x s x s
    fused = simulate(_spec(cross_entropy="fused"))
    assert fused.peak_allocated_bytes < base  # no full fp32 logits
    assert fused.notes
    ckpt = simulate(_spec(grad_ckpt=True)).breakdown["activations"]
    assert simulate(_spec(grad_ckpt=True, activation_offload=True)).breakdown["activations"] < ckpt


@pytest.mark.parametrize(
    "raw",
    [{"attention": "eager"}, {"cross_entropy": "fused"}, {"grad_ckpt": True, "activation_offload": True}],
)
def test_formula_flags_what_it_was_not_fitted_on(raw: dict[str, Any]) -> None:
    plain = formula_memory(_spec(grad_ckpt=bool(raw.get("grad_ckpt"))))
    adjusted = formula_memory(_spec(**raw))
    assert not plain.extrapolated
    assert adjusted.extrapolated and adjusted.notes
    assert adjusted.peak_allocated_bytes != plain.peak_allocated_bytes


@pytest.mark.parametrize("bits", [16, 4])
def test_pure_bf16_halves_the_trainable_state_and_the_formula_follows_the_simulation(bits: int) -> None:
    method = "qlora" if bits == 4 else "lora"
    plain = _spec(method=method, bits=bits)
    pure = _spec(method=method, bits=bits, pure_bf16=True)
    sim_plain, sim_pure = simulate(plain, device="cuda"), simulate(pure, device="cuda")
    # adapters, their gradients and AdamW's two states in bf16 instead of fp32
    assert sim_pure.breakdown["adapter"] * 2 == pytest.approx(sim_plain.breakdown["adapter"], rel=0.01)
    assert sim_pure.breakdown["optimizer_state"] < sim_plain.breakdown["optimizer_state"]
    if bits == 4:  # no fp32 upcast of the norms, embeddings and lm_head
        assert sim_pure.breakdown["weights"] < sim_plain.breakdown["weights"]
    static = static_components(pure, device="cuda")
    for part in ("weights", "adapter", "optimizer_state"):
        assert static[part] == sim_pure.breakdown[part], part
    assert account(pure).adapter_bytes * 2 == account(plain).adapter_bytes
