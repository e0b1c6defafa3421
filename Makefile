# Daydream: `make demo` runs the demo, `make test` runs the suite. Both set up .venv themselves.
VENV := .venv
BIN := $(VENV)/bin
SETUP_DEPS := pyproject.toml constraints.txt scripts/setup.sh

.PHONY: demo test lint bench setup model clean

$(VENV)/.setup-runtime: $(SETUP_DEPS)
	bash scripts/setup.sh runtime

$(VENV)/.setup-demo: $(SETUP_DEPS)
	bash scripts/setup.sh demo

$(VENV)/.setup-test: $(SETUP_DEPS)
	bash scripts/setup.sh test

setup: $(VENV)/.setup-test
	@true

model: $(VENV)/.setup-demo
	$(BIN)/daydream models build default

# `daydream demo` builds the default model first when it is missing (progress bar on stderr).
demo: $(VENV)/.setup-demo
	$(BIN)/daydream demo

# The default model's end-to-end tests need its GGUF: build it from base + adapter if missing.
test: $(VENV)/.setup-test
	@if [ -f models/default/manifest.json ]; then $(BIN)/daydream models build default --if-missing; fi
	$(BIN)/python -m pytest -q --durations=15

lint: $(VENV)/.setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.setup-test
	$(BIN)/python -m bench.decisions
	$(BIN)/python -m bench.town_day
	$(BIN)/python -m bench.serve
	$(BIN)/python -m bench.threads

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
