# agent-runtime workspace. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PACKAGES := llm-client agent-runtime-core agent-runtime agent-runtime-framework django-agent-runtime
SRC_DIRS := $(foreach p,$(PACKAGES),packages/$(p)/src)
# uv on PATH, else where the pip-installed uv package keeps its binary (pyenv without rehash, --user).
UV ?= $(shell command -v uv 2>/dev/null || python3 -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null || echo uv)
# pip --user puts uv here when there is no writable site-packages.
export PATH := $(PATH):$(HOME)/.local/bin
# Passed through to pytest and scripts/services.sh when set, also as `make test REQUIRE_SERVICES=1`.
PASS_THROUGH := REQUIRE_SERVICES KAFKA_PORT TEST_POSTGRES_DSN TEST_REDIS_URL TEST_KAFKA_BOOTSTRAP
$(foreach v,$(PASS_THROUGH),$(if $(filter undefined,$(origin $(v))),,$(eval export $(v))))

RUN = $(UV) run --frozen --no-sync

.PHONY: help uv install demo test lint bench build services services-stop services-status clean

help: ## Show this help
	@echo "agent-runtime: make <target>"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

uv: ## Install uv with pip if it is missing
	@command -v $(UV) >/dev/null 2>&1 || { \
	  echo "uv not found: installing it with python3 -m pip install uv"; \
	  python3 -m pip install --quiet uv \
	    || python3 -m pip install --quiet --user uv \
	    || python3 -m pip install --quiet --break-system-packages uv; \
	  python3 -c 'import uv; print("uv installed:", uv.find_uv_bin())'; }

install: uv ## Install every package, extra and dev tool into .venv (uv sync --frozen)
	$(UV) sync --frozen --all-packages --all-extras --inexact

demo: install ## Run examples/demo.py (scripted provider unless OPENAI_API_KEY/ANTHROPIC_API_KEY is set)
	$(RUN) python examples/demo.py

test: install ## Run every package's tests and tests-integration (REQUIRE_SERVICES=1: missing services fail)
	$(RUN) pytest $(PYTEST_ARGS)

lint: install ## ruff check, ruff format --check, mypy --strict on each src/, import-linter contracts
	@failed=(); \
	run() { local step=$$1; shift; echo "+ $$*"; "$$@" || failed+=("$$step"); }; \
	run "ruff check" $(RUN) ruff check .; \
	run "ruff format" $(RUN) ruff format --check .; \
	run mypy $(RUN) mypy --strict $(SRC_DIRS); \
	run import-linter $(RUN) lint-imports; \
	if (( $${#failed[@]} )); then echo "lint FAILED: $${failed[*]}"; exit 1; fi; \
	echo "lint passed"

bench: uv ## Run the benchmarks (bench/run_all.py) with the peer frameworks of the `bench` group
	$(UV) sync --frozen --all-packages --all-extras --group bench --inexact
	$(RUN) python bench/run_all.py

build: uv ## Build sdist and wheel of each of the five packages into dist/
	rm -rf dist
	@for p in $(PACKAGES); do echo "+ $(UV) build --package $$p -o dist"; $(UV) build --package $$p -o dist; done
	@ls -1 dist

services: install ## Start PostgreSQL, Redis and a Tansu Kafka broker where not already running
	bash scripts/services.sh start

services-stop: ## Stop the Tansu broker started by `make services` (by pid; nothing else)
	bash scripts/services.sh stop

services-status: ## Show which services are listening
	bash scripts/services.sh status

clean: ## Remove build outputs and caches (keeps .venv and a running broker)
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
	find . -path ./.venv -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf
	find . -path ./.venv -prune -o -type d -name '*.egg-info' -print0 | xargs -0 rm -rf
