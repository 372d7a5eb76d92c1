.DEFAULT_GOAL := help
VENV ?= .venv

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-10s %s\n",$$1,$$2}'

install: ## create the virtualenv with the project and dev tools
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[dev]'

demo: install ## run the demo on embedded defaults
	$(VENV)/bin/fleetwatch demo

test: ## set up services and run lint, types, import contracts and the test suite
	scripts/test.sh

lint: ## ruff + import contracts
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

bench: ## run every benchmark (JSON on the last line of each)
	for b in store parse simulate api agent models analyze alerts dashboard; do $(VENV)/bin/fleetwatch bench $$b; done

.PHONY: help install demo test lint bench
