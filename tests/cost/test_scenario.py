from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorabench.cost import count_tokens, evaluate, load_catalog, load_scenario
from lorabench.errors import CatalogError, ConfigError, DataError

SEED = """
dataset: {tokens: 26000000, examples: 167000}
epochs: 4
self_hosted:
  - {name: LoRA, hours: 14.9, gpu: A5000, count: 4, usd_per_gpu_hour: 0.26}
  - {name: QLoRA, hours: 14.1, gpu: A5000, count: 4, usd_per_gpu_hour: 0.26}
  - {name: DoRA, hours: 15.9, gpu: A5000, count: 4, usd_per_gpu_hour: 0.26}
  - {name: rsLoRA, hours: 14.5, gpu: A5000, count: 4, usd_per_gpu_hour: 0.26}
services: [gpt-4o-mini]
references: [bloomberggpt]
"""


def _rows(tmp_path: Path, text: str) -> list:  # type: ignore[type-arg]
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return evaluate(load_scenario(path), load_catalog())


def test_seed_cost_table(tmp_path: Path) -> None:
    rows = {r.name: r for r in _rows(tmp_path, SEED)}
    assert [round(rows[n].cost_usd, 2) for n in ("LoRA", "QLoRA", "DoRA", "rsLoRA")] == [15.50, 14.66, 16.54, 15.08]
    assert rows["LoRA"].gpu_hours == pytest.approx(59.6)
    assert rows["LoRA"].time_s == pytest.approx(14.9 * 3600)
    assert rows["LoRA"].provenance["time_s"] == {"kind": "input"}
    assert rows["LoRA"].provenance["cost_usd"]["kind"] == "input"
    gpt = rows["GPT-4o-mini"]
    assert gpt.cost_usd == pytest.approx(312.00)
    assert gpt.epochs == 4
    assert gpt.billed_tokens == 104_000_000
    assert gpt.time_s is None  # unknown, not 0
    assert gpt.provenance["cost_usd"]["entry"] == "gpt-4o-mini"
    assert gpt.provenance["cost_usd"]["source"].startswith("https://")
    default = rows["GPT-4o-mini (provider default: 1 epoch)"]
    assert default.cost_usd == pytest.approx(78.00)
    assert default.provenance["epochs"]["kind"] == "rule"
    bbg = rows["BloombergGPT"]
    assert bbg.gpu_hours == pytest.approx(651_264)
    assert bbg.cost_usd == pytest.approx(2_667_577, rel=1e-4)
    assert bbg.provenance["cost_usd"]["entry"] == "aws-p4d-a100-40gb"
    assert rows["QLoRA"].x_vs_cheapest_self_hosted == pytest.approx(1.0)
    assert gpt.x_vs_cheapest_self_hosted == pytest.approx(312 / 14.664)
    assert bbg.reduction_pct == pytest.approx(100 * (1 - 14.664 / bbg.cost_usd))


def test_no_epochs_applies_the_provider_rule_and_says_so(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "dataset: {tokens: 1000000, examples: 20}\nservices: [gpt-4o-mini]\n")
    assert len(rows) == 1
    assert rows[0].epochs == 5  # 20 x 3 < 100, so 100 // 20
    assert "provider default: 5 epochs" in rows[0].name
    assert rows[0].cost_usd == pytest.approx(15.0)


def test_catalog_rate_when_no_rate_given(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "dataset: {tokens: 1000}\nself_hosted:\n  - {name: x, hours: 10, gpu: H100, count: 2}\n")
    row = rows[0]
    assert row.provenance["cost_usd"]["entry"] == "runpod-h100-sxm"  # cheapest on-demand H100 SXM
    assert row.provenance["cost_usd"]["prices_checked"] == "2026-11-28"
    assert row.cost_usd == pytest.approx(10 * 2 * 2.99)


def test_unknown_price_stays_unknown(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "dataset: {tokens: 1000000}\nepochs: 2\nservices: [gemini-2.0-flash-lite]\n")
    assert rows[0].cost_usd is None
    assert rows[0].x_vs_cheapest_self_hosted is None


def test_validation_tokens_billed_by_together(tmp_path: Path) -> None:
    text = (
        "dataset: {tokens: 1000000, validation_tokens: 500000}\nepochs: 2\n"
        "services: [together-lora-up-to-16b, gpt-4o-mini]\n"
    )
    rows = {r.provenance["cost_usd"]["entry"]: r for r in _rows(tmp_path, text)}
    assert rows["together-lora-up-to-16b"].billed_tokens == 3_000_000
    assert rows["gpt-4o-mini"].billed_tokens == 2_000_000


