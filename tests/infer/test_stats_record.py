from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorabench.errors import MeasurementError
from lorabench.infer.record import read_infer_record, record_name, slowdowns, summary_row, write_infer_record
from lorabench.infer.stats import percentile, summarize


def test_percentile_matches_linear_interpolation() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 90) == pytest.approx(3.7)
    with pytest.raises(ValueError):
        percentile([], 50)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=30))
def test_summary_is_ordered(values: list[float]) -> None:
    s = summarize(values)
    assert s is not None
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert s["min"] <= s["mean"] * (1 + 1e-9) + 1e-9


def _record(variant: str, tps: float | None, status: str = "ok") -> dict[str, object]:
    return {
        "status": status,
        "variant": variant,
        "device": "cpu",
        "cell": {"batch_size": 4, "prompt_len": 32, "max_new_tokens": 16},
        "metrics": {"output_tokens_per_s": tps, "ttft_s": {"p50": 0.01}},
        "cost": {"cost_per_1m_output_tokens_usd": None},
    }


def test_slowdowns_against_base_and_unmerged() -> None:
    rows = [summary_row(_record(v, t)) for v, t in (("base", 100.0), ("unmerged", 50.0), ("multi", 40.0))]
    rows.append(summary_row(_record("merged", None)))  # unknown throughput: no slowdown, never 0
    found = {(s["variant"], s["reference"]): s["slowdown_pct"] for s in slowdowns(rows)}
    assert found == {
        ("unmerged", "base"): pytest.approx(100.0),
        ("multi", "base"): pytest.approx(150.0),
        ("multi", "unmerged"): pytest.approx(25.0),
    }


def test_record_round_trip(tmp_path: Path) -> None:
    path = write_infer_record(tmp_path, _record("base", 10.0))
    assert path.name == record_name("base", 4, 32, 16) == "infer-base-b4-p32-n16.json"
    record = read_infer_record(path)
    assert record["schema"] == "lorabench.infer" and record["schema_version"] == 1
    (tmp_path / "other.json").write_text('{"schema": "lorabench.run"}')
    with pytest.raises(MeasurementError, match="not a lorabench inference record"):
        read_infer_record(tmp_path / "other.json")
