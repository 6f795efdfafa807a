# The two commands of README.md. Everything runs from a virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint lint-js install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

demo: install
	$(BIN)/casa demo

# The browser code's lint (eslint.config.js) needs Node and npm, for the lint only: the pinned
# tools from package-lock.json, installed again when the lock changes.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

lint-js: node_modules/.package-lock.json
	node_modules/.bin/eslint web/static/js

lint: install-test lint-js
	$(BIN)/ruff check .
	$(BIN)/mypy server signaling web records tests bench

# The suite runs on two processes (pytest-xdist: each with its own PostgreSQL, Chromium and
# coturn), then the tests marked "serial" alone: they measure delays, which a second process
# sharing the machine's two cores would distort. Both parts run; either failing fails.
test: lint
	$(BIN)/python -m pytest -q -n 2 -m "not serial" --durations=25; parallel=$$?; \
	$(BIN)/python -m pytest -q -m serial --durations=10 && exit $$parallel
