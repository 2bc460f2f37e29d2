# Two commands matter: `make demo` and `make test`. Both work from a clean clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
ORACLE := .venv-oracle
SANDBOX ?= .sandbox
BIN := $(VENV)/bin
# Two workers, each with its own sandbox; tests that share a fixed path share a worker (loadgroup).
PYTEST_WORKERS ?= -n 2 --dist loadgroup

.PHONY: demo demo-reset test deps venv oracle lint sandbox-up sandbox-down screenshots bench clean

deps:
	@scripts/ensure-system.sh

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "is ignored" || true
	@$(BIN)/python -c "import backends, textual, etcd3, asyncpg, aiodocker, httpx" && touch $@

venv: $(VENV)/.installed

oracle:
	@scripts/oracle-venv.sh $(ORACLE)

demo: deps venv
	@$(BIN)/bai-registry-migrate sandbox up --dir $(SANDBOX)
	@$(BIN)/bai-registry-migrate --config $(SANDBOX)/manager.toml --plan $(SANDBOX)/plan.toml --state-dir $(SANDBOX)/state

demo-reset: deps venv
	@$(BIN)/bai-registry-migrate sandbox up --dir $(SANDBOX)
	@$(BIN)/bai-registry-migrate sandbox reset --dir $(SANDBOX)
	@rm -rf $(SANDBOX)/state

test: deps venv oracle
	@$(BIN)/ruff check backends tui widgets tests bench
	@BAIRM_ORACLE=$(CURDIR)/$(ORACLE)/bin/backend.ai $(BIN)/pytest -q $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: venv
	@$(BIN)/ruff check backends tui widgets tests bench

sandbox-up: deps venv
	@$(BIN)/bai-registry-migrate sandbox up --dir $(SANDBOX)

sandbox-down:
	@test ! -x $(BIN)/bai-registry-migrate || $(BIN)/bai-registry-migrate sandbox down --dir $(SANDBOX)

screenshots: deps venv
	@$(BIN)/python -m tui.screenshots

bench: deps venv oracle
	@BAIRM_ORACLE=$(CURDIR)/$(ORACLE)/bin/backend.ai $(BIN)/python -m bench

clean: sandbox-down
	rm -rf $(VENV) $(ORACLE) $(SANDBOX)
