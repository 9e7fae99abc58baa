from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LORABENCH_SHARED", REPO.parent / "shared"))
FINLORA = SHARED / "data" / "finlora"


@pytest.fixture(scope="session")
def finlora() -> Path:
    """The real FinLoRA files shared beside the repository (never copied into it)."""
    if not FINLORA.is_dir():
        pytest.skip(f"FinLoRA data not found at {FINLORA} (set LORABENCH_SHARED)")
    return FINLORA
