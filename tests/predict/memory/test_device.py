from __future__ import annotations

import math

import pytest

from lorabench.predict.memory.device import (
    CUDA_CONTEXT_BYTES,
    LOGITS_SLACK_FACTOR,
    RESERVED_SLACK_FRACTION,
    device_totals,
    fits_on_catalog_gpus,
    logits_bytes,
)
from lorabench.spec import RunSpec, parse_spec

BREAKDOWN = {
    "weights": 10_000_000_000,
    "quant_constants": 0,
    "adapter": 20_000_000,
    "gradients": 20_000_000,
    "optimizer_state": 40_000_000,
    "activations": 2_000_000_000,
    "temporaries": 1_000_000_000,
}
PEAK = sum(BREAKDOWN.values())


def test_single_gpu_adds_labelled_slack_and_context() -> None:
    spec = parse_spec({"model": "llama-3.1-8b"})
    totals = device_totals(BREAKDOWN, spec, 32)
    assert totals.peak_allocated_bytes == PEAK
    assert totals.reserved_slack_bytes == math.ceil(PEAK * RESERVED_SLACK_FRACTION)
    assert totals.cuda_context_bytes == CUDA_CONTEXT_BYTES
    assert totals.device_total_bytes == PEAK + totals.reserved_slack_bytes + CUDA_CONTEXT_BYTES
    assert "15%" in totals.to_dict()["provenance"]["reserved_slack_bytes"]


def test_cpu_prediction_has_no_slack_or_context() -> None:
    spec = parse_spec({"model": "tiny"})
    totals = device_totals(BREAKDOWN, spec, 2, cuda=False, logits=10**9)
    assert totals.device_total_bytes == PEAK
    assert totals.logits_bytes is None


def test_long_sequences_get_slack_for_the_logits_tensor() -> None:
    # batch 4 x seq 1,665 x 128,256 vocab: the case that OOMed under a 24 GB cap with 15% slack only
    spec = parse_spec({"model": "llama-3.1-8b", "micro_batch": 4, "seq_len": 1665})
    logits = logits_bytes(spec, 128_256)
    assert logits == 4 * 1665 * 128_256 * 4
    totals = device_totals(BREAKDOWN, spec, 32, logits=logits)
    assert totals.reserved_slack_bytes == math.ceil(LOGITS_SLACK_FACTOR * logits) > PEAK * RESERVED_SLACK_FRACTION
    assert "logits" in totals.to_dict()["provenance"]["reserved_slack_bytes"]
    # a short sequence keeps the fraction of the peak
    short = device_totals(BREAKDOWN, spec, 32, logits=logits_bytes(spec, 128_256, 1, 128))
    assert short.reserved_slack_bytes == math.ceil(PEAK * RESERVED_SLACK_FRACTION)


@pytest.mark.parametrize(
    ("parallelism", "sharded"),
    [("ddp", ()), ("zero1", ("optimizer_state",)), ("zero2", ("optimizer_state", "gradients"))],
)
def test_parallelism_per_gpu(parallelism: str, sharded: tuple[str, ...]) -> None:
    spec = parse_spec({"model": "llama-3.1-8b", "parallelism": parallelism, "hardware": {"gpu": "A5000", "count": 4}})
    totals = device_totals(BREAKDOWN, spec, 32)
    for name, value in BREAKDOWN.items():
        expected = math.ceil(value / 4) if name in sharded else value
        assert totals.breakdown[name] == expected, name
    if parallelism == "ddp":
        assert totals.breakdown["ddp_buckets"] == BREAKDOWN["gradients"]


def test_zero3_shards_weights_and_gathers_two_layers() -> None:
    spec = parse_spec({"model": "llama-3.1-8b", "parallelism": "zero3", "hardware": {"gpu": "A5000", "count": 4}})
    totals = device_totals(BREAKDOWN, spec, 32)
    assert totals.breakdown["weights"] == BREAKDOWN["weights"] // 4
    assert totals.breakdown["zero3_gathered"] == math.ceil(2 * BREAKDOWN["weights"] / 32)


def test_fits_compares_the_total_with_each_card() -> None:
    fits = fits_on_catalog_gpus(20_000_000_000)
    assert fits["H200"] and fits["A5000"] and not fits["T4"]


def _fsdp(parallelism: str, offload: bool = False) -> RunSpec:
    return parse_spec(
        {
            "model": "llama-3.1-8b",
            "parallelism": parallelism,
            "fsdp_offload": offload,
            "hardware": {"gpu": "A5000", "count": 4},
        }
    )


def test_fsdp_full_shard_is_zero3_with_one_gathered_layer() -> None:
    spec = _fsdp("fsdp_full_shard")
    totals = device_totals(BREAKDOWN, spec, 32)
    for name in ("weights", "adapter", "gradients", "optimizer_state"):
        assert totals.breakdown[name] == math.ceil(BREAKDOWN[name] / 4), name
    assert totals.breakdown["activations"] == BREAKDOWN["activations"]
    assert totals.breakdown["fsdp_gathered"] == math.ceil(BREAKDOWN["weights"] / 32)
    assert "zero3_gathered" not in totals.breakdown
    assert any("root unit" in note for note in totals.notes)
    with_root = device_totals(BREAKDOWN, spec, 32, root_param_bytes=2_000_000_000)
    assert with_root.breakdown["fsdp_root_gathered"] == 2_000_000_000
    assert with_root.peak_allocated_bytes == totals.peak_allocated_bytes + 2_000_000_000
    assert totals.cpu_offload_bytes == 0 and totals.to_dict()["cpu_offload_bytes_per_gpu"] == 0


def test_fsdp_shard_grad_op_is_zero2() -> None:
    fsdp = device_totals(BREAKDOWN, _fsdp("fsdp_shard_grad_op"), 32)
    zero2 = device_totals(BREAKDOWN, _fsdp("zero2"), 32)
    assert fsdp.breakdown == zero2.breakdown
    assert fsdp.breakdown["weights"] == BREAKDOWN["weights"]


def test_fsdp_offload_moves_shards_to_the_cpu() -> None:
    full = device_totals(BREAKDOWN, _fsdp("fsdp_full_shard", offload=True), 32)
    shards = sum(math.ceil(BREAKDOWN[k] / 4) for k in ("weights", "quant_constants", "adapter", "gradients"))
    assert full.cpu_offload_bytes == shards + math.ceil(BREAKDOWN["optimizer_state"] / 4)
    for name in ("weights", "adapter", "gradients", "optimizer_state"):
        assert name not in full.breakdown
    assert full.breakdown["fsdp_gathered"] == math.ceil(BREAKDOWN["weights"] / 32)
    assert full.peak_allocated_bytes == (
        BREAKDOWN["activations"] + BREAKDOWN["temporaries"] + full.breakdown["fsdp_gathered"]
    )
    data = full.to_dict()
    assert data["cpu_offload_bytes_total"] == 4 * full.cpu_offload_bytes
    grad_op = device_totals(BREAKDOWN, _fsdp("fsdp_shard_grad_op", offload=True), 32)
    assert grad_op.breakdown["weights"] == BREAKDOWN["weights"]  # gathered from forward through backward
    assert "gradients" not in grad_op.breakdown and "optimizer_state" not in grad_op.breakdown
    assert grad_op.cpu_offload_bytes == full.cpu_offload_bytes
