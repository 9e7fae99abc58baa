from __future__ import annotations

import json
from typing import Any

import pytest

from lorabench.hardware import resolve_gpu
from lorabench.predict.time.comms import (
    DDP_BUCKET_BYTES,
    LINK_EFFICIENCY,
    OVERLAP_ASSUMPTION,
    RING_STEP_LATENCY_S,
    all_gather_bytes,
    all_reduce_bytes,
    communication_time,
    reduce_scatter_bytes,
)
from lorabench.spec import RunSpec, parse_spec

TRAINABLE = 10_000_000  # 40 MB of fp32 gradients
FROZEN = 16_000_000_000  # an 8B model in bf16
LAYERS = 32


def _spec(parallelism: str, count: int, **extra: Any) -> RunSpec:
    return parse_spec(
        {"model": "tiny", "parallelism": parallelism, "hardware": {"gpu": "H100", "count": count}, **extra}
    )


def test_ring_byte_formulas() -> None:
    assert all_reduce_bytes(1000, 4) == 1500  # 2 (n-1)/n x size
    assert all_reduce_bytes(1000, 2) == 1000
    assert reduce_scatter_bytes(1000, 4) == 750  # (n-1)/n x size
    assert all_gather_bytes(1000, 8) == 875
    for n in (0, 1):
        assert all_reduce_bytes(1000, n) == reduce_scatter_bytes(1000, n) == all_gather_bytes(1000, n) == 0


def test_single_gpu_moves_nothing() -> None:
    comm = communication_time(_spec("single", 1), "H100", TRAINABLE, FROZEN, LAYERS)
    assert comm.total_s == comm.exposed_s == 0.0
    assert comm.bytes_by_collective == {}


