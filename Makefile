# Two commands do all set-up on a fresh machine (only Python needed):
#   make run    runs the service with embedded defaults
#   make test   runs the whole suite: lint, types, architecture, tests (and the unit tier
#               again at fixed instants: month end, year end, leap day, a month's start)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip
# Worker processes for the suite (pytest-xdist): most tests wait on sockets and child
# processes, so four keep two cores busy (pytest took 3 min 08 s on 4, with work stealing,
# in a warm working tree; 6 workers were no faster).
TEST_WORKERS ?= 4
# Written once the bytecode of the whole suite is (see below).
COLLECTED := tests/__pycache__/.collected
# checkov, the deployment manifests' security scanner, in a tool environment of its own: it
# pins an older `packaging` than the project's, so it cannot share .venv (not in the image).
CHECKOV_ENV   := .tools/checkov
CHECKOV_STAMP := $(CHECKOV_ENV)/.installed

.PHONY: run simulator test static lint typecheck archcheck services pytest timetravel soak lock \
	bench-simulator api-release clean clean-services checkov deploycheck

# Exact versions from the lock files (hashes checked). The first install line is the
# Dockerfile's, verbatim (tests/unit/test_dockerfile.py keeps them equal), and so is the
# wheel build of the project after it: every test run proves the image's install works.
# The dev set (same versions, plus the tools) and an editable install go over it, built with
# the locked setuptools the dev set brings (no second build environment to fetch and fill).
$(STAMP): pyproject.toml requirements/runtime.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(BIN)/python -m pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
	$(BIN)/python -m pip install --no-cache-dir --no-deps .
	$(PIP) install --quiet --require-hashes -r requirements/dev.txt
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Exact versions from requirements/checkov.txt (hashes checked), made afresh when it changes.
$(CHECKOV_STAMP): requirements/checkov.txt
	rm -rf $(CHECKOV_ENV)
	$(PYTHON) -m venv $(CHECKOV_ENV)
	$(CHECKOV_ENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_ENV)/bin/python -m pip install --quiet --require-hashes -r requirements/checkov.txt
	touch $@

checkov: $(CHECKOV_STAMP)

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

# PostgreSQL, Redis, libfaketime and promtool (the alert rules' tests), unpacked into
# .services/ when the machine lacks them (nothing outside the project is written; see the
# scripts).
services:
	bash scripts/ensure_services.sh
	bash scripts/ensure_promtool.sh

# The suite starts many Python processes (xdist workers, the instants below, replicas, CLI
# runs); each would compile the project and rewrite the tests' asserts again if the machine
# sets PYTHONDONTWRITEBYTECODE, so it is cleared for them: the bytecode lands in the
# project's own __pycache__ directories (ignored by git).
pytest timetravel $(COLLECTED): export PYTHONDONTWRITEBYTECODE :=

# One collection writes that bytecode before the workers and the instants start: started
# together on a fresh clone, each of those seven processes would compile the project and
# rewrite every test module itself (about 9 s of CPU each). It runs beside the static
# checks, and again only when a source changed. Nothing relies on it: Python and pytest
# check each cached file against its source, and a collection error is left for pytest
# itself to report.
$(COLLECTED): $(STAMP) $(shell find gateway storage clients tests -name '*.py')
	$(BIN)/pytest --collect-only -q -p no:cacheprovider > /dev/null 2>&1 && touch $@ || true

# Work stealing: a worker that runs out of tests takes queued ones from a busy worker, so
# the long multi-process tests do not leave the other workers idle at the end.
pytest: $(STAMP) services $(COLLECTED)
	$(BIN)/pytest --numprocesses $(TEST_WORKERS) --dist worksteal \
		--ignore=tests/deploy/test_checkov.py

# checkov's scan of deploy/ (tests/deploy/test_checkov.py) runs beside pytest, not in it:
# its tool environment takes a minute or two to build on a fresh machine, which the rest of
# the suite need not wait for.
deploycheck: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/pytest -p no:cacheprovider tests/deploy/test_checkov.py

# The unit tier at instants where date bugs live (libfaketime moves the process's clock).
timetravel: $(STAMP) services $(COLLECTED)
	bash scripts/timetravel.sh

# The static checks run beside the collection that writes the bytecode, then beside pytest,
# the unit tier at fixed instants and checkov's scan (pytest's workers leave part of two
# cores idle while they wait on sockets and child processes; checkov's environment is mostly
# downloads); each target's output is kept together.
test: $(STAMP) services
	$(MAKE) --no-print-directory --jobs=4 --output-sync=target static pytest timetravel deploycheck

static: lint typecheck archcheck

# The long soak: 50 SIGKILLs of a replica in the middle of a token rotation (the default
# suite runs 4). About 3 minutes.
soak: $(STAMP) services
	VG_SOAK_TRIALS=50 $(BIN)/pytest -s tests/replicas -k killing_a_replica
	VG_MIGRATION_FLEET=1000 $(BIN)/pytest tests/rpc/test_v3.py -k moves_to_v3

# Refresh the lock files from pyproject.toml (newest versions its ranges allow).
lock: $(STAMP)
	$(PIP) install --quiet pip-tools
	printf '# %s\n' "The exact versions, with hashes, of what the gateway needs at run time (the" \
		"image installs exactly these). Generated from pyproject.toml by \`make lock\`." \
		> requirements/runtime.txt
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-header \
		--no-emit-index-url --no-emit-find-links --upgrade -o - pyproject.toml \
		>> requirements/runtime.txt
	printf '# %s\n' "The exact versions, with hashes, of everything \`make test\` installs: the" \
		"run-time set (requirements/runtime.txt, same versions) plus the dev extras." \
		> requirements/dev.txt
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-header \
		--no-emit-index-url --no-emit-find-links --extra dev -c requirements/runtime.txt \
		-o - pyproject.toml >> requirements/dev.txt
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --upgrade -o requirements/checkov.txt \
		requirements/checkov.in

# Record the API as released (docs/api-versioning.md): the image `buf breaking` compares
# protos/ against, in the commit that is deployed. Pretty-printed, so that its diff in that
# commit shows what the release changed.
api-release: $(STAMP)
	$(BIN)/buf build --exclude-source-info -o -#format=json \
		| $(BIN)/python -m json.tool --indent 1 > protos/released/vehiclegateway-v1.json.tmp
	mv protos/released/vehiclegateway-v1.json.tmp protos/released/vehiclegateway-v1.json

bench-simulator: $(STAMP)
	$(BIN)/python bench/simulator_throughput.py

clean:
	rm -rf $(VENV) .tools .mypy_cache .pytest_cache .ruff_cache

clean-services:
	rm -rf .services
