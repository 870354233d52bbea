# Two commands do all set-up on a fresh machine (only Python needed):
#   make run    runs the service with embedded defaults
#   make test   runs the whole suite: lint, types, architecture, tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run simulator test lint typecheck archcheck services unit bench-simulator clean

# The first pip step is the Dockerfile's install step, verbatim (tests/unit/test_dockerfile.py
# keeps them equal), so every test run proves the image's install works; the dev extras are
# then installed editable over it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --no-cache-dir .
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/vehicle-gateway serve

simulator: $(STAMP)
	$(BIN)/vehicle-gateway simulator --port 8770

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

archcheck: $(STAMP)
	$(BIN)/lint-imports

services:
	bash scripts/ensure_services.sh

test: lint typecheck archcheck services
	$(BIN)/pytest

bench-simulator: $(STAMP)
	$(BIN)/python bench/simulator_throughput.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
