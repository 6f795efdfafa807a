# The two commands of README.md. Everything runs from a virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

demo: install
	$(BIN)/casa demo

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy server signaling web records tests bench

test: lint
	$(BIN)/python -m pytest -q
