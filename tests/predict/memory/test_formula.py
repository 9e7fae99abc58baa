"""The formula engine: exact static components, agreement with the simulation, monotonicity, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from lorabench.errors import ConfigError, ModelError
from lorabench.predict.memory import formula
from lorabench.predict.memory.formula import (
    FEATURES,
    FORMULA_COMPONENTS,
    FormulaResult,
    coefficients,
    formula_features,
    formula_memory,
    group_key,
    set_coefficients,
    static_components,
)
from lorabench.predict.memory.params import account
from lorabench.predict.memory.simulation.engine import SIM_COMPONENTS, simulate
from lorabench.spec import RunSpec, parse_spec

STATIC = ("weights", "quant_constants", "adapter", "optimizer_state")


def _spec(**raw: Any) -> RunSpec:
    values: dict[str, Any] = {"model": "tiny", "micro_batch": 2, "seq_len": 64}
    values.update(raw)
    return parse_spec(values)


# ---------------------------------------------------------------- static components: exact
@pytest.mark.parametrize(
    "raw",
    [
        {"bits": 16},
        {"bits": 8, "optimizer": "adamw_8bit", "targets": "all-linear", "rank": 16},
        {"bits": 4, "method": "qlora", "optimizer": "paged_adamw_8bit", "targets": "all-linear", "rank": 32},
        {"bits": 4, "method": "dora", "targets": "q_proj,v_proj"},
    ],
)
@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_static_components_equal_the_simulation(raw: dict[str, Any], device: str) -> None:
    spec = _spec(**raw)
    sim = simulate(spec, device, micro_batch=1, seq_len=16)  # type: ignore[arg-type]
    static = static_components(spec, device)  # type: ignore[arg-type]
    assert {k: static[k] for k in STATIC} == {k: sim.breakdown[k] for k in STATIC}
    assert static["paged_optimizer_bytes"] == sim.paged_optimizer_bytes


@pytest.mark.parametrize("bits", [16, 8, 4])
def test_cpu_static_components_follow_account(bits: int) -> None:
    spec = _spec(bits=bits, rank=16)
    acc = account(spec)
    static = static_components(spec, "cpu")
    assert static["quant_constants"] == acc.constant_bytes(bits)
    assert static["adapter"] == static["gradients"] == acc.adapter_bytes
    kept = sum(c.params - c.quantized_params for c in acc.components)  # embeddings, lm_head, norms: bf16
    upcast = 2 * kept if bits < 16 else 0  # prepare_model_for_kbit_training: bf16 -> fp32
    assert static["weights"] == acc.base_bytes(bits) - acc.constant_bytes(bits) + upcast
    assert static["optimizer_state"] == 2 * acc.adapter_bytes + 4 * 24  # two fp32 states + CPU step counters


def test_paged_optimizer_state_leaves_the_cuda_peak() -> None:
    spec = parse_spec({"model": "llama-3.2-1b", "bits": 4, "targets": "all-linear", "rank": 16})
    eight = formula_memory(spec.model_copy(update={"optimizer": "adamw_8bit"}))
    paged = formula_memory(spec.model_copy(update={"optimizer": "paged_adamw_8bit"}))
    assert eight.paged_optimizer_bytes == 0
    assert paged.paged_optimizer_bytes == 12_582_912  # uint8 states of the 16 x 8192 MLP adapters (>= 100k)
    assert paged.breakdown["optimizer_state"] == eight.breakdown["optimizer_state"] - paged.paged_optimizer_bytes
    on_cpu = formula_memory(spec.model_copy(update={"optimizer": "paged_adamw_8bit"}), "cpu")
    assert on_cpu.paged_optimizer_bytes == 0


# ---------------------------------------------------------------- dynamic: agreement with the simulation
@pytest.mark.parametrize(
    ("raw", "device", "batch", "length"),
    [
        ({}, "cuda", 2, 64),
        ({"bits": 4, "method": "qlora"}, "cuda", 4, 256),
        ({"bits": 8, "grad_ckpt": True, "targets": "all-linear"}, "cuda", 2, 512),
        ({"method": "dora", "dropout": 0.0}, "cpu", 3, 128),
        ({"bits": 4, "grad_ckpt": True, "rank": 16}, "cpu", 8, 256),
        ({"bits": 16, "grad_accum": 2, "optimizer": "adamw_8bit"}, "cuda", 4, 128),
    ],
)
def test_formula_agrees_with_simulation(raw: dict[str, Any], device: str, batch: int, length: int) -> None:
    spec = _spec(**raw)
    sim = simulate(spec, device, micro_batch=batch, seq_len=length)  # type: ignore[arg-type]
    est = formula_memory(spec, device, micro_batch=batch, seq_len=length)  # type: ignore[arg-type]
    assert est.peak_allocated_bytes == pytest.approx(sim.peak_allocated_bytes, rel=0.10)
    for name in STATIC:
        assert est.breakdown[name] == sim.breakdown[name]


def test_result_shape_matches_what_estimate_reads() -> None:
    est = formula_memory(_spec(bits=4, method="qlora"), micro_batch=3, seq_len=100)
    assert isinstance(est, FormulaResult)
    assert est.engine == "formula" and est.device == "cuda"
    assert tuple(est.breakdown) == FORMULA_COMPONENTS == SIM_COMPONENTS
    assert sum(est.breakdown.values()) == est.peak_allocated_bytes
    assert all(isinstance(v, int) and v >= 0 for v in est.breakdown.values())
    assert est.peak_phase in ("forward", "backward", "optimizer")
    assert (est.micro_batch, est.seq_len, est.group) == (3, 100, "cuda-4bit-nockpt-lora")
    assert est.seconds >= 0 and est.paged_optimizer_bytes == 0
    default = formula_memory(_spec())
    assert (default.micro_batch, default.seq_len) == (2, 64)


def test_gradient_accumulation_keeps_every_gradient() -> None:
    spec = _spec(grad_accum=4)
    est = formula_memory(spec)
    assert est.breakdown["gradients"] == static_components(spec)["gradients"]


# ---------------------------------------------------------------- monotone in batch and sequence length
@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize("bits", [16, 8, 4])
@pytest.mark.parametrize("ckpt", [False, True])
@pytest.mark.parametrize("method", ["lora", "dora"])
def test_monotone_in_batch_and_seq_len(device: str, bits: int, ckpt: bool, method: str) -> None:
    spec = parse_spec({"model": "llama-3.2-1b", "bits": bits, "grad_ckpt": ckpt, "method": method})
    batches = [formula_memory(spec, device, micro_batch=b, seq_len=512).peak_allocated_bytes for b in range(1, 65)]  # type: ignore[arg-type]
    assert batches == sorted(batches) and batches[-1] > batches[0]
    lengths = [1, 2, 7, 16, 100, 128, 511, 512, 1000, 2048, 4096, 8192, 32768, 131072]
    peaks = [formula_memory(spec, device, micro_batch=4, seq_len=s).peak_allocated_bytes for s in lengths]  # type: ignore[arg-type]
    assert peaks == sorted(peaks) and peaks[-1] > peaks[0]


# ---------------------------------------------------------------- coefficients and bad input
def test_coefficient_file_covers_every_group() -> None:
    data = coefficients()
    assert data["features"] == list(FEATURES)
    expected = {
        group_key(d, b, c, dora)
        for d in ("cuda", "cpu")
        for b in (16, 8, 4)
        for c in (False, True)
        for dora in (False, True)
    }
    assert set(data["groups"]) == expected
    for entry in data["groups"].values():
        assert entry["pieces"] and entry["n_train"] > 0
        assert set(entry["heldout"]) >= {"n", "median_relative_error", "max_relative_error"}
    assert data["created"] and data["design"]["train_configs"] > 0
    assert set(data["heldout"]) >= {"median_relative_error", "max_relative_error"}


def test_coefficient_override_and_missing_group() -> None:
    data = coefficients()
    try:
        set_coefficients({**data, "groups": {}})
        with pytest.raises(ConfigError, match="no coefficients for cuda-16bit-nockpt-lora"):
            formula_memory(_spec())
        set_coefficients({"features": ["x"], "groups": {}})
        with pytest.raises(ConfigError, match="does not match"):
            formula_memory(_spec())
    finally:
        set_coefficients(None)
    assert formula.coefficients()["groups"]


def test_features_are_named_and_scale_with_tokens() -> None:
    spec = _spec()
    one = formula_features(spec, "cuda", micro_batch=1, seq_len=64)
    two = formula_features(spec, "cuda", micro_batch=2, seq_len=64)
    assert tuple(one) == FEATURES
    assert two["T*V"] == 2 * one["T*V"] == 2 * 64 * 4096
    assert two["b*s^2*1"] == 2 * one["b*s^2*1"] == 2 * 64 * 64
    assert one["T*h*(L-1)"] == 3 * one["T*h*1"] == 3 * 64 * 256  # tiny: 4 layers, hidden 256
    assert one["1"] == two["1"] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "tpu"}, "device must be 'cuda' or 'cpu'"),
        ({"micro_batch": 0}, "micro_batch must be a positive integer"),
        ({"seq_len": -1}, "seq_len must be a positive integer"),
        ({"seq_len": True}, "seq_len must be a positive integer"),
    ],
)
def test_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        formula_memory(_spec(), **kwargs)


def test_unknown_model_or_target() -> None:
    with pytest.raises(ModelError):
        formula_memory(_spec(model="no-such-model"))
    with pytest.raises(ModelError, match="not found"):
        formula_memory(_spec(targets="nope_proj"))


def test_cublas_workspaces_follow_the_gpu() -> None:
    from lorabench.predict.memory.simulation.engine import cublas_workspace_bytes

    hopper = formula_memory(_spec(hardware={"gpu": "H100"}))
    ampere = formula_memory(_spec(hardware={"gpu": "A5000"}))
    difference = cublas_workspace_bytes("H100") - cublas_workspace_bytes("A5000")
    assert hopper.breakdown["temporaries"] - ampere.breakdown["temporaries"] == difference > 0
    assert static_components(_spec(), "cuda")["cublas_workspace_bytes"] == cublas_workspace_bytes(None)
    assert static_components(_spec(), "cpu")["cublas_workspace_bytes"] == 0


def test_architectures_outside_the_design_are_flagged() -> None:
    assert not formula_memory(_spec()).extrapolated
    assert formula_memory(parse_spec({"model": "gemma-2-9b"})).extrapolated
