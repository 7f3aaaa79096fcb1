"""Fixtures for the Argo manifests: the committed files, strict CRD-schema validators, placeholder values."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.generate import MANIFESTS_DIR as MANIFESTS_ROOT
from workflows.spec import PARAMETERS

# The tests read prod's folder; every environment's is checked by tests/platform and the generator test.
MANIFESTS_DIR = MANIFESTS_ROOT / "prod"

# Sample values for every Argo placeholder a generated manifest may contain.
SAMPLE_UID = "0d9f4a52-7c1e-4b8a-9d3e-5f6a7b8c9d0e"
SAMPLE_PARAMETERS: dict[str, str] = {
    "dataset_uri": "gs://sample-bucket/datasets/reviews.csv",
    "artifacts_root": "gs://sample-bucket/runs",
    "base_model": "distilbert-base-uncased",
    "epochs": "2",
    "learning_rate": "3e-5",
    "precision": "fp16",
    "max_train_samples": "128",
    "promotion_margin": "0.01",
    "blend_baseline_weights": "0,0.25,0.5",
    "smoke": "true",
    "drift_reference_root": "gs://sample-bucket/reference/sentiment",
    "git_revision": "0123456789abcdef0123456789abcdef01234567",
    # the task (a four-class one, so that no value equals its binary default)
    "labels": "amazon-negative,amazon-positive,imdb-negative,imdb-positive",
    "label_map": "gs://sample-bucket/datasets/label_map.json",
    "kaggle_label": "review_score",
    "min_train_rows": "800",
    "min_eval_rows": "350",
    "min_class_count": "50",
    "gate_metric": "macro_f1",
    "class_weight": "balanced",
    "registered_model": "uci-source-sentiment",
    # batch-score
    "model_uri": "models:/sentiment@champion",
    "output_uri": "",
    "text_column": "review",
    "batch_size": "64",
    "shard_rows": "250000",
    "work_uri": "gs://sample-bucket/batch/work",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


def substitute(text: str, parameters: dict[str, str] | None = None) -> str:
    """Replace Argo ``{{...}}`` tags the way the controller would; unknown tags fail the test."""
    values = {
        **{f"workflow.parameters.{k}": v for k, v in (parameters or SAMPLE_PARAMETERS).items()},
        "workflow.uid": SAMPLE_UID,
        "workflow.name": "sentiment-retrain-abc12",
    }

    def _one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise AssertionError(f"unresolvable Argo placeholder {{{{{key}}}}} in {text!r}")
        return values[key]

    return _PLACEHOLDER.sub(_one, text)


def load_manifest(name: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((MANIFESTS_DIR / name).read_text()) if d is not None]
    assert len(docs) == 1, f"{name}: expected one document"
    return docs[0]


@pytest.fixture(scope="session")
def retrain() -> dict[str, Any]:
    return load_manifest("sentiment-retrain.yaml")


@pytest.fixture(scope="session")
def cron() -> dict[str, Any]:
    return load_manifest("sentiment-retrain-cron.yaml")


@pytest.fixture(scope="session")
def batch() -> dict[str, Any]:
    return load_manifest("batch-score.yaml")


def container_templates(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in manifest["spec"]["templates"] if "container" in t}


def parameter_names() -> list[str]:
    return [p.name for p in PARAMETERS]


SCHEMA_KINDS = ("WorkflowTemplate", "Workflow", "CronWorkflow")


def _strict(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """The CRD schema with its top level closed too (the published one accepts any extra top-level key)."""
    strict = copy.deepcopy(schema)
    strict["additionalProperties"] = False
    strict["required"] = sorted({*strict.get("required", []), "apiVersion", "kind"})
    strict["properties"]["apiVersion"] = {"const": "argoproj.io/v1alpha1"}
    strict["properties"]["kind"] = {"const": kind}
    strict["properties"].pop("status", None)
    strict["properties"]["metadata"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
            "generateName": {"type": "string"},
            "namespace": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    return strict


@pytest.fixture(scope="session")
def validate_manifest() -> Callable[[dict[str, Any]], list[str]]:
    """Return the schema errors of a manifest (empty list = valid) against the real Argo CRD schemas."""
    import jsonschema

    from tests.platform.upstream import argo_workflows_schemas

    schemas = argo_workflows_schemas()  # the CRDs of exactly the Argo version infra/versions.yaml pins
    validators: dict[str, Any] = {}

    def _validate(manifest: dict[str, Any]) -> list[str]:
        kind = manifest.get("kind")
        if kind not in SCHEMA_KINDS:
            return [f"no schema for kind {kind!r}"]
        if kind not in validators:
            validators[kind] = jsonschema.Draft202012Validator(_strict(schemas[kind], kind))
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message[:200]}"
            for e in validators[kind].iter_errors(manifest)
        ]

    return _validate


def manifest_files() -> list[Path]:
    """The generated Argo manifests of every environment (not the kustomization files)."""
    return sorted(p for p in MANIFESTS_ROOT.glob("*/*.yaml") if p.name != "kustomization.yaml")