def test_ddp_all_reduces_the_lora_gradients_once_per_step() -> None:
    comm = communication_time(_spec("ddp", 8, grad_accum=4), "H100", TRAINABLE, FROZEN, LAYERS)
    grads = TRAINABLE * 4
    assert comm.bytes_by_collective == {"all_reduce_grads": 2 * 7 * grads // 8}  # 70 MB, not x grad_accum
    buckets = -(-grads // DDP_BUCKET_BYTES)
    assert buckets == 2 and comm.calls_by_collective == {"all_reduce_grads": 2}
    expected = buckets * 2 * 7 * RING_STEP_LATENCY_S + 70e6 / (450e9 * LINK_EFFICIENCY["nvlink"])
    assert comm.total_s == pytest.approx(expected)
    assert comm.exposed_s == comm.total_s  # no compute time given
    assert comm.interconnect == "nvlink4" and comm.link_gbps == 450
    assert "all of it is counted as exposed" in comm.overlap_assumption


def test_pcie_is_slower_than_nvlink() -> None:
    nvlink = communication_time(_spec("ddp", 2), "H100", TRAINABLE, FROZEN, LAYERS)
    pcie = communication_time(_spec("ddp", 2), "RTX 4090", TRAINABLE, FROZEN, LAYERS)
    assert pcie.bytes_by_collective == nvlink.bytes_by_collective
    assert pcie.interconnect == "pcie4"
    expected = 2 * RING_STEP_LATENCY_S * 2 + 40e6 / (32e9 * LINK_EFFICIENCY["pcie"])
    assert pcie.total_s == pytest.approx(expected)
    assert pcie.total_s > 10 * nvlink.total_s


def test_zero1_and_zero2() -> None:
    one = communication_time(_spec("zero1", 4, grad_accum=3), "A100 80GB", TRAINABLE, FROZEN, LAYERS)
    two = communication_time(_spec("zero2", 4, grad_accum=3), "A100 80GB", TRAINABLE, FROZEN, LAYERS)
    grads = TRAINABLE * 4
    assert one.bytes_by_collective == {"reduce_scatter_grads": 3 * grads // 4, "all_gather_params_step": 3 * grads // 4}
    assert two.bytes_by_collective["reduce_scatter_grads"] == 3 * one.bytes_by_collective["reduce_scatter_grads"]
    assert two.calls_by_collective["reduce_scatter_grads"] == 3


def test_fsdp_full_shard_gathers_frozen_weights_forward_backward_and_recompute() -> None:
    params = FROZEN + TRAINABLE * 4
    plain = communication_time(_spec("fsdp_full_shard", 2, grad_accum=2), "A6000", TRAINABLE, FROZEN, LAYERS)
    per_gather = 2 * params // 2  # grad_accum x (n-1)/n x params
    assert plain.bytes_by_collective == {
        "all_gather_params_forward": per_gather,
        "all_gather_params_backward": per_gather,
        "reduce_scatter_grads": 2 * (TRAINABLE * 4) // 2,
    }
    assert plain.calls_by_collective["all_gather_params_forward"] == 2 * (LAYERS + 1)
    ckpt = communication_time(
        _spec("fsdp_full_shard", 2, grad_accum=2, grad_ckpt=True), "A6000", TRAINABLE, FROZEN, LAYERS
    )
    assert ckpt.bytes_by_collective["all_gather_params_recompute"] == per_gather
    # 16 GB over PCIe Gen4 per gather: three gathers of 16 GB (two micro-batches x half of 16 GB) at 22.4 GB/s.
    assert ckpt.total_s == pytest.approx(3 * 16e9 / 22.4e9, rel=0.01)
    zero3 = communication_time(_spec("zero3", 2, grad_accum=2), "A6000", TRAINABLE, FROZEN, LAYERS)
    assert zero3.bytes_by_collective == plain.bytes_by_collective


def test_shard_grad_op_keeps_params_after_forward() -> None:
    comm = communication_time(_spec("fsdp_shard_grad_op", 4, grad_ckpt=True), "H100", TRAINABLE, FROZEN, LAYERS)
    assert set(comm.bytes_by_collective) == {"all_gather_params_forward", "reduce_scatter_grads"}
    assert comm.bytes_by_collective["all_gather_params_forward"] == 3 * (FROZEN + TRAINABLE * 4) // 4


def test_fsdp_offload_adds_host_copies() -> None:
    base = _spec("fsdp_full_shard", 2)
    offload = _spec("fsdp_full_shard", 2, fsdp_offload=True)
    plain = communication_time(base, "H100", TRAINABLE, FROZEN, LAYERS)
    off = communication_time(offload, "H100", TRAINABLE, FROZEN, LAYERS)
    shard = (FROZEN + TRAINABLE * 4) // 2
    assert off.bytes_by_collective["host_to_device_params"] == 2 * shard  # forward + backward gathers
    assert off.bytes_by_collective["device_to_host_grads"] == TRAINABLE * 4 // 2
    # H100 SXM's host link is PCIe Gen5 (64 GB/s per direction at 70%).
    assert off.seconds_by_collective["host_to_device_params"] == pytest.approx(2 * shard / (64e9 * 0.7))
    assert off.total_s > plain.total_s
    # Offload copies are exposed even when compute is long.
    long = communication_time(offload, "H100", TRAINABLE, FROZEN, LAYERS, compute_s=1e6)
    assert long.exposed_s == pytest.approx(
        off.seconds_by_collective["host_to_device_params"] + off.seconds_by_collective["device_to_host_grads"]
    )


def test_overlap_hides_comm_up_to_the_compute_time() -> None:
    spec = _spec("fsdp_full_shard", 2, grad_accum=2)
    total = communication_time(spec, "A6000", TRAINABLE, FROZEN, LAYERS).total_s
    hidden = communication_time(spec, "A6000", TRAINABLE, FROZEN, LAYERS, compute_s=10 * total)
    assert hidden.exposed_s == 0.0 and hidden.total_s == pytest.approx(total)
    partly = communication_time(spec, "A6000", TRAINABLE, FROZEN, LAYERS, compute_s=total / 4)
    assert partly.exposed_s == pytest.approx(total * 3 / 4)
    assert partly.overlap_assumption == OVERLAP_ASSUMPTION


def test_ddp_overlaps_only_the_last_backward() -> None:
    spec = _spec("ddp", 2, grad_accum=4)
    comm = communication_time(spec, "RTX 4090", 100_000_000, FROZEN, LAYERS)  # 400 MB of gradients
    total = comm.total_s
    # Window = backward of the last micro-batch = compute / grad_accum x 2/3.
    compute = 4 * 1.5 * total / 2
    assert communication_time(spec, "RTX 4090", 100_000_000, FROZEN, LAYERS, compute_s=compute).exposed_s == (
        pytest.approx(total / 2)
    )
    assert communication_time(spec, "RTX 4090", 100_000_000, FROZEN, LAYERS, compute_s=10 * total).exposed_s == 0


def test_to_json_round_trips_and_rejects_negative_sizes() -> None:
    comm = communication_time(_spec("fsdp_full_shard", 4), resolve_gpu("B200"), TRAINABLE, FROZEN, LAYERS)
    data = json.loads(json.dumps(comm.to_json()))
    assert data["total_s"] == comm.total_s and data["gpus"] == 4 and data["interconnect"] == "nvlink5"
    assert set(data["bytes_by_collective"]) == set(data["seconds_by_collective"]) == set(data["calls_by_collective"])
    assert "assumed" in data["provenance"]["status"]
    with pytest.raises(ValueError, match=">= 0"):
        communication_time(_spec("ddp", 2), "H100", -1, FROZEN, LAYERS)
