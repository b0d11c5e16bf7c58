# One command each on a fresh clone with only Python 3 and make: `make dev`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

dev: $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	$(BIN)/mimamori dev

# pytest exits 5 when it collects no tests; make fails on that too, as it should.
test: $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	$(BIN)/pytest -q
