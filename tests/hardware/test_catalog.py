from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

import lorabench.hardware
from lorabench.errors import CatalogError
from lorabench.hardware import GpuSpec, gpu_catalog, resolve_gpu
from lorabench.hardware.catalog import INTERCONNECTS, load_gpu_file

GIB = 2**30

REQUIRED = [
    "A5000",
    "A6000",
    "RTX3090",
    "RTX4090",
    "RTX5090",
    "L4",
    "T4",
    "A10G",
    "L40S",
    "A100-40GB",
    "A100-80GB",
    "A100-80GB-PCIe",
    "H100-SXM",
    "H100-PCIe",
    "H200",
    "B200",
]

GOOD_ENTRY = """\
    display_name: Test GPU
    aliases: [TG 1]
    vram_bytes: 1073741824
    bf16_dense_tflops: 10.5
    int8_dense_tops: 21
    sm_count: 8
    memory_bandwidth_gbps: 100
    interconnect: pcie4
    interconnect_gbps: 32
    tdp_w: 75
    source: https://example.com/datasheet.pdf
    checked: "2026-11-28"
"""


def _write(tmp_path: Path, entry: str, name: str = "gpus.yaml", key: str = "TG1") -> Path:
    path = tmp_path / name
    path.write_text(f"schema_version: 1\ngpus:\n  {key}:\n" + textwrap.indent(textwrap.dedent(entry), "    "))
    return path


def test_public_exports() -> None:
    assert lorabench.hardware.__all__ == ["GpuSpec", "gpu_catalog", "resolve_gpu"]
    for name in lorabench.hardware.__all__:
        assert hasattr(lorabench.hardware, name)


def test_every_required_gpu_is_present_and_complete() -> None:
    catalog = gpu_catalog()
    assert set(REQUIRED) <= set(catalog)
    for key, spec in catalog.items():
        assert isinstance(spec, GpuSpec)
        assert spec.key == key
        assert spec.source.startswith("https://")
        assert spec.checked == dt.date(2026, 12, 1)
        assert spec.vram_bytes > 0 and spec.bf16_dense_tflops > 0
        assert spec.memory_bandwidth_gbps > 0 and spec.tdp_w > 0
        assert spec.int8_dense_tops >= spec.bf16_dense_tflops
        assert spec.sm_count > 0 and spec.interconnect in INTERCONNECTS and spec.interconnect_gbps > 0


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("a5000", "A5000"),
        ("RTX A5000", "A5000"),
        ("rtx_a5000", "A5000"),
        ("NVIDIA RTX A6000", "A6000"),
        ("A100", "A100-40GB"),
        ("A100 40GB", "A100-40GB"),
        ("A100-80GB", "A100-80GB"),
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("h100", "H100-SXM"),
        ("H100-SXM", "H100-SXM"),
        ("NVIDIA H100 80GB HBM3", "H100-SXM"),
        ("H100 PCIe", "H100-PCIe"),
        ("H200", "H200"),
        ("RTX 4090", "RTX4090"),
        ("NVIDIA GeForce RTX 3090", "RTX3090"),
        ("Tesla T4", "T4"),
        (" l40s ", "L40S"),
        ("a10g", "A10G"),
        ("RTX 5090", "RTX5090"),
        ("A100 PCIe", "A100-80GB-PCIe"),
        ("B200", "B200"),
        ("HGX B200", "B200"),
    ],
)
def test_names_and_aliases_resolve(name: str, key: str) -> None:
    assert resolve_gpu(name).key == key


def test_cost_catalog_gpu_names_resolve() -> None:
    for name in ("A5000", "A6000", "RTX 4090", "L4", "A100 40GB", "A100 80GB", "H100 SXM", "H200"):
        resolve_gpu(name)


def test_unknown_gpu_lists_what_is_known() -> None:
    with pytest.raises(CatalogError) as info:
        resolve_gpu("GTX 1080")
    message = str(info.value)
    assert message.startswith("unknown GPU 'GTX 1080'; known: A5000, A6000, ")
    assert "H200" in message and "\n" not in message


def test_a10_is_not_the_a10g() -> None:
    with pytest.raises(CatalogError, match="unknown GPU 'A10'"):
        resolve_gpu("A10")


def test_aliases_are_unique_across_entries() -> None:
    seen: dict[str, str] = {}
    for key, spec in gpu_catalog().items():
        for name in (key, *spec.aliases):
            norm = name.lower().replace(" ", "").replace("-", "").replace("_", "")
            assert seen.setdefault(norm, key) == key, f"{name!r} names {seen[norm]} and {key}"


