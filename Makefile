# Every target builds its own virtual environment from pyproject.toml, so a fresh clone needs
# nothing but Python 3.11+ on the PATH.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo dev test test-e2e lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

## Fill data/spotler.duckdb from the bundled simulator and print a summary.
demo: $(STAMP)
	$(BIN)/python -m spotler_pipeline.demo

## Open the Dagster UI (webserver + daemon) against the bundled simulator.
dev: $(STAMP)
	$(BIN)/python -m spotler_pipeline.devserver

## Run the test suite (offline, against the simulator).
test: $(STAMP)
	$(BIN)/ruff check spotler_pipeline spotler_pipeline_tests $(wildcard scripts)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check spotler_pipeline spotler_pipeline_tests $(wildcard scripts)
	$(BIN)/ruff format --check spotler_pipeline spotler_pipeline_tests $(wildcard scripts)

## Throughput and memory benchmark against the simulator (ours vs. the JSON floor vs. dlt).
bench: $(VENV)/.bench-installed
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) data .dagster_home bench_results
