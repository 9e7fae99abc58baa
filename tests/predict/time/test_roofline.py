"""The roofline: hand-checked cases, the packaged fit, predict_step / predict_time, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lorabench.errors import CatalogError, ConfigError, DataError
from lorabench.hardware import resolve_gpu
from lorabench.predict.time import roofline
from lorabench.predict.time.ops import Op
from lorabench.predict.time.roofline import (
    BREAKDOWN_KEYS,
    Constants,
    RooflineCalibration,
    default_calibration,
    op_seconds,
    predict_step,
    predict_time,
)
from lorabench.spec import RunSpec

REPO = Path(__file__).resolve().parents[3]
H200_RESULTS = [REPO / "results" / "gpu" / "h200-2026-11-28", REPO / "results" / "gpu" / "h200-2026-11-28-fit"]
C = Constants(eta_mm=0.8, mm_half_dim=64, eta_int8=0.1, eta_attention=0.5, eta_bw=0.8, eta_dequant=0.4,
              launch_s=1e-5, host_s=1e-3)  # fmt: skip


def _spec(**kw: object) -> RunSpec:
    base: dict[str, object] = {
        "model": "llama-3.1-8b",
        "rank": 8,
        "targets": ["q_proj", "k_proj", "v_proj"],
        "micro_batch": 4,
        "seq_len": 512,
        "hardware": {"gpu": "H200", "count": 1},
    }
    base.update(kw)
    return RunSpec.model_validate(base)


def test_compute_bound_big_matmul() -> None:
    gpu = resolve_gpu("H200")
    op = Op("matmul_bf16", 2.0 * 8192**3, 3 * 2.0 * 8192**2, 8192)
    kernel, launch = op_seconds(op, gpu, C)
    eta = 0.8 * 8192 / (8192 + 64)
    assert gpu.mamf_bf16_tflops == 794.5  # measured maximum achievable matmul FLOPS, not the 989.5 datasheet
    assert kernel == pytest.approx(op.flops / (794.5e12 * eta))
    assert kernel > op.bytes / (gpu.memory_bandwidth_gbps * 1e9 * 0.8)  # compute bound
    assert launch == 1e-5


def test_bandwidth_bound_elementwise() -> None:
    gpu = resolve_gpu("A5000")
    op = Op("elementwise", 0.0, 1e9)
    kernel, _ = op_seconds(op, gpu, C)
    assert kernel == pytest.approx(1e9 / (768e9 * 0.8))


def test_launch_bound_tiny_op_and_skinny_matmul() -> None:
    gpu = resolve_gpu("H200")
    kernel, launch = op_seconds(Op("elementwise", 0.0, 1024.0), gpu, C)
    assert launch > 1000 * kernel
    # a LoRA-like r=8 fp32 matmul runs on the CUDA cores (67 TFLOPS datasheet) at 8 / (8 + 64) of the big-matmul
    # efficiency
    skinny, _ = op_seconds(Op("matmul_fp32", 2.0 * 4096 * 8 * 4096, 0.0, 8), gpu, C)
    assert skinny == pytest.approx(2.0 * 4096 * 8 * 4096 / (67e12 * 0.8 * 8 / 72))


def test_matmul_peak_without_a_measurement_is_the_datasheet_times_the_median_fraction() -> None:
    from lorabench.predict.time.roofline import MAMF_FRACTION, matmul_peak_flops

    l40s = resolve_gpu("L40S")
    assert l40s.mamf_bf16_tflops is None
    assert matmul_peak_flops(l40s) == pytest.approx(362.05e12 * MAMF_FRACTION)
    assert matmul_peak_flops(resolve_gpu("A100-80GB")) == pytest.approx(271.2e12)


def test_fp32_peak_falls_back_to_the_sm_count_where_the_catalog_has_no_figure() -> None:
    gpu = resolve_gpu("A10G")
    assert gpu.fp32_tflops is None
    kernel, _ = op_seconds(Op("matmul_fp32", 1e12, 0.0, 4096), gpu, C)
    assert kernel == pytest.approx(1e12 / (80 * 256 * 1.8e9 * 0.8 * 4096 / (4096 + 64)))
    step = predict_step(_spec(), gpu="A10G")
    assert "fp32 peak estimated from 80 SMs" in step.provenance


def test_launches_hide_behind_long_kernels_and_bound_short_ones() -> None:
    from lorabench.predict.time.ops import StepOps
    from lorabench.predict.time.roofline import step_seconds

    gpu = resolve_gpu("H200")
    big = Op("elementwise", 0.0, 4800e9 * 0.8 * 1e-3, launches=10.0, count=2.0)  # 1 ms kernel, 0.1 ms of launches
    tiny = Op("elementwise", 0.0, 1024.0, launches=3.0, count=5.0)  # a few ns of kernel, 30 us of launches
    out = step_seconds(StepOps((big, tiny), tokens=1, micro_batches=1, engine="formula"), gpu, C)
    assert out["memory_bound"] == pytest.approx(2 * 1e-3)  # the launches of the long kernel are hidden
    assert out["overhead"] == pytest.approx(5 * 3 * 1e-5 + C.host_s)  # the short one runs at the host's pace


def test_packaged_fit_reproduces_the_h200_records() -> None:
    cal = default_calibration()
    errors = sorted(abs(e) for e in cal.relative_errors())
    assert len(errors) == 22
    assert errors[len(errors) // 2] <= 0.10  # median within the 10% target
    assert sum(e <= 0.10 for e in errors) >= 0.8 * len(errors)
    # the stored predictions are what the engine predicts now
    for r in cal.residuals[:3]:
        method = "qlora" if r.bits == 4 else "lora"
        rank = 4 if "-r4-" in r.record else 8
        spec = _spec(method=method, bits=r.bits, rank=rank, micro_batch=r.micro_batch, seq_len=r.seq_len,
                     grad_ckpt=r.grad_ckpt)  # fmt: skip
        assert predict_step(spec).step_s == pytest.approx(r.predicted_step_s, rel=1e-6)


@pytest.mark.slow
def test_refit_from_the_records_gives_the_packaged_constants() -> None:
    from lorabench.predict.time.calibrate import calibrate_from_runs

    cal, skipped = calibrate_from_runs(H200_RESULTS)
    assert all("status oom" in line for line in skipped)
    packaged = default_calibration().constants
    for got, want in zip(cal.constants.vector(), packaged.vector(), strict=True):
        assert got == pytest.approx(want, rel=1e-3)


def test_predict_step_fields_and_breakdown() -> None:
    step = predict_step(_spec(), gpu="L40S")
    assert set(step.breakdown_s) == set(BREAKDOWN_KEYS)
    assert step.step_s == pytest.approx(sum(step.breakdown_s.values()))
    assert step.interval_s[0] < step.step_s < step.interval_s[1]
    assert step.tokens_per_s == pytest.approx(4 * 512 / step.step_s)
    assert "EXTRAPOLATED" in step.provenance
    assert json.loads(json.dumps(step.to_json()))["gpu"] == "L40S"


def test_off_fit_gpu_gets_the_published_runs_band_not_the_fit_band() -> None:
    from lorabench.predict.time.roofline import transfer_errors

    transfer = transfer_errors()
    assert transfer is not None
    # the packaged transfer errors were computed with the packaged constants (rerun --write-transfer after a refit)
    assert transfer.calibration_source == default_calibration().source
    on_fit, off_fit = predict_step(_spec(), gpu="H200"), predict_step(_spec(), gpu="L40S")
    fit_low, fit_high = default_calibration().band()
    assert on_fit.interval_s == pytest.approx((on_fit.step_s / (1 + fit_high), on_fit.step_s / (1 + fit_low)))
    low, high = transfer.band()
    assert off_fit.interval_s == pytest.approx((off_fit.step_s / (1 + high), off_fit.step_s / (1 + low)))
    assert high - low > fit_high - fit_low
    assert "published runs on other GPUs" in off_fit.provenance
    assert "published runs" not in on_fit.provenance


def test_dequant_cost_is_per_weight_not_per_token() -> None:
    small = predict_step(_spec(method="qlora", bits=4, micro_batch=2))  # > 512 rows: dequantize + matmul
    big = predict_step(_spec(method="qlora", bits=4, micro_batch=16))
    assert small.breakdown_s["dequant"] == pytest.approx(big.breakdown_s["dequant"], rel=1e-9)
    assert predict_step(_spec(micro_batch=1)).breakdown_s["dequant"] == 0.0


def test_multi_gpu_adds_exposed_communication() -> None:
    spec = _spec(hardware={"gpu": "A5000", "count": 4}, parallelism="ddp")
    step = predict_step(spec)
    assert step.communication is not None and step.gpus == 4
    assert step.breakdown_s["communication"] == pytest.approx(step.communication["exposed_s"])
    assert step.tokens_per_step == 4 * 4 * 512


def test_predict_time_scales_the_step() -> None:
    spec = _spec()
    job = predict_time(spec, 4 * 512 * 100)
    assert job.steps == pytest.approx(100)
    assert job.time_s == pytest.approx(100 * job.step.step_s)
    assert job.interval_s[0] < job.time_s < job.interval_s[1]


def test_bad_inputs() -> None:
    with pytest.raises(CatalogError, match="NoSuchGPU"):
        predict_step(_spec(), gpu="NoSuchGPU")
    with pytest.raises(ConfigError, match="needs a GPU"):
        predict_step(_spec(hardware={"count": 1}))
    with pytest.raises(ConfigError, match="tokens"):
        predict_time(_spec(), 0)
    with pytest.raises(ConfigError, match="engine"):
        predict_step(_spec(), engine="magic")  # type: ignore[arg-type]
    partial = resolve_gpu("H200").model_construct(key="X", bf16_dense_tflops=1.0)
    with pytest.raises(CatalogError, match="int8_dense_tops"):
        roofline._gpu(partial)
    with pytest.raises(ConfigError, match="not a roofline calibration"):
        RooflineCalibration.from_dict({"schema": "lorabench.calibration"})
    bad = default_calibration().to_dict()
    bad["constants"]["eta_bw"] = 1.5
    with pytest.raises(ConfigError, match="eta_bw"):
        RooflineCalibration.from_dict(bad)


def test_cli_calibrate_then_estimate(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lorabench.cli.main import app

    runs = tmp_path / "runs"
    for name in ("llama-3.1-8b-lora-r8-16bit-b4-s512", "llama-3.1-8b-lora-r8-4bit-b8-s512"):
        shutil.copytree(H200_RESULTS[0] / name, runs / name)
    runner = CliRunner()
    result = runner.invoke(app, ["calibrate", str(runs), "--out", str(tmp_path / "cal.json")])
    assert result.exit_code == 0, result.output
    assert "median |error|" in result.output
    out = tmp_path / "est"
    args = ["estimate", "--model", "tiny", "--engine", "none", "--gpu", "H200", "--tokens", "100000"]
    result = runner.invoke(app, [*args, "--calibration", str(tmp_path / "cal.json"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "80% band" in result.output and "time by part" in result.output
    with pytest.raises(DataError):
        from lorabench.predict.time.calibrate import calibrate_from_runs

        calibrate_from_runs(tmp_path / "empty")


@pytest.mark.slow
def test_simulate_engine_agrees_with_formula_on_tiny() -> None:
    spec = RunSpec.model_validate(
        {"model": "tiny", "micro_batch": 2, "seq_len": 128, "grad_ckpt": True, "hardware": {"gpu": "H200"}}
    )
    traced = predict_step(spec, engine="simulate")
    closed = predict_step(spec)
    assert traced.engine == "simulate" and closed.engine == "formula"
    assert traced.step_s == pytest.approx(closed.step_s, rel=0.15)
