# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv and node_modules on first use and refresh them when the pins change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup demo test lint synth bench lock clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The main job on the local default: two releases served, switched and rolled back (no AWS).
demo: setup
	$(BIN)/hosting-toolkit demo

## Every check CI runs: lint, types, and the whole test suite.
test: setup lint
	$(BIN)/python -m pytest -n 2 -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Synthesize the stack offline and print its summary.
synth: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth --quiet

bench: setup
	$(BIN)/python bench/release_bench.py

## Lock the release engine's dependencies again from requirements.txt (needs PyPI): hosting_toolkit/pipeline/engine.lock.
lock: setup
	$(BIN)/python -m hosting_toolkit.pipeline.wheelhouse lock

clean:
	rm -rf $(VENV) node_modules cdk.out .demo
