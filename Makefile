# Set-up: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test check lint typecheck imports bench-harness bench-first-number screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# A stamp per extras set, so a changed pyproject.toml reinstalls and an unchanged one is free.
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[coreml,onnx]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,coreml,onnx]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,coreml,onnx,dev]'
	touch $@

run: $(VENV)/.installed-base
	$(BIN)/anetui $(ARGS)

# tmux: the dashboard's terminal checks (tests/test_ui_tmux.py); installed when missing
# and apt-get can run (as root), otherwise those tests skip saying how to get it.
test: $(VENV)/.installed-test
	@command -v tmux >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && apt-get install -y -qq tmux >/dev/null; } || \
		echo "tmux missing: the terminal checks will skip (apt-get install tmux)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check anetui tests benchmarks scripts
	$(BIN)/ruff format --check anetui tests benchmarks scripts

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

check: lint typecheck imports test

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Prints the harness figures of benchmarks/harness.py (about a minute; not part of CI).
bench-harness: $(VENV)/.installed-test
	$(BIN)/python benchmarks/harness.py

# screenshots/*.svg (+ PNG with headless Chromium: apt-get install chromium) from a real run
# at 120x36 and 160x48, and the help screen.
screenshots: $(VENV)/.installed-test
	$(BIN)/python scripts/screenshots.py

# Time to the first p50 on screen, the real dashboard in tmux at 120x36 (not part of CI).
bench-first-number: $(VENV)/.installed-test
	$(BIN)/python benchmarks/first_number.py
