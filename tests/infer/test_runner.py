from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lorabench.infer.options import InferOptions
from lorabench.infer.runner import run_inference
from lorabench.infer.timing import timed_generate
from lorabench.models import resolve_model
from tests.infer.adapters import make_adapter


def test_timed_generate_makes_exactly_max_new_tokens() -> None:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(resolve_model("tiny").config, dtype=torch.bfloat16).eval()
    ids = torch.randint(4, 4096, (2, 8))
    timing = timed_generate(model, ids, 5)
    assert timing.tokens.shape == (2, 5) and timing.output_tokens == 10 and timing.decode_steps == 4
    assert 0 < timing.ttft_s < timing.e2e_s and timing.time_per_output_token_s is not None
    with torch.inference_mode():  # the loop decodes what generate decodes (greedy, EOS ignored)
        reference = model.generate(ids, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert torch.equal(reference[:, 8:], timing.tokens)


@pytest.mark.slow
def test_grid_writes_one_record_per_cell(tmp_path: Path) -> None:
    adapter = make_adapter(tmp_path / "adapter")
    options = InferOptions(
        model="tiny",
        out=tmp_path / "out",
        adapters=(adapter,),
        batch_sizes=(1, 2),
        prompt_lens=(8,),
        max_new_tokens=4,
        warmup=1,
        repeats=2,
        multi_adapters=3,
        popularity="zipf",
        zipf_s=1.2,
        usd_per_gpu_hour=2.0,
        cpu_threads=1,
    )
    summary = run_inference(options)
    assert summary["variants"] == ["base", "unmerged", "merged", "multi"]
    assert len(summary["records"]) == 8 and all(Path(p).is_file() for p in summary["records"])
    for row in summary["rows"]:
        assert row["status"] == "ok"
        assert row["ttft_s_p50"] > 0 and row["time_per_output_token_s_mean"] > 0 and row["output_tokens_per_s"] > 0
        assert row["energy_per_output_token_j"] is None  # no GPU: unknown, never 0
        assert row["cost_per_1m_output_tokens_usd"] > 0  # priced at the given rate
    multi = next(p for p in summary["records"] if Path(p).name.startswith("infer-multi-b2"))
    record = json.loads(Path(multi).read_text())
    assert record["variant"] == "multi" and record["multi_adapter"]["adapters"] == 3
    assert sum(record["multi_adapter"]["request_draws"].values()) == 2 * 2  # repeats x batch
    metrics = record["metrics"]
    assert metrics["peak_allocated_bytes"] > 0 and "profiler" in metrics["counters"]["peak_allocated_bytes"]
    assert metrics["unavailable"]["energy_j"].startswith("no GPU")
    assert record["protocol"]["warmup_runs"] == 1 and record["protocol"]["repeats"] == 2
    assert record["cost"]["provenance"]["kind"] == "input"
    assert {(s["variant"], s["reference"]) for s in summary["slowdown"]} >= {
        ("unmerged", "base"),
        ("multi", "unmerged"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("order", ["interleaved", "sequential"])
def test_variant_order_is_recorded_and_memory_is_per_variant(tmp_path: Path, order: str) -> None:
    adapter = make_adapter(tmp_path / "adapter")
    options = InferOptions(
        model="tiny",
        out=tmp_path / "out",
        adapters=(adapter,),
        batch_sizes=(1, 2),
        prompt_lens=(8,),
        max_new_tokens=4,
        repeats=2,
        cpu_threads=1,
        order=order,
    )
    summary = run_inference(options)
    records = [json.loads(Path(p).read_text()) for p in summary["records"]]
    assert sorted({r["variant"] for r in records}) == ["base", "merged", "unmerged"]
    assert all(r["protocol"]["variant_order"].startswith(order) for r in records)
    if order == "interleaved":  # cells rotate the variant order: the first two cells start with different variants
        firsts = [records[0]["variant"], records[3]["variant"]]
        assert firsts[0] != firsts[1]
    # memory counted during generation is the same for base and merged (same architecture, frozen weights)
    for batch in (1, 2):
        peaks = {
            r["variant"]: r["metrics"]["peak_allocated_bytes"] for r in records if r["cell"]["batch_size"] == batch
        }
        assert peaks["base"] == peaks["merged"] > 0


def test_interleaved_cuda_peak_is_corrected_to_one_variant() -> None:
    from lorabench.infer.runner import _CUDA_MEMORY_PASS, _alone

    metrics = {
        "peak_allocated_bytes": 50_000,
        "peak_reserved_bytes": 60_000,
        "nvml_peak_used_bytes": 70_000,
        "memory_measured_over": _CUDA_MEMORY_PASS,
        "counters": {"peak_allocated_bytes": "torch.cuda.max_memory_allocated", "peak_reserved_bytes": "r"},
    }
    out = _alone(metrics, others_bytes=30_000)
    assert out["peak_allocated_bytes"] == 20_000
    assert "minus the 30,000 weight bytes" in out["counters"]["peak_allocated_bytes"]
    assert out["peak_reserved_bytes"] is None and "interleaved" in out["unavailable"]["peak_reserved_bytes"]
    assert out["nvml_peak_used_bytes"] is None and "peak_reserved_bytes" not in out["counters"]
