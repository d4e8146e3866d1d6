# Every target builds its own virtual environment from pyproject.toml, so a fresh clone needs
# nothing but Python 3.11+ on the PATH.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Two installs: what running needs (`make demo`, `make dev`: the package) and, on top of it,
# what testing needs (`make test`, `make lint`: the `dev` extra's test and browser tooling).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
CHROMIUM ?= /usr/bin/chromium
PG_BIN   ?= $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
# Test processes (pytest-xdist): most tests wait on a simulator, a Dagster process or
# PostgreSQL, so two workers keep two cores busy. `make test WORKERS=0` runs in one process.
WORKERS  ?= 2

.PHONY: demo dev test test-e2e chromium postgresql lint bench bench-backfill clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.bench-installed: $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

## Fill data/spotler.duckdb from the bundled simulator and print a summary.
demo: $(RUN_STAMP)
	$(BIN)/python -m spotler_pipeline.demo

## Open the Dagster UI (webserver + daemon) against the bundled simulator. Arguments:
## make dev ARGS='--port 3001'. Ctrl-C or SIGTERM stops it all within seconds.
dev: $(RUN_STAMP)
	$(BIN)/python -m spotler_pipeline.devserver $(ARGS)

## Run the test suite (offline, against the simulator), end-to-end and browser tests included.
test: $(DEV_STAMP) chromium postgresql
	$(BIN)/ruff check spotler_pipeline spotler_pipeline_tests $(wildcard scripts) notebooks
	$(BIN)/dg check defs
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile --no-loadscope-reorder

## Only the end-to-end tests: dagster dev + UI backfill, and the browser (screenshots in test-artifacts/).
test-e2e: $(DEV_STAMP) chromium
	$(BIN)/python -m pytest -q -m slow -n $(WORKERS) --dist loadfile --no-loadscope-reorder

## Debian's headless Chromium for the browser test (Playwright drives it; never `playwright install`).
## Installed with apt-get when missing and we are root; otherwise the browser test skips, saying why.
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "note: $(CHROMIUM) is missing and cannot be installed here (needs root and apt-get); the browser test will skip"; \
	fi

## Debian's PostgreSQL server for the lake tests (a throwaway cluster per test session, run as
## user postgres when we are root). Installed with apt-get when missing and we are root;
## otherwise the lake tests skip, saying why.
postgresql:
	@if [ -n "$(PG_BIN)" ] || command -v initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's postgresql for the lake tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
	  echo "note: PostgreSQL's server (initdb, pg_ctl) is missing and cannot be installed here (needs root and apt-get); the lake tests will skip"; \
	fi

lint: $(DEV_STAMP)
	$(BIN)/ruff check spotler_pipeline spotler_pipeline_tests $(wildcard scripts) notebooks
	$(BIN)/ruff format --check spotler_pipeline spotler_pipeline_tests $(wildcard scripts) notebooks

## Throughput and memory benchmark against the simulator (ours vs. the JSON floor vs. dlt).
## Then a 30-day backfill through dagster dev on both backends (scripts/bench_backfill.py),
## and the follow-up rules' daily work on a 50M-row warehouse (scripts/bench_follow_ups.py).
bench: $(VENV)/.bench-installed postgresql
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_backfill.py
	$(BIN)/python scripts/bench_follow_ups.py --rows 50000000

## Only the 30-day backfill, DuckDB file vs DuckLake on PostgreSQL (~10.8M interaction rows;
## README "Benchmark"). Arguments: make bench-backfill ARGS='--scale 1'
bench-backfill: $(VENV)/.bench-installed postgresql
	$(BIN)/python scripts/bench_backfill.py $(ARGS)

clean:
	rm -rf $(VENV) data .dagster_home bench_results
