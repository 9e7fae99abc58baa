from __future__ import annotations

import lorabench
import lorabench.predict
import lorabench.spec


def test_top_level_exports() -> None:
    assert set(lorabench.__all__) == {
        "CatalogError",
        "ConfigError",
        "DataError",
        "Hardware",
        "LorabenchError",
        "MeasurementError",
        "ModelError",
        "RunSpec",
        "__version__",
        "load_spec",
        "parse_spec",
    }
    for name in lorabench.__all__:
        assert hasattr(lorabench, name)


def test_errors_share_one_root() -> None:
    for name in ("CatalogError", "ConfigError", "DataError", "MeasurementError", "ModelError"):
        assert issubclass(getattr(lorabench, name), lorabench.LorabenchError)


def test_subpackage_exports_resolve() -> None:
    for module in (lorabench.spec, lorabench.predict):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