def test_results_row_from_a_run_record(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "qlora"
    run.mkdir(parents=True)
    (run / "result.json").write_text(
        json.dumps(
            {
                "schema": "lorabench.run",
                "status": "ok",
                "spec": {"hardware": {"gpu": "A5000", "count": 4}},
                "metrics": {"wall_time_s": 7200.0},
            }
        )
    )
    rows = _rows(
        tmp_path,
        "dataset: {tokens: 1000}\nself_hosted:\n  - {name: QLoRA, results: runs/qlora, usd_per_gpu_hour: 0.26}\n",
    )
    assert rows[0].cost_usd == pytest.approx(2 * 4 * 0.26)
    assert rows[0].provenance["time_s"]["kind"] == "measured"


def test_token_counting_of_a_dataset_path(tmp_path: Path, finlora: Path) -> None:
    counted = count_tokens(finlora / "fpb_test.jsonl")
    assert counted.examples == 1212
    assert not counted.exact
    assert "estimate" in counted.method
    assert counted.min_tokens <= counted.p50_tokens <= counted.p90_tokens <= counted.max_tokens
    rows = _rows(tmp_path, f"dataset: {{path: {finlora / 'fpb_test.jsonl'}}}\nservices: [gpt-4o-mini]\n")
    assert rows[0].epochs == 3  # 1212 examples -> OpenAI default 3
    assert rows[0].billed_tokens == 3 * counted.total_tokens
    assert rows[0].provenance["billed_tokens"]["kind"] == "estimated"


@pytest.mark.parametrize(
    ("text", "error", "needle"),
    [
        ("dataset: {}\n", ConfigError, "give tokens"),
        ("epochs: 2\n", ConfigError, "dataset"),
        ("dataset: {tokens: 10}\nself_hosted:\n  - {name: x, hours: -1, gpu: A5000}\n", ConfigError, "hours"),
        ("dataset: {tokens: 10}\nself_hosted:\n  - {name: x, hours: 1}\n", ConfigError, "gpu"),
        ("dataset: {tokens: 10}\nself_hosted:\n  - {name: x, hours: 1, gpu: TPUv9}\n", CatalogError, "unknown GPU"),
        ("dataset: {tokens: 10}\nepochs: 1\nservices: [gpt-17-ft]\n", CatalogError, "unknown service"),
        ("dataset: {tokens: 10}\nservices: [gpt-4o-mini]\n", ConfigError, "give examples"),
        ("dataset: {tokens: 10}\nservices: [gemini-2.5-flash]\n", ConfigError, "default is not in the catalog"),
        ("dataset: {tokens: 10}\nreferences: [palm]\n", CatalogError, "unknown reference"),
        (
            "dataset: {tokens: 10}\nself_hosted:\n  - {name: x, spec: s.yaml, gpu: A5000}\n",
            ConfigError,
            "s.yaml",
        ),
        ("dataset: {tokens: 10}\nself_hosted:\n  - {name: x, spec: {model: tiny}}\n", ConfigError, "give the gpu"),
        ("dataset: {tokens: 10}\nbudget: 3\n", ConfigError, "budget: unknown key"),
        ("dataset: {tokens: -5}\n", ConfigError, "tokens"),
        ("[1, 2]\n", ConfigError, "expected a mapping"),
        ("dataset: {path: missing.jsonl}\nepochs: 1\nservices: [gpt-4o-mini]\n", DataError, "cannot read dataset"),
    ],
)
def test_bad_scenarios(tmp_path: Path, text: str, error: type[Exception], needle: str) -> None:
    with pytest.raises(error) as err:
        _rows(tmp_path, text)
    assert needle in str(err.value)


def test_predicted_rows_from_a_spec(tmp_path: Path) -> None:
    (tmp_path / "dora.yaml").write_text("model: llama-3.1-8b\nmethod: dora\nbits: 8\nseq_len: 512\nmicro_batch: 4\n")
    text = (
        "dataset: {tokens: 26000000}\nepochs: 4\nself_hosted:\n"
        "  - {name: DoRA, spec: dora.yaml, gpu: A5000, count: 4, usd_per_gpu_hour: 0.26}\n"
        "  - {name: LoRA, spec: {model: llama-3.1-8b, bits: 8}, gpu: A5000, count: 4, efficiency: 0.1}\n"
    )
    rows = {r.name: r for r in _rows(tmp_path, text)}
    dora, lora = rows["DoRA"], rows["LoRA"]
    assert dora.provenance["time_s"]["kind"] == "predicted"
    assert dora.provenance["time_s"]["engine"] == "roofline"
    low, high = dora.provenance["time_s"]["interval_s"]
    assert low < dora.time_s < high  # type: ignore[operator]
    assert dora.provenance["time_s"]["tokens"] == 104_000_000
    assert dora.time_s is not None and dora.time_s > 3600
    assert dora.cost_usd == pytest.approx(dora.time_s / 3600 * 4 * 0.26)
    assert lora.provenance["time_s"]["efficiency"] == 0.1
    assert lora.provenance["cost_usd"]["kind"] == "catalog"


def test_predicted_rows_use_a_calibration(tmp_path: Path) -> None:
    from lorabench.predict.time.roofline import default_calibration, predict_time
    from lorabench.spec import RunSpec

    packaged = default_calibration().to_dict()
    packaged["constants"]["host_s"] = 100.0  # a calibration whose host overhead dominates
    (tmp_path / "cal.json").write_text(json.dumps(packaged))
    text = (
        "dataset: {tokens: 1000000}\nepochs: 1\ncalibration: cal.json\nself_hosted:\n"
        "  - {name: x, spec: {model: tiny}, gpu: H200, count: 1}\n"
    )
    row = _rows(tmp_path, text)[0]
    default = predict_time(RunSpec.model_validate({"model": "tiny", "hardware": {"gpu": "H200"}}), 1_000_000)
    assert row.time_s is not None and row.time_s > 10 * default.time_s
    assert "cal.json" in row.provenance["time_s"]["provenance"]
