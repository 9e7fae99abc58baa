from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import pytest

from lorabench.errors import CatalogError, ConfigError
from lorabench.predict.time.efficiency import (
    DEFAULT_EFFICIENCY,
    PRIOR_EFFICIENCY_BY_BITS,
    Calibration,
    Observation,
    fit_efficiency,
    predict_time,
)
from lorabench.predict.time.flops import FlopsBreakdown, training_flops
from lorabench.spec import parse_spec

A5000_PEAK = 111.1e12
H100_PEAK = 989.5e12  # 'H100' names the SXM part


def _breakdown(per_token: float = 3e9, per_pass: float = 0.0, seq_len: int = 512) -> FlopsBreakdown:
    return FlopsBreakdown(
        method="lora",
        seq_len=seq_len,
        grad_ckpt=False,
        linear_forward_per_token=per_token / 2,
        attention_forward_per_token=0.0,
        forward_per_token=per_token / 2,
        backward_per_token=per_token / 2,
        recompute_per_token=0.0,
        adapter_per_token=0.0,
        dora_per_token=0.0,
        total_per_token=per_token,
        dora_per_micro_batch=per_pass,
        adapted_layers=0,
        linear_layers=0,
    )


def test_time_is_flops_over_peak_times_efficiency() -> None:
    spec = parse_spec({"model": "tiny", "micro_batch": 4, "seq_len": 512})
    pred = predict_time(spec, tokens=1_000_000, gpu="RTX A5000", gpus=2, efficiency=0.5, flops=_breakdown())
    assert pred.flops_total == 1_000_000 * 3e9
    assert pred.time_s == pytest.approx(3e15 / (2 * A5000_PEAK * 0.5), rel=1e-12)
    assert (pred.gpu, pred.gpus, pred.engine) == ("A5000", 2, "flops")
    assert (pred.efficiency, pred.efficiency_source) == (0.5, "input")
    assert pred.peak_flops_per_gpu == pytest.approx(A5000_PEAK)
    assert pred.micro_batches == math.ceil(1_000_000 / 2048) == 489


def test_per_pass_flops_count_once_per_micro_batch() -> None:
    spec = parse_spec({"model": "tiny", "micro_batch": 2, "seq_len": 100})
    pred = predict_time(spec, tokens=1_000, gpu="a5000", efficiency=1.0, flops=_breakdown(10.0, 7.0, seq_len=100))
    assert pred.micro_batches == 5
    assert pred.flops_total == 1_000 * 10.0 + 5 * 7.0


@pytest.mark.parametrize(("bits", "method", "prior"), [(16, "lora", 0.386), (8, "lora", 0.062), (4, "qlora", 0.188)])
def test_default_efficiency_is_a_prior_per_bits(bits: int, method: str, prior: float) -> None:
    spec = parse_spec({"model": "tiny", "bits": bits, "method": method})
    pred = predict_time(spec, tokens=10_000, gpu="H100", flops=_breakdown())
    assert PRIOR_EFFICIENCY_BY_BITS[bits] == prior
    assert (pred.efficiency, pred.efficiency_source) == (prior, "prior")
    assert pred.gpu == "H100-SXM"
    assert pred.time_s == pytest.approx(10_000 * 3e9 / (H100_PEAK * prior), rel=1e-12)
    assert DEFAULT_EFFICIENCY == 0.386


def test_predict_time_counts_flops_from_the_spec() -> None:
    spec = parse_spec({"model": "tiny", "seq_len": 256})
    pred = predict_time(spec, tokens=4096, gpu="A100 80GB")
    assert pred.breakdown == training_flops(spec)
    assert pred.flops_total == 4096 * pred.breakdown.total_per_token
    assert json.loads(json.dumps(pred.to_dict()))["breakdown"]["seq_len"] == 256


def test_bad_input_is_one_clear_message() -> None:
    spec = parse_spec({"model": "tiny"})
    flops = _breakdown()
    with pytest.raises(CatalogError, match="unknown GPU 'B9000'"):
        predict_time(spec, 1000, "B9000", flops=flops)
    for tokens in (0, -5):
        with pytest.raises(ConfigError, match=r"^tokens: must be a positive integer"):
            predict_time(spec, tokens, "A5000", flops=flops)
    with pytest.raises(ConfigError, match=r"^gpus: must be a positive integer \(got 0\)"):
        predict_time(spec, 1000, "A5000", gpus=0, flops=flops)
    for eff in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match=r"^efficiency: must be a fraction of peak in \(0, 1\]"):
            predict_time(spec, 1000, "A5000", efficiency=eff, flops=flops)


def _observations(efficiency: float, bits: int, count: int, noise: float = 0.0, seed: int = 0) -> list[Observation]:
    rng = random.Random(seed)
    runs = []
    for i in range(count):
        flops, gpus, peak = (1 + i) * 3.7e17, 1 + i % 4, [A5000_PEAK, H100_PEAK][i % 2]
        time_s = flops / (gpus * peak * efficiency) * (1 + rng.uniform(-noise, noise))
        runs.append(Observation(flops, gpus, peak, time_s, bits, gpu="A5000" if i % 2 == 0 else "H100"))
    return runs


