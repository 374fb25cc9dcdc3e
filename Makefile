# Set-up: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
# The optional runtimes and tools `make run` and `make test` install (README: what each adds).
EXTRAS := coreml,onnx,openvino,executorch,quantize,transformers,apple,serve,mlx,genai

.PHONY: run test test-deps test-compile check lint typecheck imports bench-harness bench-first-number screenshots clean coverage-mac

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# apple (zeus-apple-silicon) installs on macOS only: elsewhere its marker skips it.
# A stamp per extras set, so a changed pyproject.toml reinstalls and an unchanged one is free.
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,$(EXTRAS)]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,$(EXTRAS),dev]'
	touch $@

run: $(VENV)/.installed-base
	$(BIN)/anetui $(ARGS)

test: $(VENV)/.installed-test test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The real-Prometheus and real-browser tests need Debian's prometheus and chromium. Installed
# here when missing and this runs as root with apt-get (CI's fresh machine); otherwise those
# tests skip and say how to install them.
# tmux: the dashboard's terminal checks (tests/test_ui_tmux.py).
TEST_DEBS := prometheus chromium tmux
test-deps:
	@missing=""; for p in $(TEST_DEBS); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing (apt-get)"; \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q$$missing >/dev/null \
			|| echo "could not install$$missing: the tests that need them will skip"; \
	elif [ -n "$$missing" ]; then \
		echo "missing$$missing: those tests skip (sudo apt-get install$$missing)"; \
	fi

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check anetui tests benchmarks scripts
	$(BIN)/ruff format --check anetui tests benchmarks scripts

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

check: lint typecheck imports test

# The real torch.compile tests (~1 min cold each: torch-cpu-compile, torch-cpu-int8), kept
# out of `make test`.
test-compile: $(VENV)/.installed-test
	ANETUI_COMPILE_TESTS=1 $(BIN)/python -m pytest tests/test_torch_compile.py tests/test_quantized_torch.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Prints the harness figures of benchmarks/harness.py (about a minute; not part of CI).
bench-harness: $(VENV)/.installed-test
	$(BIN)/python benchmarks/harness.py

# screenshots/*.svg (+ PNG with headless Chromium: apt-get install chromium) from a real run
# at 120x36 and 160x48, and the help screen.
screenshots: $(VENV)/.installed-test
	$(BIN)/python scripts/screenshots.py

# Which lines of the Mac path (tests/coverage-mac.cfg) the macOS-personality tests run.
coverage-mac: $(VENV)/.installed-test
	mkdir -p /tmp/anetui-coverage && chmod 1777 /tmp/anetui-coverage
	rm -f /tmp/anetui-coverage/.coverage*
	$(BIN)/python -m pytest -q --cov --cov-config=tests/coverage-mac.cfg --cov-report=term-missing \
		tests/test_macos.py tests/test_privileges.py tests/test_doctor_deep.py \
		tests/test_powermetrics_source.py tests/test_quantized_coreml.py -k "not new_user"

# Time to the first p50 on screen, the real dashboard in tmux at 120x36 (not part of CI).
bench-first-number: $(VENV)/.installed-test
	$(BIN)/python benchmarks/first_number.py
