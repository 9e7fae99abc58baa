"""The JSON API on every endpoint: the CLI's records, field-named 422s, limits."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from lorabench.cli.main import main
from lorabench.web import Limits, create_app
from lorabench.web.app import field_errors

TINY = {"model": "tiny", "gpu": "A5000"}


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def _same(record: dict[str, Any]) -> dict[str, Any]:
    # how long the engine took, and the library warnings a process raises once (on first import), differ
    return {k: v for k, v in record.items() if k not in ("engine_seconds", "library_warnings")}


def _locs(response: Any) -> list[list[Any]]:
    return [d["loc"] for d in response.json()["detail"]]


def test_catalog_endpoints_match_the_cli(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert client.get("/api/models").json() == _cli_json(capsys, "models", "--json")
    assert client.get("/api/catalog").json() == _cli_json(capsys, "catalog", "--json")
    gpus = client.get("/api/gpus").json()
    assert gpus["A5000"]["vram_bytes"] > 20e9 and gpus["A5000"]["source"].startswith("https://")
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["limits"]["max_upload_bytes"] == Limits().max_upload_bytes


def test_estimate_is_the_cli_record(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    body = {**TINY, "method": "qlora", "rank": 4, "targets": "all-linear", "micro_batch": 2, "seq_len": 64}
    response = client.post("/api/estimate", json={**body, "tokens": 100_000})
    assert response.status_code == 200, response.text
    record = response.json()
    cli = _cli_json(
        capsys, "estimate", "--model", "tiny", "--gpu", "A5000", "--method", "qlora", "--rank", "4", "--targets",
        "all-linear", "--batch-size", "2", "--seq-len", "64", "--engine", "formula", "--tokens", "100000", "--json",
    )  # fmt: skip
    assert _same(record) == _same(cli)
    assert record["spec"]["bits"] == 4 and record["engine"] == "formula"
    assert record["predicted_time_s"] > 0 and len(record["predicted_time_interval_s"]) == 2
    assert set(record["fits"]) == set(client.get("/api/gpus").json())


def test_fit_is_the_cli_record(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    record = client.post("/api/fit", json={**TINY, "seq_len": 128}).json()
    cli = _cli_json(capsys, "fit", "--gpu", "A5000", "--model", "tiny", "--seq-len", "128", "--json")
    assert _same(record) == _same(cli)
    assert record["largest_micro_batch"]["value"] >= 1


def test_cost_is_the_cli_rows(client: TestClient, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scenario = {
        "dataset": {"tokens": 2_000_000, "examples": 1000},
        "epochs": 2,
        "self_hosted": [
            {"name": "given", "hours": 1.5, "gpu": "A5000", "count": 2, "usd_per_gpu_hour": 0.5},
            {"name": "predicted", "spec": {"model": "tiny", "rank": 4}, "gpu": "A5000"},
        ],
        "services": ["gpt-4o-mini", {"name": "together-lora-up-to-16b", "epochs": 1}],
        "references": ["bloomberggpt"],
    }
    rows = client.post("/api/cost", json=scenario).json()
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario), "utf-8")
    assert rows == _cli_json(capsys, "cost", str(path), "--json")
    service = next(r for r in rows if r["kind"] == "service")
    assert service["provenance"]["cost_usd"]["prices_checked"] and service["provenance"]["cost_usd"]["source"]


def test_uploaded_training_config_is_read_like_a_file(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    axolotl = "base_model: tiny\nadapter: qlora\nload_in_4bit: true\nlora_r: 4\nsequence_len: 64\nmicro_batch_size: 2\n"
    axolotl += "wandb_project: x\nsample_packing: true\n"
    response = client.post("/api/estimate", json={"config_text": axolotl, "config_name": "qlora.yml", "rank": 8})
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["spec"]["method"] == "qlora" and record["spec"]["rank"] == 8 and record["spec"]["seq_len"] == 64
    assert record["config_source"]["kind"] == "axolotl"
    assert any(k["key"] == "sample_packing" for k in record["ignored_keys"])  # reported, not dropped


def test_uploaded_model_config_json(client: TestClient) -> None:
    from lorabench.models import architecture_catalog

    config = dict(architecture_catalog()["tiny"].config)
    response = client.post("/api/estimate", json={"model_config": json.dumps(config), "gpu": "A5000"})
    assert response.status_code == 200, response.text
    by_name = client.post("/api/estimate", json=TINY).json()
    assert response.json()["base_params"] == by_name["base_params"]
    assert response.json()["model"]["key"].startswith("uploaded-config-")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "no-such-model"}, "model"),
        ({"model": "/etc"}, "model"),
        ({"model": "../x"}, "model"),
        ({"rank": 4}, "model"),  # no model at all
        ({"model": "tiny", "bits": 16, "method": "qlora"}, "bits"),
        ({"model": "tiny", "bits": 3}, "bits"),
        ({"model": "tiny", "rank": 0}, "rank"),
        ({"model": "tiny", "rank": True}, "rank"),
        ({"model": "tiny", "gpu": "no-such-gpu"}, "gpu"),
        ({"model": "tiny", "targets": "nonexistent_proj"}, "targets"),
        ({"model": "tiny", "gpus": 2, "parallelism": "single"}, "parallelism"),
        ({"model": "tiny", "seq_len": "long"}, "seq_len"),
        ({"model": "tiny", "colour": "red"}, "colour"),
        ({"model": "tiny", "engine": "magic"}, "engine"),
        ({"config_text": "base_model: [unclosed"}, "config_text"),
        ({"model_config": "{not json"}, "model_config"),
        ({"model_config": '{"hidden_size": 8}'}, "model_config"),
    ],
)
def test_bad_estimate_input_is_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/estimate", json=body)
    assert response.status_code == 422, response.text
    assert any(loc[:2] == ["body", field] for loc in _locs(response)), response.json()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/fit", {"model": "tiny"}, "gpu"),
        ("/api/fit", {"model": "tiny", "gpu": "nope"}, "gpu"),
        ("/api/cost", {"dataset": {"tokens": 0}}, "dataset"),
        ("/api/cost", {"dataset": {"tokens": 10}, "services": ["no-such-service"]}, None),
        ("/api/cost", {"dataset": {"path": "/etc/passwd"}}, "dataset"),
        ("/api/cost", {"dataset": {"tokens": 10}, "self_hosted": [{"name": "x"}]}, None),
        ("/api/cost", {"dataset": {"tokens": 10}, "self_hosted": [{"name": "x", "spec": {"model": "/etc"}}]}, None),
    ],
)
def test_bad_fit_and_cost_input_is_422(client: TestClient, path: str, body: dict[str, Any], field: str | None) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    if field is not None:
        assert any(loc[:2] == ["body", field] for loc in _locs(response)), response.json()
    assert all(d["msg"] for d in response.json()["detail"])


def test_oversized_and_malformed_bodies(client: TestClient) -> None:
    big = {"model": "tiny", "config_text": "x" * (3 * Limits().max_upload_bytes)}
    assert client.post("/api/estimate", json=big).status_code == 413
    over_field = {"model": "tiny", "config_text": "x" * (Limits().max_upload_bytes + 1)}
    assert _locs(client.post("/api/estimate", json=over_field))[0][:2] == ["body", "config_text"]
    response = client.post("/api/estimate", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_page_and_static_files_are_local(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "lorabench calculator" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        text = client.get(asset).text
        assert "http://" not in text and "https://" not in text  # nothing loaded from elsewhere
    assert "https://" not in page.text.replace("https://huggingface.co", "")
    schema = client.get("/openapi.json").json()
    assert {"/api/estimate", "/api/fit", "/api/cost", "/api/catalog", "/api/models"} <= set(schema["paths"])


def test_field_errors_split_only_at_field_names() -> None:
    items = field_errors("ConfigError", "invalid run spec from command line: bits: no; use lora; rank: must be > 0")
    assert [i["loc"] for i in items] == [["body", "bits"], ["body", "rank"]]
    assert items[0]["msg"] == "bits: no; use lora"
    assert field_errors("ModelError", "unknown model 'x': not a catalog name")[0]["loc"] == ["body", "model"]


def test_a_job_past_its_limit_is_stopped_and_the_worker_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a cache of its own: the 70B module graph must be built here (cached by an earlier test it answers at once)
    monkeypatch.setenv("LORABENCH_CACHE_DIR", str(tmp_path / "cache"))
    app = create_app(Limits(formula_timeout_s=0.5, simulate_timeout_s=2.0))
    with TestClient(app) as client:
        slow = {"model": "llama-3.1-70b", "method": "qlora", "gpu": "A100-80GB"}  # ~15 s: the 70B module graph
        results: list[Any] = []
        first = threading.Thread(
            target=lambda: results.append(client.post("/api/estimate", json={**slow, "engine": "simulate"}))
        )
        first.start()
        while not app.state.worker._simulating:
            threading.Event().wait(0.01)
        second = client.post("/api/estimate", json={**TINY, "engine": "simulate"})
        assert second.status_code == 429 and "one simulate" in second.json()["detail"]
        first.join()
        assert results[0].status_code == 503 and "limit of 2 s" in results[0].json()["detail"]
        timed_out = client.post("/api/estimate", json=slow)
        assert timed_out.status_code == 503, timed_out.text
        assert app.state.worker.restarts == 2
        # a fresh worker answers (under a normal limit: its first job imports transformers, > 0.5 s on a busy machine)
        app.state.worker.limits = Limits()
        assert client.post("/api/estimate", json=TINY).status_code == 200


def test_hub_id_resolves_offline(client: TestClient) -> None:
    record = client.post("/api/estimate", json={"model": "meta-llama/Llama-3.2-1B-Instruct"}).json()
    assert record["model"]["key"] == "llama-3.2-1b"


def test_serve_rejects_a_bad_limit_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--simulate-timeout", "0"]) == 2
    assert "--simulate-timeout" in capsys.readouterr().err
