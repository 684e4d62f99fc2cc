# ticketq developer tasks (GNU make).  `make help` lists the targets.
#
# Servers: if TICKETQ_AMQP_URL and TICKETQ_DATABASE_URL are both set, they are
# used as they are; otherwise deploy/local/servers.sh starts a project-local
# RabbitMQ and/or PostgreSQL (installing them with apt-get if needed).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SERVERS := deploy/local/servers.sh
PYTEST_ARGS ?=
DEMO_ARGS ?=
PIP := $(BIN)/python -m pip --disable-pip-version-check

# Prefix for recipe lines that talk to the servers: exports the local servers'
# TICKETQ_* variables unless the user provided both URLs.  A URL the user did
# set wins; TICKETQ_RABBITMQCTL only points at our node if our RabbitMQ is used.
WITH_SERVERS_ENV = \
	if [ -z "$${TICKETQ_AMQP_URL:-}" ] || [ -z "$${TICKETQ_DATABASE_URL:-}" ]; then \
	  _amqp="$${TICKETQ_AMQP_URL:-}"; _db="$${TICKETQ_DATABASE_URL:-}"; _ctl="$${TICKETQ_RABBITMQCTL:-}"; \
	  eval "$$($(SERVERS) env)"; \
	  if [ -n "$$_amqp" ]; then \
	    export TICKETQ_AMQP_URL="$$_amqp"; \
	    if [ -n "$$_ctl" ]; then export TICKETQ_RABBITMQCTL="$$_ctl"; else unset TICKETQ_RABBITMQCTL; fi; \
	  fi; \
	  if [ -n "$$_db" ]; then export TICKETQ_DATABASE_URL="$$_db"; fi; \
	fi;

.PHONY: help venv servers chromium status stop test setup demo web lint fmt contracts lock clean distclean

help: ## list the targets
	@echo "usage: make TARGET   (VENV=$(VENV) PYTHON=$(PYTHON) PYTEST_ARGS='...')"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- virtualenv --------------------------------------------------------------

# Fresh Debian machines may lack python3 or its venv module (ensurepip).
$(BIN)/python:
	@if ! command -v $(PYTHON) >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing python3 + python3-venv with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q && apt-get install -y -q --no-install-recommends python3 python3-venv; \
	  else \
	    echo "make: need $(PYTHON) (>= 3.11) with the venv module (Debian: apt-get install python3-venv)" >&2; exit 1; \
	  fi; \
	fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "make: $(PYTHON) is $$($(PYTHON) -V 2>&1); ticketq needs Python >= 3.11 (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps -e .
	@touch $@

requirements.lock:
	@echo "make: requirements.lock is missing; create it with 'make lock'" >&2; exit 1

venv: $(VENV)/.installed ## create .venv and install the locked dependencies + ticketq (editable)

# --- servers -----------------------------------------------------------------

servers: ## start local RabbitMQ + PostgreSQL (unless TICKETQ_AMQP_URL and TICKETQ_DATABASE_URL are set)
	@comps=""; \
	[ -n "$${TICKETQ_AMQP_URL:-}" ] || comps="$$comps rabbitmq"; \
	[ -n "$${TICKETQ_DATABASE_URL:-}" ] || comps="$$comps postgres"; \
	if [ -z "$$comps" ]; then \
	  echo "make: using TICKETQ_AMQP_URL and TICKETQ_DATABASE_URL from the environment"; \
	else \
	  $(SERVERS) start $$comps >/dev/null; \
	fi

status: ## show whether the local servers run
	@$(SERVERS) status

stop: ## stop the local servers
	@$(SERVERS) stop

# --- tasks -------------------------------------------------------------------

# The HTML report's test and the workbench's browser tests (tests/web) drive headless Chromium;
# without it those tests are skipped.
chromium: ## install Debian's chromium when missing (root and apt-get), else say why not
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
	         apt-get install -y -q chromium >/dev/null; } \
	    || echo "chromium could not be installed: the HTML report test will be skipped" >&2; \
	  else echo "no chromium (needs root and apt-get): the HTML report test will be skipped" >&2; \
	  fi; }

test: venv servers chromium ## run the tests (extra pytest arguments: PYTEST_ARGS='-k foo -x')
	@$(WITH_SERVERS_ENV) set -x; $(BIN)/python -m pytest $(PYTEST_ARGS)

setup: venv servers ## ticketq setup: each service's user and role, migrations, grants, topology
	@$(WITH_SERVERS_ENV) set -x; $(BIN)/ticketq setup

demo: venv servers ## run the end-to-end demo (setup, five workers, the workbench, fixture); DEMO_ARGS=--keep-running leaves them up
	@$(WITH_SERVERS_ENV) set -x; $(BIN)/ticketq demo $(DEMO_ARGS)

web: venv servers ## run the web workbench in the foreground on its own credentials (TICKETQ_WEB_PORT, default 8080)
	@$(WITH_SERVERS_ENV) set -x; $(BIN)/ticketq web

lint: venv ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: venv ## reformat and apply safe ruff fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

contracts: venv ## regenerate the message contracts
	$(BIN)/python -m contracts.generate

lock: | $(BIN)/python ## re-resolve requirements.lock from pyproject.toml
	@test -x $(BIN)/uv || $(PIP) install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -q -o requirements.lock

clean: ## remove caches and build leftovers (keeps .venv and server data)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info bench/out bench/results
	find . -path ./$(VENV) -prune -o -path ./.local -prune -o -path ./.git -prune -o \
	  -type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean ## also stop + delete the local servers' data and remove .venv
	$(SERVERS) destroy
	rm -rf $(VENV)
