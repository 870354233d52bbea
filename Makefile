# Two commands do all set-up on a fresh machine (only Python needed):
#   make run    runs the service with embedded defaults
#   make test   runs the whole suite: lint, types, architecture, tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run simulator test lint typecheck archcheck unit bench-simulator clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/vehicle-gateway simulator

simulator: $(STAMP)
	$(BIN)/vehicle-gateway simulator --port 8770

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

archcheck: $(STAMP)
	$(BIN)/lint-imports

test: lint typecheck archcheck
	$(BIN)/pytest

bench-simulator: $(STAMP)
	$(BIN)/python bench/simulator_throughput.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
