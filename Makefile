# genai-scale: the two commands are `make plan` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup plan test policy bench reference clean

# Idempotent: (re)installs only when pyproject.toml or the setup script changed.
setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh $(wildcard scripts/setup.d/*.sh)
	@bash scripts/setup.sh
	@touch $(STAMP)

plan: setup
	@$(BIN)/genai-scale plan --stack dev
	@$(BIN)/genai-scale policy --stack dev

test: setup
	@bash scripts/test.sh

reference: setup
	@$(BIN)/python scripts/gen_reference.py

bench: setup
	@$(BIN)/python bench/plan.py

clean:
	rm -rf $(VENV) .pytest_cache
