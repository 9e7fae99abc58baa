# Two commands for a newcomer:  `make demo` (set-up + main job)  and  `make test` (lint, types, tests).
# torch is installed first, on its own: the CPU build by default (TORCH=torch==2.13.0 lies on this
# machine's disk). On a GPU machine install your CUDA torch into .venv first, or pass TORCH=...;
# an already-installed torch is never replaced.
VENV    ?= .venv
PYTHON  ?= python3
TORCH   ?= torch==2.13.0
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.lorabench-installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(STAMP)

# Main job: measure five methods on `tiny`, predict the seed's Llama-3.1-8B memory table, cost FinLoRA's
# job against commercial fine-tuning, and write the report into lorabench-out/.
demo: setup
	$(VENV)/bin/lorabench demo --out lorabench-out

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

# The suite runs in TEST_WORKERS processes (pytest-xdist), each test file in one process (its module fixtures are
# built once), with one torch thread per process so two processes do not oversubscribe two cores.
# `pytest path` by hand stays serial.
TEST_WORKERS ?= 2

test: lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile
