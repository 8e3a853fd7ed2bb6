# PlantOps umbrella: one entry point for the five components in repos/.
#
#   make demo   set-up included: the whole pipeline on this machine, no Docker
#   make test   every component's tests and the umbrella's own
#
# Each component has its own Makefile with the same target names (setup, lint,
# test, run); this file only sequences them and wires the local stack.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

COMPONENTS := infra orchestration ml-training inference-api webapp
INFRA := repos/infra/.venv/bin
STACK_ENV := source scripts/stack-env.sh
RUNNING_ENV := source scripts/running-stack-env.sh
# The datasets (shared/ beside the checkout, or beside the repository a local clone was
# made from), for every component's tests and targets; a variable already set wins.
SHARED_DIR := $(shell bash scripts/shared-dir.sh)
ifneq ($(SHARED_DIR),)
export PLANTOPS_IMAGES_DIR ?= $(SHARED_DIR)/datasets/greenr-airflow/data
export PLANTOPS_FIELD_CHECK_DIR ?= $(SHARED_DIR)/datasets/field-check/data
endif

.PHONY: help setup system-packages up down status demo test test-umbrella lint typecheck \
        contracts split ingest train monitor train-if-needed serve check-skew screenshot field-check bench bench-ingest bench-train bench-novelty bench-api bench-load \
        validate images image-smoke load soak release compose-up compose-down k8s-apply

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- set-up

setup: system-packages ## Create every component's virtualenv (idempotent, seconds when nothing changed)
	@for c in $(COMPONENTS); do echo "== setup $$c"; $(MAKE) --no-print-directory -C repos/$$c setup; done

system-packages: ## Install the Debian packages the stack and tests need, when missing (root)
	@bash scripts/system-packages.sh

# ---------------------------------------------------------------- local stack

up: ## Start S3, MySQL, MLflow and the image mirror on loopback, wait until healthy
	@$(MAKE) --no-print-directory -C repos/infra setup
	@$(STACK_ENV) && $(INFRA)/plantops-infra stack up

down: ## Stop exactly what `make up` and `make demo` started
	@$(STACK_ENV) && $(INFRA)/plantops-infra stack down

status: ## Print each service's URL and health
	@$(STACK_ENV) && $(INFRA)/plantops-infra stack status

# ---------------------------------------------------------------- the pipeline

init-db: ## Create the plants_data table (migrations) and seed the 400 canonical rows
	@$(RUNNING_ENV) && $(MAKE) --no-print-directory -C repos/orchestration init-db

ingest: ## Run the plants_ingest DAG through Airflow against the local stack
	@$(RUNNING_ENV) && $(MAKE) --no-print-directory -C repos/orchestration ingest

train: ## Run the plants_train DAG through Airflow: train, register, gate the champion
	@$(RUNNING_ENV) && $(MAKE) --no-print-directory -C repos/orchestration train

monitor: ## Run the plants_monitor DAG once: drift of the API's prediction log; one JSON line
	@$(RUNNING_ENV) && $(MAKE) --no-print-directory -C repos/orchestration monitor

serve: ## Start the inference API and the webapp in the background
	@$(RUNNING_ENV) && $(INFRA)/plantops-infra stack start-app api \
	  --health "http://127.0.0.1:$$PLANTOPS_API_PORT/healthz" -- \
	  $(MAKE) --no-print-directory -C repos/inference-api run
	@$(RUNNING_ENV) && $(INFRA)/plantops-infra stack start-app webapp \
	  --health "http://127.0.0.1:$$PLANTOPS_WEBAPP_PORT/healthz" -- \
	  $(MAKE) --no-print-directory -C repos/webapp run

train-if-needed: ## Train only when the registry has no champion yet
	@bash scripts/has-champion.sh || $(MAKE) --no-print-directory train

# A photo the champion did not train on would be best, but the field-check photos have no
# licence to be committed, even in a screenshot: one of the 400 dataset photos is shown.
SCREENSHOT_PHOTO ?= $(or $(PLANTOPS_IMAGES_DIR),../shared/datasets/greenr-airflow/data)/dandelion/00000012.jpg

screenshot: ## The README's result screenshot from the running webapp and champion (after make demo)
	@$(RUNNING_ENV) && repos/webapp/.venv/bin/python scripts/champion-screenshot.py \
	  "$(SCREENSHOT_PHOTO)" repos/webapp/docs/images/champion-result.png

field-check: ## Score the running API on the field-check photos (recall, balanced accuracy, ECE)
	@$(RUNNING_ENV) && repos/inference-api/.venv/bin/plantops-inference-api check-folder \
	  "$${PLANTOPS_FIELD_CHECK_DIR:-../shared/datasets/field-check/data}" \
	  --api-url "http://127.0.0.1:$$PLANTOPS_API_PORT"

