# One command each on a fresh clone with only Python 3 and make: `make dev`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

dev: $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	$(BIN)/mimamori dev

# pytest exits 5 when it collects no tests; make fails on that too, as it should.
test: $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	$(BIN)/pytest -q

# ruff over the whole tree (mypy and the import contract are to join it).
lint: $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	$(BIN)/ruff check .
