"""Fixtures for the Argo manifests: the committed files, strict CRD-schema validators, placeholder values."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CRD_SCHEMAS
from workflows.generate import MANIFESTS_DIR
from workflows.spec import PARAMETERS

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
    "smoke": "true",
    "git_revision": "0123456789abcdef0123456789abcdef01234567",
    # batch-score
    "model_uri": "models:/sentiment@champion",
    "output_uri": "",
    "text_column": "review",
    "batch_size": "64",
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


SCHEMA_FILES = {
    "WorkflowTemplate": "workflowtemplate_v1alpha1.json",
    # A Workflow's spec is the same WorkflowSpec (PROVENANCE.md: workflow_v1alpha1.json is not shipped).
    "Workflow": "workflowtemplate_v1alpha1.json",
    "CronWorkflow": "cronworkflow_v1alpha1.json",
}


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

    folder = CRD_SCHEMAS / "argoproj.io"
    if not folder.is_dir():
        pytest.skip(f"Argo CRD schemas not found at {folder} (kept outside the repository: ../shared)")
    validators: dict[str, Any] = {}

    def _validate(manifest: dict[str, Any]) -> list[str]:
        kind = manifest.get("kind")
        if kind not in SCHEMA_FILES:
            return [f"no schema for kind {kind!r}"]
        if kind not in validators:
            schema = json.loads((folder / SCHEMA_FILES[kind]).read_text())
            validators[kind] = jsonschema.Draft202012Validator(_strict(schema, kind))
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message[:200]}"
            for e in validators[kind].iter_errors(manifest)
        ]

    return _validate


def manifest_files() -> list[Path]:
    return sorted(MANIFESTS_DIR.glob("*.yaml"))
