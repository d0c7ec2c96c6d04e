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

# The main job: build, repair and smoke-test the bundled example for two Pythons on CPU and,
# where a CUDA 13.0 toolkit exists, for CUDA; artifacts and build-report.json land in dist/.
DEMO_CONFIGS := manywheel-py3_11-cpu manywheel-py3_12-cpu $(if $(shell command -v nvcc),manywheel-py3_12-cuda13_0,)

demo: $(STAMP)
	$(BIN)/builder matrix --release 2.0 --package-type manywheel
	$(BIN)/builder env manywheel-py3_12-cpu --project examples/minitorch --format json
	$(BIN)/builder build examples/minitorch $(DEMO_CONFIGS) -o dist

lint: $(STAMP)
	$(BIN)/ruff check builder tests
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
