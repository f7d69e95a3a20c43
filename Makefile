# The two commands a new engineer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
export AMANAT_TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: run test lint typecheck layers unit pytest-sqlite pytest-postgres install install-dev clean \
	bench bench-smoke drills

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_RUN): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(STAMP_DEV): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)
install-dev: $(STAMP_DEV)

run: $(STAMP_RUN)
	@mkdir -p var
	$(BIN)/amanat migrate
	$(BIN)/amanat sandbox seed
	AMANAT_WORKER__EMBEDDED=true AMANAT_AUDIT__WITNESS_FILE=$${AMANAT_AUDIT__WITNESS_FILE:-var/audit-witness.jsonl} \
		$(BIN)/amanat serve

lint: $(STAMP_DEV)
	$(BIN)/ruff check src tests tools bench
	$(BIN)/ruff format --check src tests tools bench

typecheck: $(STAMP_DEV)
	$(BIN)/mypy

layers: $(STAMP_DEV)
	PYTHONPATH=. $(BIN)/lint-imports

pytest-sqlite: $(STAMP_DEV)
	AMANAT_TEST_DB=sqlite $(BIN)/pytest

pytest-postgres: $(STAMP_DEV)
	AMANAT_TEST_DB=postgresql $(BIN)/pytest -m "not sqlite_only" tests/integration tests/api tests/e2e

# Lint, types and layers first (a failure there stops here), then the two pytest passes side
# by side: many tests wait on real server and worker processes, so the passes overlap well
# even on two cores. Each pass's output is printed whole when it ends; make test fails if
# either pass fails (both run to the end).
test: lint typecheck layers
	@echo "pytest on SQLite and on PostgreSQL, side by side (each pass's output when it ends)"
	@$(MAKE) --no-print-directory -j2 --output-sync=target pytest-sqlite pytest-postgres

# Benchmarks (bench/README.md): both databases, server and worker started by the bench.
# Options are environment variables, e.g. `make bench BENCH_DURATION=10`. Then the
# reconciliation scenario (bench/reconciliation.py: a million-row settlement report matched
# in process) and the timeline scenario (bench/timeline.py: one payment's timeline read
# from a million), whatever the first part's outcome; any failed check fails the target.
# The development install: the reconciliation scenario's DuckDB baseline needs it.
bench: $(STAMP_DEV)
	status=0; $(BIN)/python -m bench.run || status=1; \
		$(BIN)/python -m bench.reconciliation || status=1; \
		$(BIN)/python -m bench.timeline || status=1; exit $$status

# A few seconds per scenario, correctness checks only (no timing thresholds); for CI.
bench-smoke: $(STAMP_RUN)
	status=0; $(BIN)/python -m bench.run --smoke || status=1; \
		$(BIN)/python -m bench.reconciliation --smoke || status=1; \
		$(BIN)/python -m bench.timeline --smoke || status=1; exit $$status

# The crash drill (tests/support/crash_drill.py): payouts while server+worker are SIGKILLed
# at random moments, on SQLite and PostgreSQL; prints lost/duplicated/stuck figures.
# Options: `make drills DRILL_ARGS="--kills 16 --payouts 600 --database both"`.
DRILL_ARGS ?= --kills 16 --payouts 600 --database both
drills: $(STAMP_DEV)
	$(BIN)/python -m tests.support.crash_drill $(DRILL_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
