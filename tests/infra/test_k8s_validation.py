"""Rendered chart objects against the API: kubernetes-validate --strict for built-in kinds, the CRD JSON
schemas vendored in tests/fixtures/vendor/schemas/crds for custom resources. Both reject unknown keys and wrong types."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.infra.conftest import VALUES_FILES, crd_schema_path, documents

# The oldest minor the GKE release channels still run (the chart's kubeVersion allows it).
KUBERNETES_VERSION = "1.33.0"
# Kinds whose upstream CRD (argo-events chart, the pinned version) preserves unknown fields in spec, so no
# schema can check them; the catalogue has no EventBus. tests/platform checks what they reference.
UNSCHEMED_KINDS = {"EventBus"}


@cache
def _validator(path: Path):
    schema = json.loads(path.read_text())
    return jsonschema.Draft7Validator(schema)


def validation_errors(doc: dict[str, Any]) -> list[str]:
    """Why the API server (or the CRD's schema) would reject ``doc``; empty when it is valid."""
    name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    schema_path = crd_schema_path(doc)
    if schema_path is None:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            return [f"{name}: {'/'.join(map(str, exc.path))}: {exc.message}"]
        except kubernetes_validate.SchemaNotFoundError as exc:
            return [f"{name}: {exc.message}"]
        return []
    if doc["kind"] in UNSCHEMED_KINDS:
        return []
    if not schema_path.exists():
        return [f"{name}: no CRD schema at {schema_path} for {doc['apiVersion']} {doc['kind']}"]
    return [
        f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(schema_path).iter_errors(doc)
    ]


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_rendered_objects_are_valid(rendered, values_file: str) -> None:
    docs = documents(rendered[values_file])
    assert docs
    errors = [e for doc in docs for e in validation_errors(doc)]
    assert not errors, "\n".join(errors)


def test_custom_resources_are_checked_against_their_crd(rendered) -> None:
    kinds = {d["kind"] for d in documents(rendered["values-prod.yaml"]) if crd_schema_path(d)}
    assert {"PrometheusRule", "ServiceMonitor", "ExternalSecret"} <= kinds


def _find(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for d in docs if d["kind"] == kind))


def test_unknown_key_in_a_custom_resource_is_rejected(rendered) -> None:
    docs = documents(rendered["values-prod.yaml"])
    monitor = _find(docs, "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["honourLabels"] = True  # typo of honorLabels
    assert validation_errors(monitor)
    rule = _find(docs, "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["expression"] = "up"  # not a rule field
    assert validation_errors(rule)


def test_wrong_type_in_a_custom_resource_is_rejected(rendered) -> None:
    secret = _find(documents(rendered["values-prod.yaml"]), "ExternalSecret")
    secret["spec"]["data"] = {"not": "a list"}
    assert validation_errors(secret)


def test_unknown_key_and_wrong_type_in_built_in_kinds_are_rejected(rendered) -> None:
    docs = documents(rendered["values.yaml"])
    deployment = _find(docs, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}  # typo
    assert validation_errors(deployment)
    cronjob = _find(docs, "CronJob")
    cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] = "one"
    assert validation_errors(cronjob)
    policy = _find(docs, "NetworkPolicy")
    policy["spec"]["policyTypes"] = "Ingress"
    assert validation_errors(policy)
