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

# Main job: exact parameters and model size for the FinLoRA seed's configuration
# (Llama-3.1-8B, LoRA r8 on q/k/v), at 16, 8 and 4 bits. Becomes `lorabench demo` when that lands.
demo: setup
	$(VENV)/bin/lorabench estimate --model meta-llama/Llama-3.1-8B-Instruct --rank 8 \
		--targets q_proj,k_proj,v_proj --bits 8

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest
