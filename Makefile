# One entry point for set-up, the demo and the tests (README's two commands).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?= -m "not gpu"

.PHONY: setup demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "builder needs Python >= 3.10"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/builder env manywheel-py3_12-cpu --project examples/minitorch
	$(BIN)/builder env manywheel-py3_12-cuda13_0 --project examples/minitorch --format json
	$(BIN)/builder matrix --release 2.0 --format github
	$(BIN)/builder matrix --package-type manywheel --package-type libtorch

lint: $(STAMP)
	$(BIN)/ruff check builder tests
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
