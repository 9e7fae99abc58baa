from __future__ import annotations

import pytest
from pydantic import ValidationError

from lorabench.errors import ConfigError
from lorabench.spec import ALL_LINEAR, DEFAULT_TARGETS, RunSpec, parse_spec


def test_defaults_follow_finlora() -> None:
    spec = parse_spec({"model": "llama-3.1-8b"})
    assert spec.method == "lora"
    assert spec.bits == 16
    assert spec.rank == 8
    assert spec.alpha == 16.0
    assert spec.targets == DEFAULT_TARGETS
    assert spec.parallelism == "single"
    assert spec.hardware.count == 1


def test_derived_defaults() -> None:
    assert parse_spec({"model": "m", "method": "qlora"}).bits == 4
    assert parse_spec({"model": "m", "rank": 4}).alpha == 8.0
    assert parse_spec({"model": "m", "rank": 4, "alpha": 32}).alpha == 32.0
    assert parse_spec({"model": "m", "hardware": {"gpu": "A5000", "count": 4}}).parallelism == "ddp"
    assert parse_spec({"model": "m", "targets": "q_proj, v_proj"}).targets == ("q_proj", "v_proj")
    assert parse_spec({"model": "m", "targets": "all-linear"}).target_list is None
    assert parse_spec({"model": "m", "targets": ALL_LINEAR}).targets == ALL_LINEAR


def test_global_batch_counts_every_rank() -> None:
    spec = parse_spec(
        {
            "model": "m",
            "micro_batch": 2,
            "grad_accum": 4,
            "hardware": {"gpu": "A5000", "count": 4},
            "parallelism": "zero1",
        }
    )
    assert spec.global_batch == 32
    assert spec.hardware.label() == "4×A5000"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        parse_spec({"model": "m", "rank": 0, "bits": 3, "dropout": 1.5, "optimizer": "sgd", "micro_batch": 0})
    message = str(err.value)
    for field in ("rank", "bits", "dropout", "optimizer", "micro_batch"):
        assert f"{field}:" in message
    assert "16, 8 or 4" in message  # says what is allowed
    assert "\n" not in message


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"model": "m", "method": "qlora", "bits": 16}, "qlora means a 4-bit"),
        ({"model": "m", "method": "qlora", "bits": 8}, "bits must be 4"),
        ({"model": "m", "method": "ia3"}, "method:"),
        ({"model": "m", "parallelism": "single", "hardware": {"count": 2}}, "use ddp"),
        ({"model": "m", "targets": []}, "at least one module"),
        ({"model": "m", "targets": ["q_proj", ""]}, "non-empty"),
        ({"model": ""}, "model:"),
        ({}, "model: required"),
        ({"model": "m", "epochs": 0}, "epochs:"),
        ({"model": "m", "seq_len": -1}, "seq_len:"),
        ({"model": "m", "learning_rate": 0}, "learning_rate:"),
        ({"model": "m", "rnak": 8}, "rnak: unknown field"),
        ({"model": "m", "hardware": {"count": 0}}, "hardware.count"),
    ],
)
def test_bad_values_name_the_field(raw: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match="invalid run spec") as err:
        parse_spec(raw, "test")
    assert needle in str(err.value)


def test_cross_field_errors_join_field_errors() -> None:
    with pytest.raises(ConfigError) as err:
        parse_spec({"model": "m", "method": "qlora", "bits": 16, "rank": -1})
    assert "rank:" in str(err.value)
    assert "qlora means" in str(err.value)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ValidationError):
        RunSpec(model="m", method="qlora", bits=16)


def test_spec_is_frozen_and_round_trips() -> None:
    spec = parse_spec({"model": "llama-3.1-8b", "method": "dora", "targets": "all-linear"})
    with pytest.raises(ValidationError):
        spec.rank = 4  # type: ignore[misc]
    again = RunSpec.model_validate(spec.model_dump(mode="json"))
    assert again == spec
    assert spec.label() == "llama-3.1-8b-dora-r8-16bit"
