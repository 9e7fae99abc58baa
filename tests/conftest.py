from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The module-graph facts cache (lorabench.models.facts) of this test session: never the user's cache dir.
# Subprocesses (CLI tests) inherit it.
if "LORABENCH_TEST_KEEP_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["LORABENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="lorabench-test-cache-")
    atexit.register(shutil.rmtree, os.environ["LORABENCH_CACHE_DIR"], True)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LORABENCH_SHARED", REPO.parent / "shared"))
FINLORA = SHARED / "data" / "finlora"


@pytest.fixture(scope="session")
def finlora() -> Path:
    """The real FinLoRA files shared beside the repository (never copied into it)."""
    if not FINLORA.is_dir():
        pytest.skip(f"FinLoRA data not found at {FINLORA} (set LORABENCH_SHARED)")
    return FINLORA
