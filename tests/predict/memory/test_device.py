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
from lorabench.spec import parse_spec

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
