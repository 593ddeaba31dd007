# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck unit bench bench-metrics bench-metrics-query bench-query clean

install: $(STAMP)

# The editable install also compiles the C extensions into src/ (so PYTHONPATH=src finds them too): a
# change to their source must install again.
$(STAMP): pyproject.toml $(wildcard src/sextant/*/*.c src/sextant/*/*/*.c)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Sextant needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/sextant serve $(ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck unit

bench: install
	$(BIN)/python bench/ingest.py

# Starts VictoriaMetrics (Debian package victoria-metrics, installed if missing) beside Sextant.
bench-metrics: install
	$(BIN)/python bench/metrics_ingest.py

# Metric queries against VictoriaMetrics on the same points; ARGS=--long adds 30 days at 1 min.
bench-metrics-query: install
	$(BIN)/python bench/metrics_query.py $(ARGS)

# 10M events: the first run generates and imports them (a few minutes) into bench/.work/.
bench-query: install
	$(BIN)/python bench/query.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
