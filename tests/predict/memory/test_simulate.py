"""The memory simulation: tracker mechanics, kernel choices, and the CPU simulation against real CPU training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lorabench.errors import ConfigError
from lorabench.predict.memory.params import account
from lorabench.predict.memory.simulation.engine import (
    CUDA_BLOCK_BYTES,
    SIM_COMPONENTS,
    cublas_workspace_bytes,
    simulate,
)
from lorabench.predict.memory.simulation.kernels import cuda_attention_backend, cuda_sdpa
from lorabench.predict.memory.simulation.tracker import StorageTracker, round_up
from lorabench.predict.memory.simulation.validate import measure_cpu_peak
from lorabench.spec import RunSpec, parse_spec

META = torch.device("meta")
MIB = 2**20
REPO = Path(__file__).resolve().parents[3]
H200_RESULTS = REPO / "results" / "gpu" / "h200-2026-11-28" / "gpu_validation.json"


def _spec(**raw: Any) -> RunSpec:
    values: dict[str, Any] = {"model": "tiny", "micro_batch": 2, "seq_len": 64}
    values.update(raw)
    return parse_spec(values)


# ---------------------------------------------------------------- tracker
def test_round_up_to_allocator_blocks() -> None:
    assert [round_up(n, 512) for n in (0, 1, 511, 512, 513)] == [0, 512, 512, 512, 1024]
    assert round_up(7, 1) == 7


def test_tracker_counts_fresh_storages_once_and_frees_them() -> None:
    tracker = StorageTracker()
    with tracker:
        a = torch.empty(100, device=META)  # 400 B
        tracker.set_phase("forward")
        view = a.view(10, 10)  # a view: no allocation
        a.add_(1)  # in place: no allocation
        b = a + 1  # 400 B
        del b
        c = torch.empty(50, dtype=torch.float16, device=META)  # 100 B
    peak = tracker.replay()
    assert (peak.total_bytes, peak.final_bytes, peak.phase) == (800, 500, "forward")
    assert sum(peak.breakdown.values()) == peak.total_bytes
    del view, c


def test_tracker_rounds_blocks_and_classifies_by_forward_region() -> None:
    tracker = StorageTracker(granularity=CUDA_BLOCK_BYTES)
    with tracker:
        weight = torch.empty(10, device=META)
        tracker.track(weight, "weights")
        tracker.set_phase("forward")
        tracker.begin_region()
        kept = torch.empty(1000, device=META)  # outlives the region: an activation
        scratch = torch.empty(2000, device=META)  # freed inside it: a temporary
        del scratch
        tracker.end_region()
        tracker.set_phase("backward")
        grad = torch.empty(3000, device=META)
    peak = tracker.replay()
    assert peak.phase == "backward"
    assert peak.breakdown["weights"] == 512
    assert peak.breakdown["activations"] == 4096
    assert peak.breakdown["temporaries"] == 12288  # the backward buffer, never in a forward region
    del kept, grad


# ---------------------------------------------------------------- CUDA attention kernels
def test_cuda_attention_backend_follows_pytorch_dispatch() -> None:
    bf16 = torch.empty(1, 4, 16, 64, dtype=torch.bfloat16, device=META)
    bf16_kv = torch.empty(1, 2, 16, 64, dtype=torch.bfloat16, device=META)
    fp32 = bf16.float()
    fp32_kv = bf16_kv.float()
    mask = torch.ones(1, 1, 16, 16, dtype=torch.bool, device=META)
    assert cuda_attention_backend(bf16, bf16_kv, None, enable_gqa=True) == "flash"
    assert cuda_attention_backend(bf16, bf16, mask, enable_gqa=False) == "efficient"
    assert cuda_attention_backend(fp32, fp32, None, enable_gqa=False) == "efficient"
    assert cuda_attention_backend(fp32, fp32_kv, None, enable_gqa=True) == "math"  # efficient has no GQA


def _saved_by_attention(dtype: torch.dtype) -> int:
    tracker = StorageTracker()
    with tracker:
        q = torch.empty(1, 4, 128, 64, dtype=dtype, device=META, requires_grad=True)
        kv = torch.empty(1, 2, 128, 64, dtype=dtype, device=META, requires_grad=True)
        tracker.set_phase("forward")
        tracker.begin_region()
        out = cuda_sdpa(q, kv, kv, is_causal=True, enable_gqa=True)
        tracker.end_region()
    peak = tracker.replay()
    del out
    return peak.breakdown["activations"]


def test_cuda_flash_attention_keeps_no_square_matrix() -> None:
    out_and_lse = 4 * 128 * 64 * 2 + 4 * 128 * 4
    assert _saved_by_attention(torch.bfloat16) == out_and_lse
    # fp32 with grouped-query attention falls to the math path, which does keep s x s probabilities
    assert _saved_by_attention(torch.float32) > 4 * 128 * 128 * 4


# ---------------------------------------------------------------- simulate()
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_result_is_self_consistent(device: str) -> None:
    result = simulate(_spec(), device)  # type: ignore[arg-type]
    assert result.engine == "simulate" and result.device == device
    assert tuple(result.breakdown) == SIM_COMPONENTS
    assert sum(result.breakdown.values()) == result.peak_allocated_bytes
    assert result.peak_phase in ("forward", "backward", "optimizer")
    assert result.paged_optimizer_bytes == 0 and result.seconds > 0
    assert (result.micro_batch, result.seq_len, result.padding) == (2, 64, "padded")
    if device == "cuda":
        assert result.peak_allocated_bytes % CUDA_BLOCK_BYTES == 0
        assert result.cublas_workspace_bytes == 64 * MIB  # no GPU named: Hopper's 2 x 32 MiB
        assert result.breakdown["temporaries"] > result.cublas_workspace_bytes
    else:
        assert result.cublas_workspace_bytes == 0


def test_cublas_workspaces_follow_pytorch_defaults() -> None:
    assert cublas_workspace_bytes("NVIDIA H200") == cublas_workspace_bytes("h100-80gb") == 64 * MIB
    assert cublas_workspace_bytes("RTX A5000") == 2 * (8 * MIB + 128 * 1024)


def test_static_components_match_the_accounting() -> None:
    acc = account(_spec())
    sixteen = simulate(_spec(), "cpu")
    assert sixteen.breakdown["weights"] == acc.base_bytes(16)
    assert sixteen.breakdown["adapter"] == acc.adapter_bytes
    four = simulate(_spec(method="qlora", bits=4), "cpu")
    assert four.breakdown["quant_constants"] == acc.constant_bytes(4)
    # k-bit preparation upcasts every parameter it does not quantize (bf16 -> fp32): their bf16 bytes again
    quantized_bf16 = 2 * sum(c.quantized_params for c in acc.components)
    buffers = sum(c.bytes_by_bits[16] for c in acc.components if c.name == "buffers")  # fp32 already
    unquantized_params = acc.base_bytes(16) - quantized_bf16 - buffers
    packed = acc.base_bytes(4) - acc.constant_bytes(4)
    assert four.breakdown["weights"] == packed + unquantized_params


def test_checkpointing_cuts_activations() -> None:
    plain = simulate(_spec(seq_len=128), "cuda")
    ckpt = simulate(_spec(seq_len=128, grad_ckpt=True), "cuda")
    assert ckpt.breakdown["activations"] < plain.breakdown["activations"] / 2
    assert ckpt.peak_allocated_bytes < plain.peak_allocated_bytes


def test_paged_optimizer_state_is_reported_apart_on_cuda() -> None:
    spec = _spec(method="qlora", bits=4, rank=512, optimizer="paged_adamw_8bit")
    cuda = simulate(spec, "cuda")
    # 8-bit states (two uint8 per element) of the adapter tensors of at least 1e5 elements, bitsandbytes'
    # paging threshold: q's A and B, k's and v's A (512 x 256 each), in each of the 4 layers
    assert cuda.paged_optimizer_bytes == 4 * 4 * 2 * 512 * 256
    assert simulate(spec, "cpu").paged_optimizer_bytes == 0  # bitsandbytes does not page on a CPU


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"device": "tpu"}, "device must be"),
        ({"micro_batch": 0}, "micro_batch must be a positive integer"),
        ({"seq_len": -3}, "seq_len must be a positive integer"),
        ({"padding": "ragged"}, "padding must be"),
    ],
)
def test_bad_arguments_are_config_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        simulate(_spec(), **raw)


# ---------------------------------------------------------------- against real CPU training
slow = pytest.mark.slow
VALIDATION = [
    pytest.param({"method": "lora", "bits": 16}, False, id="lora-16bit"),
    pytest.param({"method": "lora", "bits": 16}, True, id="lora-16bit-ckpt"),
    pytest.param({"method": "dora", "bits": 16}, False, id="dora-16bit"),
    pytest.param({"method": "dora", "bits": 16}, True, id="dora-16bit-ckpt", marks=slow),
    pytest.param({"method": "qlora", "bits": 4}, False, id="qlora-4bit", marks=slow),
    pytest.param({"method": "qlora", "bits": 4}, True, id="qlora-4bit-ckpt", marks=slow),
    pytest.param({"method": "lora", "bits": 8}, False, id="lora-8bit", marks=slow),
    pytest.param({"method": "lora", "bits": 8}, True, id="lora-8bit-ckpt", marks=slow),
]


@pytest.mark.integration
@pytest.mark.parametrize(("raw", "ckpt"), VALIDATION)
def test_cpu_simulation_matches_a_real_cpu_step(raw: dict[str, Any], ckpt: bool) -> None:
    spec = _spec(seq_len=128, grad_ckpt=ckpt, **raw)
    measured = measure_cpu_peak(spec, task="sentiment")
    assert measured.padded  # short records: the batch is padded to seq_len, as the runner pads
    simulated = simulate(spec, "cpu", padding="padded")
    assert simulated.peak_allocated_bytes == pytest.approx(measured.peak_bytes, rel=0.10)


@pytest.mark.slow
@pytest.mark.parametrize("bits", [16, 4])
def test_cuda_simulation_matches_h200_measurements(bits: int) -> None:
    """Llama-3.1-8B LoRA r8 q/k/v, batch 4, seq 512, checkpointing, no padding: torch.cuda.max_memory_allocated."""
    if not H200_RESULTS.is_file():
        pytest.skip(f"no GPU measurements at {H200_RESULTS}")
    import json

    rows = json.loads(H200_RESULTS.read_text())["rows"]
    row = next(r for r in rows if (r["bits"], r["rank"], r["batch"], r["seq_len"]) == (bits, 8, 4, 512))
    spec = parse_spec(
        {"model": "llama-3.1-8b", "bits": bits, "rank": 8, "micro_batch": 4, "seq_len": 512, "grad_ckpt": True}
    )
    simulated = simulate(spec, "cuda", padding="packed")
    assert simulated.peak_allocated_bytes == pytest.approx(row["max_memory_allocated_bytes"], rel=0.01)
