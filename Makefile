# One command each: `make test` runs everything CI runs, `make demo` shows nsscale at work.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo sandbox lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n auto  # every core (pytest-xdist); the timing group on one: tests/conftest.py

demo: $(STAMP)
	$(BIN)/python -m tests.apiserver.demo

sandbox: $(STAMP)
	$(BIN)/python -m tests.apiserver.sandbox

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.many
	$(BIN)/python -m benchmarks.reconcile
	$(BIN)/python -m benchmarks.scheduler
	$(BIN)/python -m benchmarks.serve

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