def test_fit_recovers_known_efficiency_per_bits() -> None:
    cal = fit_efficiency(_observations(0.42, 16, 6) + _observations(0.21, 4, 3))
    assert cal.efficiency_by_bits[16] == pytest.approx(0.42, rel=1e-12)
    assert cal.efficiency_by_bits[4] == pytest.approx(0.21, rel=1e-12)
    assert cal.runs_by_bits == {16: 6, 4: 3}
    assert cal.runs == 9
    assert all(abs(e) < 1e-12 for errors in cal.relative_errors_by_bits.values() for e in errors)
    assert cal.source == "9 runs"
    assert cal.gpus == ("A5000", "H100")


def test_fit_with_noise_reports_residuals() -> None:
    runs = _observations(0.3, 8, 50, noise=0.1, seed=3)
    cal = fit_efficiency(runs, source="runs/h100")
    assert cal.efficiency_by_bits[8] == pytest.approx(0.3, rel=0.03)
    assert len(cal.relative_errors_by_bits[8]) == 50
    assert 0.01 < cal.max_abs_relative_error(8) < 0.15
    # relative least squares: the residuals k r_i - 1 are orthogonal to r_i = ideal_i / measured_i
    ratios = [run.ideal_time_s() / run.measured_time_s for run in runs]
    weighted = sum(r * e for r, e in zip(ratios, cal.relative_errors_by_bits[8], strict=True))
    assert weighted == pytest.approx(0, abs=1e-12)


def test_fit_by_hand_on_two_runs() -> None:
    # ideal times 1 s and 1 s, measured 2 s and 4 s: r = (0.5, 0.25), k = 0.75 / 0.3125 = 2.4
    runs = [Observation(1e12, 1, 1e12, 2.0, 16), Observation(2e12, 2, 1e12, 4.0, 16)]
    cal = fit_efficiency(runs)
    assert cal.efficiency_by_bits[16] == pytest.approx(1 / 2.4)
    assert cal.relative_errors_by_bits[16] == pytest.approx((0.2, -0.4))


def test_fit_rejects_bad_observations() -> None:
    with pytest.raises(ConfigError, match="no measured runs"):
        fit_efficiency([])
    with pytest.raises(ConfigError, match=r"observation 1: .*positive numbers"):
        fit_efficiency([Observation(1e12, 1, 1e12, 10.0, 16), Observation(1e12, 1, 1e12, 0.0, 16)])
    with pytest.raises(ConfigError, match="observation 0: bits must be 16, 8 or 4"):
        fit_efficiency([Observation(1e12, 1, 1e12, 10.0, 2)])
    with pytest.raises(ConfigError, match="above 1"):
        fit_efficiency([Observation(1e12, 1, 1e12, 0.5, 16)])


def test_calibration_round_trips_through_json_and_drives_predictions() -> None:
    cal = fit_efficiency(_observations(0.4, 16, 4), source="results/a5000")
    loaded = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert loaded == cal
    assert Calibration.from_dict(cal.to_dict(), source="cal.json").source == "cal.json"

    spec16 = parse_spec({"model": "tiny"})
    pred = predict_time(spec16, 10_000, "A5000", calibration=loaded, flops=_breakdown())
    assert pred.efficiency == pytest.approx(0.4)
    assert pred.efficiency_source == "calibrated: results/a5000"
    other_gpu = predict_time(spec16, 10_000, "L4", calibration=loaded, flops=_breakdown())
    assert other_gpu.efficiency_source == "calibrated: results/a5000 (fitted on A5000, H100)"
    spec4 = parse_spec({"model": "tiny", "method": "qlora"})
    fallback = predict_time(spec4, 10_000, "A5000", calibration=loaded, flops=_breakdown())
    assert (fallback.efficiency, fallback.efficiency_source) == (0.188, "prior (calibration has no 4-bit runs)")
    explicit = predict_time(spec16, 10_000, "A5000", efficiency=0.9, calibration=loaded, flops=_breakdown())
    assert explicit.efficiency_source == "input"


def test_malformed_calibration_record() -> None:
    record = fit_efficiency(_observations(0.4, 16, 2)).to_dict()
    with pytest.raises(ConfigError, match="not a lorabench calibration"):
        Calibration.from_dict({**record, "schema": "other"})
    with pytest.raises(ConfigError, match="malformed calibration record"):
        Calibration.from_dict({**record, "efficiency_by_bits": {"16": 1.5}})
    with pytest.raises(ConfigError, match="malformed calibration record"):
        Calibration.from_dict({**record, "efficiency_by_bits": {"3": 0.5}})
    cal = Calibration.from_dict(record)
    assert replace(cal, source="x").source == "x"
