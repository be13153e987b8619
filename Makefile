# Every command a user or CI needs. Each target sets itself up from a clean clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov pins boto3, networkx and packaging below this project's pins: it gets its own venv
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# The boto3/botocore the python3.13 Lambda runtime includes (tests/lambda_runtime_sdk.py)
LAMBDA_SDK_STAMP := $(VENV)/lambda-runtime-sdk/.installed
CDK := node_modules/.bin/cdk
# pytest-xdist workers (each has its own tmp folder; every server a test starts binds port 0).
# The unit and infra tests are CPU-bound and share nothing: two workers, a module at a time.
# make test adds a third: the tests that start whole local pipelines (e2e, reliability) form one
# scope that one worker runs one at a time, in order, and the two of them that mostly wait for
# the endpoint's minimum TTL (the fault run, the reconciler's) have a worker of their own
# (tests/conftest.py).
PARALLEL := -n 2 --dist loadscope
TEST_PARALLEL := -n 3 --dist loadscope
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export PYTHONDONTWRITEBYTECODE := 1
# Extra CDK context for synth/diff/deploy, e.g. make deploy CONTEXT="-c alarm_email=me@example.org"
CONTEXT ?=
CDK_FLAGS := --no-notices --app "$(abspath $(BIN))/python app.py" $(CONTEXT)

.PHONY: help setup test soak lint typecheck unit infra e2e reliability demo bench bootstrap synth diff deploy destroy clean

help:
	@echo "make demo     run the whole pipeline locally on sample files and print the results"
	@echo "make test     ruff, mypy and every test (unit, infra incl. checkov, e2e, reliability)"
	@echo "make soak     SOAK_FILES (default 5000) files through local mode under every fault"
	@echo "make bootstrap | synth | diff | deploy | destroy   the CDK app against your AWS account"
	@echo "             (CONTEXT=\"-c key=value ...\" passes context, e.g. alarm_email)"
	@echo "make bench    benchmarks (ratios measured side by side)"

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install -qq --no-deps -e .
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt constraints-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -qq --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -qq -r requirements-checkov.txt -c constraints-checkov.txt
	touch $@

$(LAMBDA_SDK_STAMP): $(STAMP) tests/lambda_runtime_sdk.py
	$(BIN)/python -m tests.lambda_runtime_sdk
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) $(NODE_STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# What make test runs before pytest, two at a time (a fresh clone saves about two minutes): the
# two virtual environments are independent, and ruff, mypy and the Lambda runtime's SDK need
# only .venv, so the checks overlap checkov's install.
TEST_PREREQUISITES := $(STAMP) $(CHECKOV_STAMP) $(LAMBDA_SDK_STAMP) lint typecheck
test:
	$(MAKE) -f $(firstword $(MAKEFILE_LIST)) --no-print-directory -j2 --output-sync=target \
		$(TEST_PREREQUISITES)
	$(BIN)/python -m pytest -q $(TEST_PARALLEL)

# The tests marked "soak", which make test deselects: the soak itself (tests/soak: one local
# pipeline, every fault at once, SOAK_FILES object versions; it ends with the "reliability: ..."
# line) and the installed wheel's CLI (pip installs every dependency into a fresh venv).
SOAK_FILES ?= 5000
soak: $(STAMP)
	SOAK_FILES=$(SOAK_FILES) $(BIN)/python -m pytest -q -s -m soak tests/soak

unit: $(STAMP) $(LAMBDA_SDK_STAMP)
	$(BIN)/python -m pytest -q $(PARALLEL) tests/unit

infra: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python -m pytest -q $(PARALLEL) tests/infra

e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

reliability: $(STAMP)
	$(BIN)/python -m pytest -q tests/reliability

demo: $(STAMP)
	$(BIN)/python -m asyncinfer demo

bench: $(STAMP)
	$(BIN)/python -m bench

bootstrap: $(STAMP) $(NODE_STAMP)
	$(CDK) bootstrap $(CDK_FLAGS)

synth: $(STAMP) $(NODE_STAMP)
	$(CDK) synth $(CDK_FLAGS) --quiet

diff: $(STAMP) $(NODE_STAMP)
	$(CDK) diff $(CDK_FLAGS)

deploy: $(STAMP) $(NODE_STAMP)
	$(CDK) deploy $(CDK_FLAGS) --require-approval broadening

destroy: $(STAMP) $(NODE_STAMP)
	$(CDK) destroy $(CDK_FLAGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules cdk.out .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
