from __future__ import annotations

from typing import Any

import pytest

from lorabench.errors import CatalogError, ConfigError
from lorabench.hardware.catalog import resolve_gpu
from lorabench.predict.fit import DEFAULT_MAX_VALUE, FitResult, device_total, largest_fitting
from lorabench.spec import RunSpec, parse_spec


def _spec(**raw: Any) -> RunSpec:
    values: dict[str, Any] = {"model": "llama-3.1-8b", "bits": 4, "method": "qlora", "micro_batch": 4, "seq_len": 512}
    values.update(raw)
    return parse_spec(values)


def _on(spec: RunSpec, gpu: str) -> RunSpec:
    """The spec on ``gpu`` (its cuBLAS workspaces are part of the peak)."""
    return spec.model_copy(update={"hardware": spec.hardware.model_copy(update={"gpu": resolve_gpu(gpu).key})})


def _brute(spec: RunSpec, vram: int, what: str, limit: int, step: int = 1) -> int | None:
    """The largest value with a device total <= vram, walking up from 1 (or None)."""
    best = None
    value = 1
    while value <= limit:
        total = (
            device_total(spec, value, spec.seq_len) if what == "batch" else device_total(spec, spec.micro_batch, value)
        )
        if total > vram:
            break
        best = value
        value += step
    return best


@pytest.mark.parametrize(
    ("gpu", "raw"),
    [("T4", {"grad_ckpt": True}), ("A5000", {}), ("L4", {"bits": 8, "method": "lora", "grad_ckpt": True})],
)
def test_batch_search_matches_brute_force(gpu: str, raw: dict[str, Any]) -> None:
    spec = _spec(**raw)
    found = largest_fitting(spec, gpu, "batch")
    vram = resolve_gpu(gpu).vram_bytes
    assert found.value == _brute(_on(spec, gpu), vram, "batch", 10_000)
    assert found.value is not None and found.device_total_bytes is not None
    assert found.device_total_bytes <= vram < (found.next_device_total_bytes or 0)
    assert found.next_value == found.value + 1
    assert found.fixed_seq_len == 512 and found.engine == "formula" and found.gpu == resolve_gpu(gpu).key


def test_seq_len_search_matches_brute_force() -> None:
    spec = _spec(micro_batch=8)
    found = largest_fitting(spec, "A5000", "seq_len")
    vram = resolve_gpu("A5000").vram_bytes
    assert found.value is not None and found.value > 1
    on_gpu = _on(spec, "A5000")
    assert found.value == _brute(on_gpu, vram, "seq_len", 1_000_000)
    assert device_total(on_gpu, 8, found.value) <= vram < device_total(on_gpu, 8, found.value + 1)
    assert found.fixed_batch == 8


def test_nothing_fits_says_so() -> None:
    spec = _spec(model="llama-3.1-70b", bits=16, method="lora")
    found = largest_fitting(spec, "T4", "batch")
    assert found.value is None and not found.fits
    assert found.device_total_bytes is None
    assert found.next_value == 1 and found.next_device_total_bytes == found.device_total_at_one_bytes
    assert found.device_total_at_one_bytes > found.vram_bytes
    assert found.message().startswith("even a micro batch of 1 does not fit on T4")


def test_search_stops_at_the_cap() -> None:
    spec = parse_spec({"model": "tiny", "micro_batch": 1, "seq_len": 64})
    found = largest_fitting(spec, "H200", "batch", max_value=100)
    assert (found.value, found.next_value, found.next_device_total_bytes) == (100, None, None)
    assert "search cap 100" in found.message()
    assert largest_fitting(spec, "H200", "seq_len", max_value=1).value == 1
    assert DEFAULT_MAX_VALUE == {"batch": 1_000_000, "seq_len": 10_000_000}


def test_more_gpus_use_ddp_per_gpu() -> None:
    spec = _spec()
    single = largest_fitting(spec, "A5000", "batch")
    ddp = largest_fitting(spec, "A5000", "batch", gpus=4)
    assert (ddp.gpus, ddp.parallelism) == (4, "ddp")
    assert ddp.value is not None and single.value is not None and ddp.value <= single.value  # DDP adds buckets
    zero3 = largest_fitting(_spec(bits=16, method="lora", parallelism="zero3", hardware={"count": 4}), "T4", "batch")
    assert zero3.gpus == 4 and zero3.value is not None  # 16 GB of bf16 weights fit only when sharded


def test_bad_input_is_a_lorabench_error() -> None:
    spec = _spec()
    with pytest.raises(CatalogError, match="unknown GPU"):
        largest_fitting(spec, "Z9000", "batch")
    with pytest.raises(ConfigError, match="what must be"):
        largest_fitting(spec, "T4", "tokens")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="gpus must be"):
        largest_fitting(spec, "T4", "batch", gpus=0)
    with pytest.raises(ConfigError, match="max_value must be"):
        largest_fitting(spec, "T4", "batch", max_value=0)


def test_result_is_json_ready() -> None:
    found = largest_fitting(_spec(), "H100", "batch")
    data = found.to_dict()
    assert isinstance(found, FitResult)
    assert data["fits"] is True and data["value"] == found.value and data["engine"] == "formula"
    assert found.message().startswith(f"largest micro batch: {found.value} (")
