# One command runs aihub (`make serve`), one runs the tests (`make test`); both set up everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0
export RAY_AUTH_MODE := disabled
export TOKENIZERS_PARALLELISM := false

.PHONY: install serve test lint bench clean lock lock-upgrade

# The installer, at the version the lock names (it is in the lock, so `uv pip sync` keeps it).
UV_VERSION := $(shell sed -n 's/^uv==\([0-9.]*\).*/\1/p' requirements.lock)
# torch 2.13.0+cpu is not on PyPI: these machines keep the wheel in /opt/wheels; elsewhere it comes from
# PyTorch's CPU index (untested here: only PyPI is reachable).
TORCH_SOURCE ?= $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu)
LOCK_FLAGS := --override requirements-overrides.txt $(TORCH_SOURCE) --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --generate-hashes --no-emit-package aihub \
	--custom-compile-command 'make lock'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)

# Exactly the locked set (hash-checked; anything else in the venv is removed), then the project itself
# from this checkout without its dependencies.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes $(TORCH_SOURCE) requirements.lock
	rm -rf aihub.egg-info  # a stale one left by an older pip install would shadow the entry points
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $@

# Re-resolve requirements.in, keeping the current pins where they still fit (`make lock-upgrade` takes
# the newest of everything); then `make test` checks the new set.
lock: | $(BIN)/uv
	$(BIN)/uv pip compile requirements.in $(LOCK_FLAGS) --quiet -o requirements.lock

lock-upgrade: | $(BIN)/uv
	$(BIN)/uv pip compile requirements.in $(LOCK_FLAGS) --upgrade --quiet -o requirements.lock

install: $(VENV)/.installed

serve: install
	$(BIN)/aihub serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/aihub bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
