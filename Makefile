# Tormenta: the two commands are `make up` (platform + main job) and `make test` (all tests).
# Every target installs what it needs first and says what it is doing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: up down status logs test test-unit lint install jars smoke browser bench clean-data help \
	cluster-up cluster-test cluster-test-ci cluster-down cluster-status
.DEFAULT_GOAL := help

help:
	@echo "make up      - install, resolve JVM jars, start Kafka/HBase/Thrift/Airflow, run the main job"
	@echo "make test    - install, then lint + unit + integration + e2e tests (starts the stack if needed)"
	@echo "make down    - stop the pipelines in order, then what 'make up' started (data is kept)"
	@echo "make status  - services, pids, health, memory"
	@echo "make bench   - benchmarks B1-B7 (BENCH_ARGS='--only B1,B3 --runs 5')"
	@echo "make cluster-up       - the platform as a 19-container cluster on this host (docker/): engine, images, up"
	@echo "make cluster-test     - cluster-up, then every cluster test incl. the node kills (~35 min)"
	@echo "make cluster-test-ci  - cluster-up, then the cluster tests without the node kills (what .ci/run runs)"
	@echo "make cluster-down     - remove the cluster's containers (CLUSTER_ARGS='--remove-data --stop-engine')"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; v=sys.version_info; sys.exit(0 if v >= (3, 11) else "Python 3.11+ is required, found %d.%d" % v[:2])'
	@echo "[install] creating virtualenv $(VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	@echo "[install] pip install -r requirements.txt (first time: ~1-3 min, ~700 MB incl. pyspark)"
	$(BIN)/python -m pip install --progress-bar off --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -r requirements.txt
	$(BIN)/python -m pip install --progress-bar off --no-deps -e .
	@touch $@

install: $(VENV)/.installed

jars: install
	@echo "[jars] Kafka, HBase and the Spark Kafka connector from Maven Central (cached in .cache/jars)"
	$(BIN)/tormenta jars

up: jars
	$(BIN)/tormenta stack up
	@echo "[up] smoke pipeline through Airflow (Kafka -> Spark -> HBase)"
	$(BIN)/tormenta smoke
	@echo "[up] the main job: micro-batch pipeline with its default Params, then one batch window"
	$(BIN)/tormenta demo

down:
	$(BIN)/tormenta stack down

status:
	$(BIN)/tormenta stack status

logs:
	$(BIN)/tormenta stack logs

smoke: install
	$(BIN)/tormenta smoke

lint: install
	@echo "[lint] ruff"
	$(BIN)/ruff check .

test-unit: install
	$(BIN)/pytest -m unit

browser:
	@if command -v chromium >/dev/null 2>&1; then echo "[browser] $$(chromium --version 2>/dev/null | head -1)"; \
	elif [ "$$(id -u)" = 0 ]; then echo "[browser] installing Debian chromium (UI screenshot tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "Debian chromium is needed by the UI tests: sudo apt-get install chromium" >&2; exit 1; fi

test: jars lint browser
	@echo "[test] unit + integration + e2e (the session fixture starts the stack when it is not up)"
	$(BIN)/pytest -m "unit or integration or e2e"

bench: jars
	@echo "[bench] B1-B9 on the local stack (not part of make test; ~1 h with 3 runs each)"
	$(BIN)/python -m bench $(BENCH_ARGS)

clean-data: down
	rm -rf var

# The cluster (docker/): `tormenta cluster up` installs the engine (Debian's docker.io,
# docker-compose, debootstrap), builds the images and waits until every service is healthy.
cluster-up: jars
	$(BIN)/tormenta cluster up

cluster-status: install
	$(BIN)/tormenta cluster status

cluster-test: cluster-up
	@echo "[cluster-test] every cluster test, node kills included"
	$(BIN)/pytest -m cluster tests/cluster

cluster-test-ci: cluster-up
	@echo "[cluster-test-ci] the cluster tests without the node kills"
	$(BIN)/pytest -m "cluster and not node_kill" tests/cluster

cluster-down: install
	$(BIN)/tormenta cluster down $(CLUSTER_ARGS)
