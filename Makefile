# ChainAcademy — the two commands a newcomer needs are `make up` and `make test`.
.PHONY: setup up test lint bench clean

DATA ?= .state/chain
NODES ?= 4
CONSENSUS ?= tbft

setup:
	@bash deploy/bootstrap.sh

## make up: set everything up and run the platform on its embedded defaults (Ctrl-C stops it)
up: setup
	.venv/bin/academy up --data $(DATA) --nodes $(NODES) --consensus $(CONSENSUS)

## make test: set everything up, run the same checks as make lint, then the whole test suite
test: lint
	.venv/bin/python -m pytest

## make lint: ruff, its formatter, the import contract (academy -> grader -> labs, no cycles), mypy
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	.venv/bin/mypy

bench: setup
	.venv/bin/python bench/consensus_sim.py
	.venv/bin/python bench/chain_tps.py
	.venv/bin/python bench/load_platform.py

clean:
	rm -rf .state .pytest_cache
