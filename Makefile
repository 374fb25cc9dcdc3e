# Set-up: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test test-compile check lint typecheck imports bench-harness screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# A stamp per extras set, so a changed pyproject.toml reinstalls and an unchanged one is free.
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[coreml,onnx,openvino,executorch]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,coreml,onnx,openvino,executorch]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,coreml,onnx,openvino,executorch,dev]'
	touch $@

run: $(VENV)/.installed-base
	$(BIN)/anetui $(ARGS)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check anetui tests benchmarks scripts
	$(BIN)/ruff format --check anetui tests benchmarks scripts

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

check: lint typecheck imports test

# The real torch.compile test (~1 min cold), kept out of `make test`.
test-compile: $(VENV)/.installed-test
	ANETUI_COMPILE_TESTS=1 $(BIN)/python -m pytest tests/test_torch_compile.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Prints the harness figures of benchmarks/harness.py (about a minute; not part of CI).
bench-harness: $(VENV)/.installed-test
	$(BIN)/python benchmarks/harness.py

# screenshots/*.svg (+ PNG with headless Chromium: apt-get install chromium) from a real run.
screenshots: $(VENV)/.installed-test
	$(BIN)/python scripts/screenshots.py