def test_sanity_invariants() -> None:
    c = gpu_catalog()
    tflops = {key: spec.bf16_dense_tflops for key, spec in c.items()}
    assert tflops["H100-SXM"] > tflops["H100-PCIe"] > tflops["A100-80GB"] > tflops["A6000"] > tflops["A5000"]
    assert tflops["A100-40GB"] == tflops["A100-80GB"] == 312
    assert tflops["H200"] == tflops["H100-SXM"]
    assert tflops["L4"] < tflops["L40S"]
    assert c["A100-80GB"].vram_bytes == 80 * GIB
    assert c["A100-40GB"].vram_bytes == 40 * GIB
    assert c["H100-SXM"].vram_bytes == c["H100-PCIe"].vram_bytes == 80 * GIB
    assert c["A5000"].vram_bytes == c["RTX3090"].vram_bytes == c["RTX4090"].vram_bytes == 24 * GIB
    assert c["A6000"].vram_bytes == c["L40S"].vram_bytes == 48 * GIB
    assert c["T4"].vram_bytes == 16 * GIB
    assert c["H200"].vram_bytes == 141 * 10**9
    bandwidth = {key: spec.memory_bandwidth_gbps for key, spec in c.items()}
    assert bandwidth["H200"] > bandwidth["H100-SXM"] > bandwidth["A100-80GB"] > bandwidth["A100-40GB"]
    assert bandwidth["A100-40GB"] > bandwidth["RTX4090"] > bandwidth["A5000"] > bandwidth["L4"]


def test_dense_figures_are_not_sparse_ones() -> None:
    c = gpu_catalog()
    assert c["H100-SXM"].bf16_dense_tflops == pytest.approx(1979 / 2)
    assert c["L4"].bf16_dense_tflops == pytest.approx(242 / 2)
    for key in ("T4", "L4", "H100-SXM", "H100-PCIe", "H200", "RTX3090", "RTX4090", "A5000", "A6000", "A10G"):
        assert c[key].note, f"{key} needs a note saying which figure was used"


def test_geforce_bf16_is_the_fp32_accumulate_rate() -> None:
    c = gpu_catalog()
    # Whitepaper FP32-accumulate figures: half the FP16-accumulate ones (142, 330.3, 419 dense).
    assert c["RTX3090"].bf16_dense_tflops == 71
    assert c["RTX4090"].bf16_dense_tflops == pytest.approx(330.3 / 2, abs=0.1)
    assert c["RTX5090"].bf16_dense_tflops == pytest.approx(419 / 2)
    for key in ("RTX3090", "RTX4090", "RTX5090"):
        assert "fp32 accumulate" in (c[key].note or "").lower().replace("-", " ")


def test_int8_sm_and_interconnect_figures() -> None:
    c = gpu_catalog()
    assert c["H100-SXM"].int8_dense_tops == pytest.approx(3958 / 2)
    assert c["L40S"].int8_dense_tops == 733
    assert c["A100-80GB"].int8_dense_tops == 2 * c["A100-80GB"].bf16_dense_tflops
    assert c["T4"].int8_dense_tops == 130
    assert (c["A100-80GB"].sm_count, c["H100-SXM"].sm_count, c["RTX4090"].sm_count) == (108, 132, 128)
    # NVLink parts: the bidirectional datasheet figure halved; PCIe parts: the x16 link per direction.
    assert (c["A100-80GB"].interconnect, c["A100-80GB"].interconnect_gbps) == ("nvlink3", 300)
    assert (c["H100-SXM"].interconnect, c["H100-SXM"].interconnect_gbps) == ("nvlink4", 450)
    assert (c["H200"].interconnect, c["H200"].interconnect_gbps) == ("nvlink4", 450)
    assert (c["B200"].interconnect, c["B200"].interconnect_gbps) == ("nvlink5", 900)
    assert (c["H100-PCIe"].interconnect, c["H100-PCIe"].interconnect_gbps) == ("pcie5", 64)
    assert (c["RTX5090"].interconnect, c["RTX5090"].interconnect_gbps) == ("pcie5", 64)
    assert (c["T4"].interconnect, c["T4"].interconnect_gbps) == ("pcie3", 16)
    for key in ("A5000", "A6000", "RTX3090", "RTX4090", "L4", "A10G", "L40S", "A100-80GB-PCIe"):
        assert (c[key].interconnect, c[key].interconnect_gbps) == ("pcie4", 32), key


def test_spec_is_frozen() -> None:
    spec = resolve_gpu("a5000")
    with pytest.raises(ValueError):
        spec.tdp_w = 1