check-skew: ## Replay the champion's test predictions through the running API (max diff 1e-4)
	@$(RUNNING_ENV) && repos/inference-api/.venv/bin/plantops-inference-api check-skew \
	  --api-url "http://127.0.0.1:$$PLANTOPS_API_PORT"

demo: setup up init-db ingest train-if-needed serve ## Everything: set-up, stack, data, model, API, webapp
	@bash scripts/demo-summary.sh

# ---------------------------------------------------------------- tests

test: setup ## Every component's tests, then the umbrella's own
	@failed=""; for c in $(COMPONENTS); do \
	  echo "== test $$c"; \
	  $(MAKE) --no-print-directory -C repos/$$c test || failed="$$failed $$c"; \
	done; \
	echo "== image-smoke"; $(MAKE) --no-print-directory image-smoke || failed="$$failed image-smoke"; \
	echo "== test umbrella"; $(MAKE) --no-print-directory test-umbrella || failed="$$failed umbrella"; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

images: ## Build every image (API, webapp, Airflow, MLflow, tooling, ml-training): docker, else podman
	@$(MAKE) --no-print-directory -C repos/infra images

image-smoke: ## Build every image, start each as deployed (uid, read-only, limits) on real servers
	@$(MAKE) --no-print-directory -C repos/infra image-smoke

test-umbrella: ## The umbrella's own tests (contracts, multi-repo split, local stack, the monitoring chain)
	$(INFRA)/pytest tests

lint: setup ## ruff check and format check in every component and the umbrella's tests/ and scripts/
	@for c in $(COMPONENTS); do $(MAKE) --no-print-directory -C repos/$$c lint; done
	$(INFRA)/ruff check tests scripts
	$(INFRA)/ruff format --check tests scripts

typecheck: setup ## mypy on every component's src/
	@for c in $(COMPONENTS); do $(MAKE) --no-print-directory -C repos/$$c typecheck; done

# ---------------------------------------------------------------- contracts

contracts: ## Changed a contract? Regenerate the API's OpenAPI snapshot, refresh every vendored copy
	@$(MAKE) --no-print-directory -C repos/inference-api contracts
	@python3 scripts/contracts.py refresh

# ---------------------------------------------------------------- multi-repo

split: ## Publish the multi-repo form into DEST: bare component repos + umbrella with submodules
	@test -n "$(DEST)" || { echo "usage: make split DEST=<empty folder>"; exit 2; }
	@bash scripts/split.sh "$(DEST)"

# ---------------------------------------------------------------- benchmarks, deployment

bench: bench-ingest bench-train bench-novelty bench-api bench-load ## All benchmarks (see docs/BENCHMARKS.md)

bench-ingest: ## Time ingestion of the 400 images and a rerun
	@$(RUNNING_ENV) && $(MAKE) --no-print-directory -C repos/orchestration bench-ingest

bench-train: ## Five stratified splits of the 400 images: accuracy, recall, time
	@$(STACK_ENV) && $(MAKE) --no-print-directory -C repos/ml-training bench-train

bench-novelty: ## Novelty ("neither label") methods: field-check other plants, generated non-plant images
	@$(MAKE) --no-print-directory -C repos/ml-training bench-novelty
	@$(MAKE) --no-print-directory -C repos/inference-api bench-novelty

bench-api: ## In-process vs HTTP throughput and latency of the inference API
	@$(RUNNING_ENV) && $(MAKE) --no-print-directory -C repos/inference-api bench-api BENCH_ARGS=--registry

bench-load: ## Highest request rate the API holds with p95 < 200 ms
	@$(RUNNING_ENV) && $(MAKE) --no-print-directory -C repos/infra bench-load

load: ## Locust, headless, against the running stack (USERS, SPAWN_RATE, DURATION)
	@$(RUNNING_ENV) && $(MAKE) --no-print-directory -C repos/infra load

soak: ## A few minutes of steady load, sampling the API's memory (SOAK_DURATION)
	@$(RUNNING_ENV) && $(MAKE) --no-print-directory -C repos/infra soak

release: ## Bump a component's version and tag it (COMPONENT=..., VERSION=...)
	@$(MAKE) --no-print-directory -C repos/infra release COMPONENT="$(COMPONENT)" VERSION="$(VERSION)"

validate: ## Compose, Dockerfiles, Kubernetes manifests, workflows, alert rules
	@$(MAKE) --no-print-directory -C repos/infra validate

compose-up: ## The whole stack in Docker Compose (needs a Docker engine)
	@$(MAKE) --no-print-directory -C repos/infra compose-up

compose-down: ## Stop the Compose stack
	@$(MAKE) --no-print-directory -C repos/infra compose-down

k8s-apply: ## kubectl apply -k the overlay (OVERLAY=minikube)
	@$(MAKE) --no-print-directory -C repos/infra k8s-apply
