# The same targets run locally and in CI (.ci/run calls `make test`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench quality clean rules

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/screening run

test: $(STAMP) rules
	$(BIN)/ruff check screening workers tests bench
	$(BIN)/python -m pytest

# Alert rules: validated and unit-tested with promtool (Debian package `prometheus`, which
# .ci/run installs); skipped with the reason when promtool is missing, except under CI=true.
rules:
	@if command -v promtool >/dev/null 2>&1; then \
		cd deploy/prometheus && promtool check config prometheus.yml && promtool test rules alerts_test.yml \
		&& { ! command -v amtool >/dev/null 2>&1 || amtool check-config ../alertmanager/alertmanager.yml; }; \
	elif [ "$$CI" = "true" ]; then \
		echo "promtool not found: install the Debian package prometheus (CI=true)" >&2; exit 1; \
	else \
		echo "SKIPPED alert rule checks: promtool not on PATH (apt-get install prometheus)"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check screening workers tests bench
	$(BIN)/screening wordlist lint

bench: $(STAMP)
	$(BIN)/python bench/engine.py

# Detection quality on every evaluation set, targets beside the figures (docs/quality.md);
# QUALITY_ARGS="--compare old.json --limit 2000 ..." passes options through.
quality: $(STAMP)
	$(BIN)/python bench/quality.py $(QUALITY_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