def test_good_user_file_loads(tmp_path: Path) -> None:
    specs = load_gpu_file(_write(tmp_path, GOOD_ENTRY))
    assert list(specs) == ["TG1"]
    assert specs["TG1"].checked == dt.date(2026, 11, 28)
    assert specs["TG1"].note is None


@pytest.mark.parametrize(
    ("edit", "field", "why"),
    [
        (lambda e: e.replace("source: https://example.com/datasheet.pdf\n", ""), "source", "required"),
        (lambda e: e.replace("https://example.com/datasheet.pdf", '""'), "source", "at least 1 character"),
        (lambda e: e.replace("https://example.com/datasheet.pdf", "datasheet.pdf"), "source", "URL"),
        (lambda e: e.replace("10.5", "-10.5"), "bf16_dense_tflops", "greater than 0"),
        (lambda e: e.replace("10.5", "0"), "bf16_dense_tflops", "greater than 0"),
        (lambda e: e.replace("10.5", '"10.5"'), "bf16_dense_tflops", "valid number"),
        (lambda e: e.replace('checked: "2026-11-28"\n', ""), "checked", "required"),
        (lambda e: e.replace('"2026-11-28"', '"soon"'), "checked", "date"),
        (lambda e: e.replace("1073741824", "1.5"), "vram_bytes", "valid integer"),
        (lambda e: e.replace("tdp_w: 75", "tdp_w: -75"), "tdp_w", "greater than 0"),
        (lambda e: e.replace("memory_bandwidth_gbps: 100", "memory_bandwidth_gbps: .nan"), "memory_bandwidth", ""),
        (lambda e: e + "colour: green\n", "colour", "Extra inputs"),
        (lambda e: e.replace("int8_dense_tops: 21\n", ""), "int8_dense_tops", "required"),
        (lambda e: e.replace("sm_count: 8\n", ""), "sm_count", "required"),
        (lambda e: e.replace("sm_count: 8", "sm_count: 8.5"), "sm_count", "valid integer"),
        (lambda e: e.replace("interconnect: pcie4\n", ""), "interconnect", "required"),
        (lambda e: e.replace("interconnect: pcie4", "interconnect: infiniband"), "interconnect", "'nvlink4'"),
        (lambda e: e.replace("interconnect_gbps: 32\n", ""), "interconnect_gbps", "required"),
    ],
)
def test_bad_user_file_names_file_entry_and_field(tmp_path: Path, edit: object, field: str, why: str) -> None:
    assert callable(edit)
    path = _write(tmp_path, edit(textwrap.dedent(GOOD_ENTRY)), name="bad-gpus.yaml")
    with pytest.raises(CatalogError) as info:
        load_gpu_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: gpus.TG1: ")
    assert field in message
    assert why in message


def test_bad_file_reports_every_broken_field_on_one_line(tmp_path: Path) -> None:
    entry = textwrap.dedent(GOOD_ENTRY).replace("10.5", "-1").replace('checked: "2026-11-28"\n', "")
    with pytest.raises(CatalogError) as info:
        load_gpu_file(_write(tmp_path, entry.replace("source: https://example.com/datasheet.pdf\n", "")))
    message = str(info.value)
    assert "\n" not in message
    for field in ("bf16_dense_tflops", "source", "checked"):
        assert field in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("gpus: [\n", "malformed YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("gpus: {}\n", "schema_version: required"),
        ("schema_version: 2\ngpus: {X: {}}\n", "schema_version"),
        ("schema_version: 1\ngpus: {}\n", "gpus"),
        ("schema_version: 1\ngpus:\n  X: 3\n", "gpus.X: expected a mapping"),
    ],
)
def test_malformed_files_fail_loudly(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_gpu_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_gpu_file(tmp_path / "nope.yaml")


def test_duplicate_entries_and_aliases_are_rejected(tmp_path: Path) -> None:
    entry = textwrap.indent(textwrap.dedent(GOOD_ENTRY), "    ")
    path = tmp_path / "dup.yaml"
    path.write_text(f"schema_version: 1\ngpus:\n  TG1:\n{entry}  TG1:\n{entry}")
    with pytest.raises(CatalogError, match="duplicate key 'TG1'"):
        load_gpu_file(path)
    path.write_text(f"schema_version: 1\ngpus:\n  TG1:\n{entry}  TG-2:\n{entry}")
    with pytest.raises(CatalogError, match=r"gpus\.TG-2: aliases: 'TG 1' already names entry 'TG1'"):
        load_gpu_file(path)


def test_packaged_file_validates_as_a_user_file() -> None:
    packaged = Path(lorabench.hardware.__file__).parent / "catalog" / "gpus.yaml"
    assert load_gpu_file(packaged) == gpu_catalog()
