from __future__ import annotations

from pathlib import Path

import pytest

from lorabench.report import build_report, write_report

from . import synthetic as syn


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed-like results folder reported once (plots drawn) and shared: the output folder."""
    root = tmp_path_factory.mktemp("seed")
    syn.seed_folder(root / "results")
    out = root / "out"
    write_report(build_report(root / "results"), out)
    return out
