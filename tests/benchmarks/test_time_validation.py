from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lorabench.hardware import resolve_gpu
from lorabench.models import resolve_model

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("time_validation", REPO / "benchmarks" / "time_validation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["time_validation"] = module
    spec.loader.exec_module(module)
    return module


tv = _load()


def test_published_rows_are_complete_and_resolve() -> None:
    rows = tv.load_rows()
    assert len(rows) >= 10
    assert len({row["gpu"] for row in rows}) >= 4
    assert {row["bits"] for row in rows} >= {16, 4}
    assert any(row["gpu_count"] > 1 and resolve_gpu(row["gpu"]).interconnect.startswith("pcie") for row in rows)
    for row in rows:
        resolve_gpu(row["gpu"])
        resolve_model(row["lorabench_model"])
        assert row["source"].startswith("https://github.com/") and row["quote"].strip()
        value, unit = row["measured"]["value"], row["measured"]["unit"]
        shown = {
            "tokens_per_s": str(int(value)),
            "s_per_step": f"{value}s/it",
            "min_per_1k_iterations": f"{value} min",
            "hours_per_run": f"{value}h",
            "s_per_run": f"{value:,}",
        }
        assert shown[unit] in row["quote"], row["id"]  # the figure is the one quoted


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "r",
        "micro_batch": 1,
        "grad_accum": 8,
        "seq_len": 2048,
        "gpu_count": 2,
        "measured": {"value": 5.2, "unit": "s_per_step", "scope": "per_gpu"},
    }
    row.update(changes)
    return row


def test_measured_figures_convert_to_tokens_per_s_per_gpu() -> None:
    assert tv.tokens_per_step_per_gpu(_row()) == 8 * 2048
    assert tv.measured_tokens_per_s_per_gpu(_row()) == pytest.approx(8 * 2048 / 5.2)
    total = _row(measured={"value": 3384, "unit": "tokens_per_s", "scope": "total"})
    assert tv.measured_tokens_per_s_per_gpu(total) == 3384 / 2
    unknown = _row(measured={"value": 3384, "unit": "tokens_per_s", "scope": "unknown"})
    assert tv.measured_tokens_per_s_per_gpu(unknown) == 3384
    litgpt = _row(grad_accum=None, seq_len=None, measured={"value": 2.36, "unit": "min_per_1k_iterations"})
    assert tv.measured_tokens_per_s_per_gpu(litgpt) is None
    with_len = _row(grad_accum=4, seq_len=512, measured={"value": 2.0, "unit": "min_per_1k_iterations"})
    assert tv.measured_tokens_per_s_per_gpu(with_len) == pytest.approx(1000 * 512 / 120)
    run = _row(run_tokens=None, measured={"value": 14.9, "unit": "hours_per_run", "scope": "total"})
    assert tv.measured_tokens_per_s_per_gpu(run) is None
    run["run_tokens"] = 104_000_000
    assert tv.measured_tokens_per_s_per_gpu(run) == pytest.approx(104e6 / (14.9 * 3600) / 2)
    seconds = _row(run_tokens=1024 * 2048, measured={"value": 437, "unit": "s_per_run", "scope": "total"})
    assert tv.measured_tokens_per_s_per_gpu(seconds) == pytest.approx(1024 * 2048 / 437 / 2)


def test_bad_files_name_the_row(tmp_path: Path) -> None:
    rows = tv.load_rows()
    good = dict(rows[0])
    path = tmp_path / "rows.yaml"
    import yaml

    del good["quote"]
    path.write_text(yaml.safe_dump({"schema_version": 1, "rows": [good]}))
    with pytest.raises(tv.RowError, match=f"row {rows[0]['id']}: missing quote"):
        tv.load_rows(path)
    bad_unit = {**rows[0], "measured": {"value": 1, "unit": "furlongs"}}
    path.write_text(yaml.safe_dump({"schema_version": 1, "rows": [bad_unit]}))
    with pytest.raises(tv.RowError, match=r"measured\.unit"):
        tv.load_rows(path)
    path.write_text(yaml.safe_dump({"schema_version": 1, "rows": [rows[0], rows[0]]}))
    with pytest.raises(tv.RowError, match="id given twice"):
        tv.load_rows(path)


def test_compare_and_summaries() -> None:
    rows = [r for r in tv.load_rows() if r["id"].startswith(("qwen-a100-qwen7b-lora", "litgpt-a100-40-llama2-7b-lora"))]
    measured = {r["id"]: tv.measured_tokens_per_s_per_gpu(r) for r in rows}

    def plus_ten_percent(spec: Any, row: dict[str, Any]) -> float:
        assert spec.seq_len == row["seq_len"] and spec.grad_accum == row["grad_accum"]
        return 1.1 * float(measured[row["id"]])

    def banded(spec: Any, row: dict[str, Any]) -> tuple[float, tuple[float, float]]:
        m = float(measured[row["id"]])
        return 0.8 * m, (0.7 * m, 0.9 * m) if row["seq_len"] == 256 else (0.9 * m, 1.1 * m)

    engines = {"ten": plus_ten_percent, "flops_eff": tv.flops_eff_tokens_per_s_per_gpu, "banded": banded}
    result = tv.compare(rows, engines)
    skipped = [c for c in result if c.skipped]
    assert [c.id for c in skipped] == ["litgpt-a100-40-llama2-7b-lora"]
    compared = [c for c in result if not c.skipped]
    assert compared and all(c.error["ten"] == pytest.approx(0.1) for c in compared)
    assert all(c.predicted_tokens_per_s_per_gpu["flops_eff"] > 0 for c in compared)
    summary = tv.summarise(result, "ten", "family")
    assert summary["A100"]["rows"] == len(compared)
    assert summary["A100"]["median_abs_error"] == pytest.approx(0.1)
    assert "banded" not in summary["A100"]
    band_summary = tv.summarise(result, "banded", "family")["A100"]
    assert band_summary["banded"] == len(compared)
    assert band_summary["in_band"] == len(compared) - 1  # the 256-token row's band excludes the measured figure
    assert band_summary["median_abs_error"] == pytest.approx(0.2)
    text = tv.render(result, ["ten", "flops_eff", "banded"])
    assert "median 10%" in text and "no tokens per step" in text and f"in band {len(compared) - 1}/" in text
