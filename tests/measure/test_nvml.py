from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from lorabench.measure.trackers.nvml import load_nvml, nvml_handles, visible_devices


class _NVMLError(Exception):
    pass


def fake_nvml(uuids: list[str]) -> Any:
    """A pynvml-like module: handles are NVML indices; UUID lookups need the whole UUID."""

    def by_index(index: int) -> int:
        if not 0 <= index < len(uuids):
            raise _NVMLError("invalid argument")
        return index

    def by_uuid(uuid: str) -> int:
        if uuid not in uuids:
            raise _NVMLError("not found")
        return uuids.index(uuid)

    return SimpleNamespace(
        NVMLError=_NVMLError,
        nvmlDeviceGetCount=lambda: len(uuids),
        nvmlDeviceGetHandleByIndex=by_index,
        nvmlDeviceGetHandleByUUID=by_uuid,
        nvmlDeviceGetUUID=lambda handle: uuids[handle],
    )


UUIDS = ["GPU-aaaa-0", "GPU-bbbb-1", "GPU-cccc-2", "GPU-dddd-3"]


def test_visible_devices_parsing() -> None:
    assert visible_devices({}) is None
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "2, 0"}) == ["2", "0"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"]  # CUDA stops at the first invalid entry
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "GPU-bbbb,3"}) == ["GPU-bbbb", "3"]


def test_uuid_from_torch_wins_over_the_environment() -> None:
    nvml = fake_nvml(UUIDS)
    # torch reports the UUID without the GPU- prefix; CUDA's order differs from NVML's.
    handles = nvml_handles(nvml, [0, 1], ["cccc-2", "aaaa-0"], {"CUDA_VISIBLE_DEVICES": "0,1"})
    assert handles == [2, 0]


def test_environment_maps_cuda_indices_to_nvml_devices() -> None:
    nvml = fake_nvml(UUIDS)
    env = {"CUDA_VISIBLE_DEVICES": "3,GPU-bbbb"}  # an index and a unique UUID prefix
    assert nvml_handles(nvml, [0, 1], [None, None], env) == [3, 1]
    assert nvml_handles(nvml, [1], [None], {}) == [1]  # unset: CUDA index = NVML index


def test_unmatched_devices_are_none_not_another_gpu() -> None:
    nvml = fake_nvml(UUIDS)
    assert nvml_handles(nvml, [0, 1], [None, None], {"CUDA_VISIBLE_DEVICES": "7"}) == [None, None]
    assert nvml_handles(nvml, [0], ["eeee"], {"CUDA_VISIBLE_DEVICES": "GPU-"}) == [None]  # ambiguous prefix


def test_load_nvml_reports_why_it_is_missing() -> None:
    nvml, reason = load_nvml()
    if nvml is None:
        assert reason and ("not installed" in reason or "cannot start" in reason)
    else:
        assert reason is None
        nvml.nvmlShutdown()


def test_cuda_sampler_refuses_without_cuda() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    from lorabench.errors import MeasurementError
    from lorabench.measure.trackers import CudaNvmlSampler

    with pytest.raises(MeasurementError, match="needs CUDA"):
        CudaNvmlSampler()
