"""Property-based requests generated from the app's OpenAPI schema: whatever arrives, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import strategies as st

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from lorabench.web import create_app  # noqa: E402

app = create_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def _stop_worker() -> Iterator[None]:
    yield
    app.state.worker.close()


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])


_MODELS = st.sampled_from(["tiny", "smollm2-135m"])
_OPTIONAL = {
    "method": st.sampled_from(["lora", "qlora", "dora", "rslora"]),
    "bits": st.sampled_from([16, 8, 4]),
    "rank": st.integers(1, 256),
    "alpha": st.floats(0.5, 512),
    "targets": st.sampled_from(["q_proj,v_proj", "all-linear", "q_proj,k_proj,v_proj,o_proj", "gate_proj,up_proj"]),
    "micro_batch": st.integers(1, 64),
    "seq_len": st.integers(1, 8192),
    "grad_ckpt": st.booleans(),
    "autocast": st.booleans(),
    "pure_bf16": st.booleans(),
    "optimizer": st.sampled_from(["adamw_torch", "adamw_8bit", "paged_adamw_8bit", "adamw_4bit"]),
    "gpu": st.sampled_from(["A5000", "T4", "H100-SXM", "RTX4090"]),
    "gpus": st.integers(1, 8),
    "parallelism": st.sampled_from(["single", "ddp", "zero2", "zero3", "fsdp_full_shard"]),
    "tokens": st.integers(1, 10**9),
}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(model=_MODELS, fields=st.fixed_dictionaries({}, optional=_OPTIONAL))
def test_formula_estimates_of_real_models_answer_200_or_422(
    client: TestClient, model: str, fields: dict[str, Any]
) -> None:
    response = client.post("/api/estimate", json={"model": model, **fields})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert all(d["loc"][0] == "body" and d["msg"] for d in response.json()["detail"])
        return
    spec = response.json()["spec"]
    for name in ("method", "rank", "micro_batch", "seq_len", "grad_ckpt", "autocast", "pure_bf16", "optimizer"):
        if name in fields:
            assert spec[name] == fields[name]
    if "gpu" in fields and "tokens" in fields:
        record = response.json()
        if record["time"]["fits"] is False:  # no time for a run that does not fit on that card
            assert record["predicted_time_s"] is None and "does not fit" in record["predicted_time_note"]
        else:
            low, high = record["predicted_time_interval_s"]
            assert 0 < low <= record["predicted_time_s"] <= high
