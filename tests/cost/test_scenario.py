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


def _run_record(folder: Path, device: str = "cuda", name: str = "NVIDIA A100-SXM4-80GB", world: int = 1) -> Path:
    """A lorabench run record of 6 counted steps: 6 x 4 x 512 = 12,288 non-pad tokens in 3.0 s."""
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(
        json.dumps(
            {
                "schema": "lorabench.run",
                "status": "ok",
                "spec": {"hardware": {"gpu": None, "count": world}, "epochs": 1.0},
                "environment": {"device_type": device, "device_names": [name] if device == "cuda" else []},
                "world_size": world,
                "metrics": {
                    "device": device,
                    "wall_time_s": 3.0,
                    "steps": 6,
                    "warmup_steps": 2,
                    "world_size": world,
                    "nonpad_tokens": 12_288,
                    "padded_tokens": 12_288,
                    "tokens_per_s_nonpad": 4096.0,
                    "peak_allocated_bytes": 30_000_000_000,
                },
            }
        )
    )
    return folder


def test_a_six_step_record_is_scaled_to_the_whole_job(tmp_path: Path) -> None:
    _run_record(tmp_path / "runs" / "qlora")
    text = (
        "dataset: {tokens: 26000000}\nepochs: 4\n"
        "self_hosted:\n  - {name: QLoRA, results: runs/qlora, usd_per_gpu_hour: 1.5}\n"
    )
    row = _rows(tmp_path, text)[0]
    job_tokens = 26_000_000 * 4
    assert row.time_s == pytest.approx(job_tokens / 4096.0)  # 25,390.6 s, not the benchmark's 3 s
    assert row.cost_usd == pytest.approx(job_tokens / 4096.0 / 3600 * 1.5)
    assert row.gpu == "A100-80GB" and row.gpus == 1
    assert row.fits is True and row.peak_allocated_bytes == 30_000_000_000
    prov = row.provenance["time_s"]
    assert prov["kind"] == "measured"
    assert prov["measured_steps"] == 6 and prov["measured_nonpad_tokens"] == 12_288
    assert prov["job_tokens"] == job_tokens and prov["epochs"] == 4
    assert prov["job_steps"] == -(-job_tokens // 2048)  # 2,048 non-pad tokens per measured step
    assert "26,000,000 tokens x 4 epochs = 104,000,000 tokens" in prov["arithmetic"]
    assert "12,288 non-pad tokens in 6 steps" in prov["arithmetic"]
    assert "4,096.0 tokens/s" in prov["arithmetic"]


@pytest.mark.parametrize(
    ("record", "row", "needle"),
    [
        ({"device": "cpu"}, "gpu: RTX4090", "measured on cpu, not RTX4090"),
        ({"device": "cpu"}, "count: 1", "measured on a CPU; give usd_per_gpu_hour"),
        ({"name": "NVIDIA H200"}, "gpu: RTX 4090", "measured on H200, not RTX4090"),
        ({"world": 1}, "count: 4, usd_per_gpu_hour: 1", "measured on 1 GPU(s), not 4"),
    ],
)
def test_a_record_from_another_device_is_refused(
    tmp_path: Path, record: dict[str, object], row: str, needle: str
) -> None:
    _run_record(tmp_path / "runs" / "r", **record)  # type: ignore[arg-type]
    text = f"dataset: {{tokens: 1000}}\nself_hosted:\n  - {{name: R, results: runs/r, {row}}}\n"
    with pytest.raises(ConfigError) as err:
        _rows(tmp_path, text)
    assert needle in str(err.value)


def test_a_cpu_record_is_priced_on_the_cpu_at_the_rows_own_rate(tmp_path: Path) -> None:
    _run_record(tmp_path / "runs" / "r", device="cpu")
    rows = _rows(
        tmp_path, "dataset: {tokens: 1000}\nself_hosted:\n  - {name: R, results: runs/r, usd_per_gpu_hour: 2}\n"
    )
    row = next(r for r in rows if r.name == "R")
    assert row.gpu == "cpu" and row.provenance["time_s"]["kind"] == "measured"
    assert row.provenance["cost_usd"] == {"kind": "input", "usd_per_gpu_hour": 2.0}
    assert row.cost_usd == pytest.approx(row.time_s / 3600 * 2)


def test_a_record_without_throughput_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "old"
    run.mkdir()
    (run / "result.json").write_text(
        json.dumps(
            {
                "schema": "lorabench.run",
                "status": "ok",
                "spec": {"hardware": {"gpu": "A5000", "count": 1}},
                "metrics": {"device": "cuda", "wall_time_s": 7200.0},
            }
        )
    )
    with pytest.raises(ConfigError, match=r"metrics\.nonpad_tokens missing"):
        _rows(tmp_path, "dataset: {tokens: 1000}\nself_hosted:\n  - {name: Q, results: old, usd_per_gpu_hour: 1}\n")


def test_a_row_that_does_not_fit_gets_no_cost_and_is_never_cheapest(tmp_path: Path) -> None:
    text = (
        "dataset: {tokens: 26000000}\nepochs: 4\nself_hosted:\n"
        "  - {name: 16-bit on 4090, spec: {model: llama-3.1-8b, bits: 16, micro_batch: 4, seq_len: 512},"
        " gpu: RTX4090}\n"
        "  - {name: 4-bit on A100, spec: {model: llama-3.1-8b, bits: 4, micro_batch: 4, seq_len: 512},"
        " gpu: A100-80GB}\n"
        "services: [gpt-4o-mini]\n"
    )
    rows = {r.name: r for r in _rows(tmp_path, text)}
    big, small = rows["16-bit on 4090"], rows["4-bit on A100"]
    assert big.fits is False
    assert big.cost_usd is None and big.time_s is None and big.x_vs_cheapest_self_hosted is None
    assert big.device_total_bytes is not None and big.gpu_memory_bytes == 24 * 2**30  # 24 GiB
    assert big.device_total_bytes > big.gpu_memory_bytes
    assert big.provenance["fits"]["engine"] == "formula" and big.provenance["fits"]["per_gpu"] is True
    assert big.note is not None and big.note.startswith("does not fit")
    assert small.fits is True and small.cost_usd is not None
    assert small.device_total_bytes is not None and small.device_total_bytes <= 80_000_000_000
    assert small.x_vs_cheapest_self_hosted == pytest.approx(1.0)  # the fitting row is the cheapest
    assert rows["GPT-4o-mini"].x_vs_cheapest_self_hosted == pytest.approx(312.0 / small.cost_usd)


def test_the_fit_verdict_is_per_gpu_under_the_parallelism(tmp_path: Path) -> None:
    spec = "{model: llama-3.1-8b, bits: 16, micro_batch: 2, seq_len: 512"
    text = (
        "dataset: {tokens: 1000000}\nepochs: 1\nself_hosted:\n"
        f"  - {{name: z3, spec: {spec}, parallelism: zero3}}, gpu: RTX4090, count: 4}}\n"
        f"  - {{name: ddp, spec: {spec}}}, gpu: RTX4090, count: 4}}\n"
    )
    rows = {r.name: r for r in _rows(tmp_path, text)}
    assert rows["z3"].fits is True and rows["z3"].provenance["fits"]["parallelism"] == "zero3"
    assert rows["ddp"].fits is False and rows["ddp"].provenance["fits"]["parallelism"] == "ddp"  # a full replica
    assert rows["z3"].device_total_bytes < rows["ddp"].device_total_bytes  # type: ignore[operator]


def test_size_brackets_are_checked_against_the_model(tmp_path: Path) -> None:
    ok = _rows(
        tmp_path, "dataset: {tokens: 1000000}\nepochs: 1\nmodel: llama-3.1-8b\nservices: [together-lora-up-to-16b]\n"
    )
    assert ok[0].provenance["bracket"]["checked"] is True
    assert ok[0].provenance["bracket"]["base_params"] == 8_030_261_248
    with pytest.raises(ConfigError, match=r"covers base models up to 16B parameters; llama-3.1-70b has 70\.\d+B"):
        _rows(
            tmp_path,
            "dataset: {tokens: 1000000}\nepochs: 1\n"
            "services: [{name: fireworks-lora-up-to-16b, model: llama-3.1-70b}]\n",
        )
    (tmp_path / "s.yaml").write_text("model: llama-3.1-8b\nbits: 4\ngrad_ckpt: true\nmicro_batch: 1\n")
    with pytest.raises(ConfigError, match=r"over 16B up to 80B parameters; llama-3\.1-8b has 8\.03B"):
        _rows(  # the model the spec rows share
            tmp_path,
            "dataset: {tokens: 1000000}\nepochs: 1\nself_hosted:\n  - {name: s, spec: s.yaml, gpu: H200}\n"
            "services: [fireworks-lora-16b-80b]\n",
        )
    unchecked = _rows(tmp_path, "dataset: {tokens: 1000000}\nepochs: 1\nservices: [together-lora-up-to-16b]\n")
    assert unchecked[0].provenance["bracket"]["checked"] is False
    assert "size bracket up to 16B not checked" in (unchecked[0].note or "")


def test_openai_rows_show_the_wind_down_and_unconfirmed_prices(tmp_path: Path) -> None:
    row = _rows(tmp_path, "dataset: {tokens: 1000000}\nepochs: 1\nservices: [gpt-4o-mini]\n")[0]
    assert row.job_creation_ends == "2027-01-06"
    assert "job creation ends 2027-01-06" in (row.note or "") or "job creation ended 2027-01-06" in (row.note or "")
    assert row.provenance["availability"]["source"].startswith("https://")
    assert row.price_status == "unconfirmed"
    assert row.provenance["cost_usd"]["secondary_source"].startswith("https://")


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
    (tmp_path / "dora.yaml").write_text(
        "model: llama-3.1-8b\nmethod: dora\nbits: 8\nseq_len: 512\nmicro_batch: 4\ngrad_ckpt: true\n"
    )
    text = (
        "dataset: {tokens: 26000000}\nepochs: 4\nself_hosted:\n"
        "  - {name: DoRA, spec: dora.yaml, gpu: A5000, count: 4, usd_per_gpu_hour: 0.26}\n"
        "  - {name: LoRA, spec: {model: llama-3.1-8b, bits: 8, grad_ckpt: true}, gpu: A5000, count: 4,"
        " efficiency: 0.1}\n"
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
