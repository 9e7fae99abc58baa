from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lorabench
import lorabench.predict
import lorabench.spec
from lorabench import api

SRC = Path(__file__).resolve().parents[1] / "src"

PUBLIC = {
    "CatalogError",
    "ConfigError",
    "CostComparison",
    "DataError",
    "EstimateResult",
    "FitReport",
    "Hardware",
    "LorabenchError",
    "MeasurementError",
    "ModelError",
    "RunResult",
    "RunSpec",
    "__version__",
    "compare_costs",
    "estimate",
    "fit",
    "load_spec",
    "parse_spec",
    "run",
}


def test_top_level_exports() -> None:
    assert set(lorabench.__all__) == PUBLIC
    for name in lorabench.__all__:
        assert hasattr(lorabench, name)
    assert set(dir(lorabench)) >= PUBLIC


def test_api_exports() -> None:
    assert set(api.__all__) == {
        "CostComparison",
        "EstimateResult",
        "FitReport",
        "RunResult",
        "compare_costs",
        "cost",
        "estimate",
        "fit",
        "load_spec",
        "run",
    }
    assert lorabench.estimate is api.estimate and lorabench.compare_costs is api.compare_costs


def _parameters(function: object) -> list[tuple[str, str, object]]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.kind.name, p.default) for p in signature.parameters.values()]


def test_signatures_and_cli_defaults() -> None:
    empty = inspect.Parameter.empty
    assert _parameters(api.estimate) == [
        ("spec", "POSITIONAL_OR_KEYWORD", empty),
        ("engine", "KEYWORD_ONLY", "simulate"),  # the CLI's default
        ("device", "KEYWORD_ONLY", "cuda"),
        ("gpu", "KEYWORD_ONLY", None),
        ("gpus", "KEYWORD_ONLY", None),
        ("tokens", "KEYWORD_ONLY", None),
        ("calibration", "KEYWORD_ONLY", None),
        ("overrides", "KEYWORD_ONLY", None),
        ("loaded", "KEYWORD_ONLY", None),
    ]
    assert _parameters(api.fit) == [
        ("spec", "POSITIONAL_OR_KEYWORD", empty),
        ("gpu", "KEYWORD_ONLY", empty),
        ("gpus", "KEYWORD_ONLY", None),
        ("overrides", "KEYWORD_ONLY", None),
    ]
    assert _parameters(api.cost) == [("scenario", "POSITIONAL_OR_KEYWORD", empty), ("catalogs", "KEYWORD_ONLY", ())]
    assert _parameters(api.load_spec) == [
        ("source", "POSITIONAL_OR_KEYWORD", None),
        ("overrides", "POSITIONAL_OR_KEYWORD", None),
        ("fields", "VAR_KEYWORD", empty),
    ]
    assert _parameters(api.run) == [
        ("spec", "POSITIONAL_OR_KEYWORD", empty),
        ("out", "KEYWORD_ONLY", empty),
        ("options", "KEYWORD_ONLY", None),
        ("nproc", "KEYWORD_ONLY", 1),
        ("progress", "KEYWORD_ONLY", False),
    ]


def test_errors_share_one_root() -> None:
    for name in ("CatalogError", "ConfigError", "DataError", "MeasurementError", "ModelError"):
        assert issubclass(getattr(lorabench, name), lorabench.LorabenchError)


def test_subpackage_exports_resolve() -> None:
    for module in (lorabench.spec, lorabench.predict):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_import_is_cheap() -> None:
    code = (
        "import json, sys, lorabench, lorabench.cli.main\n"
        "print(json.dumps([m for m in ('torch', 'transformers', 'peft', 'lorabench.api') if m in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(proc.stdout) == []


def test_load_spec_takes_a_str_path_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yml"
    path.write_text("model: tiny\nrank: 4\n", "utf-8")
    assert lorabench.load_spec(str(path)).rank == 4
    spec = lorabench.load_spec(str(path), {"bits": 8}, gpu="A5000")
    assert (spec.rank, spec.bits, spec.hardware.gpu) == (4, 8, "A5000")
    assert lorabench.load_spec(None, model="tiny").model == "tiny"
    with pytest.raises(lorabench.ConfigError, match="no model given"):
        lorabench.load_spec()


def test_estimate_result_is_the_cli_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lorabench.cli.main import main

    path = tmp_path / "cfg.yml"
    path.write_text("model: tiny\nmethod: dora\nbits: 4\n", "utf-8")
    result = lorabench.estimate(path, engine="formula", gpu="A5000", tokens=20_000)
    assert (
        main(
            ["estimate", "--config", str(path), "--engine", "formula", "--gpu", "A5000", "--tokens", "20000", "--json"]
        )
        == 0
    )
    cli = json.loads(capsys.readouterr().out)
    ours = result.to_json()
    assert isinstance(ours["library_warnings"], list) and isinstance(cli["library_warnings"], list)
    for record in (cli, ours):
        record.pop("library_warnings")  # import-time notices come with the first call only
        record.pop("engine_seconds")
        record["time"].pop("seconds", None)
    assert ours == cli
    assert result.peak_allocated_bytes == cli["peak_allocated_bytes"]
    assert result.fits is not None and set(result.fits) == set(cli["fits"])
    assert result.predicted_time_s == cli["predicted_time_s"]
    assert result.spec.method == "dora"
    with pytest.raises(lorabench.ConfigError, match="engine"):
        lorabench.estimate(path, engine="guess")  # type: ignore[arg-type]


def test_fit_and_cost_results(tmp_path: Path) -> None:
    report = lorabench.fit({"model": "tiny"}, gpu="A5000")
    assert report.record["schema"] == "lorabench.fit"
    assert report.largest_micro_batch is not None and report.largest_micro_batch > 1
    scenario = Path(__file__).resolve().parents[1] / "examples" / "finlora_seed_cost.yaml"
    comparison = lorabench.compare_costs(scenario)
    assert comparison.record["schema"] == "lorabench.cost"
    assert [row.model_dump(mode="json") for row in comparison.rows] == comparison.record["rows"]


def test_library_warnings_are_kept_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    import logging
    import warnings

    with api.capture_library_warnings() as caught:
        warnings.warn("use_reentrant should be passed explicitly", UserWarning, stacklevel=1)
        warnings.warn("use_reentrant should be passed explicitly", UserWarning, stacklevel=1)
        logging.getLogger("transformers.modeling_utils").warning("a transformers notice")
    assert caught == [
        "transformers.modeling_utils: a transformers notice",
        "UserWarning: use_reentrant should be passed explicitly",
    ]
    out, err = capsys.readouterr()
    assert "use_reentrant" not in out + err and "notice" not in out + err
