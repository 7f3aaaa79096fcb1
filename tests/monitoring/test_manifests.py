"""The monitoring objects as they are deployed (the chart's rendered objects, the overlay's PodMonitor)
validate against their CRD schemas or kubernetes-validate, and the drift -> retrain chain lines up."""

from __future__ import annotations

import copy
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binary
from tests.infra.conftest import documents, load_values, render
from tests.monitoring.conftest import ALERTMANAGER_YML, MONITORING, load_yaml_docs, validate_cr

REPO = MONITORING.parent
# Generated from the plain files by `python -m monitoring.render` (derived copies, not deployed: the
# chart renders the same rules, routes and dashboards from helm/sentimentops/files).
GENERATED_CR_FILES = [
    MONITORING / "prometheus" / "prometheusrule.yaml",
    MONITORING / "alertmanager" / "alertmanagerconfig.yaml",
]
DEPLOYED_CR_KINDS = ("ServiceMonitor", "PrometheusRule", "EventSource", "Sensor")


@cache
def deployed() -> tuple[dict[str, Any], ...]:
    """The chart rendered for prod plus the prod overlay's PodMonitor: what the cluster receives."""
    docs = documents(render(load_values("values-prod.yaml")))
    overlay = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "k8s" / "overlays" / "prod")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert overlay.returncode == 0, overlay.stderr
    docs += [d for d in yaml.safe_load_all(overlay.stdout) if d and d["kind"] == "PodMonitor"]
    return tuple(docs)


def _one(kind: str) -> dict[str, Any]:
    found = [d for d in deployed() if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects are deployed"
    return copy.deepcopy(found[0])


@pytest.mark.parametrize("path", GENERATED_CR_FILES, ids=lambda p: p.name)
def test_generated_custom_resources_validate(path: Path) -> None:
    docs = load_yaml_docs(path)
    assert docs
    for doc in docs:
        validate_cr(doc)


@pytest.mark.parametrize("kind", ("PodMonitor", *DEPLOYED_CR_KINDS))
def test_deployed_custom_resources_validate(kind: str) -> None:
    for doc in (d for d in deployed() if d["kind"] == kind):
        validate_cr(doc)


def test_one_podmonitor_and_one_drift_cronjob_are_deployed() -> None:
    """The predictor's PodMonitor lives with the InferenceService (k8s/base), the drift CronJob in the chart:
    no second copy anywhere in monitoring/."""
    _one("PodMonitor")
    _one("CronJob")
    copies = [
        p
        for p in MONITORING.rglob("*.yaml")
        if any(d.get("kind") in ("PodMonitor", "CronJob", "EventSource", "Sensor") for d in load_yaml_docs(p))
    ]
    assert copies == []


def test_schema_validation_rejects_unknown_keys() -> None:
    doc = _one("PodMonitor")
    doc["spec"]["podMetricsEndpoints"][0]["honourLabels"] = True  # typo
    with pytest.raises(AssertionError, match="honourLabels"):
        validate_cr(doc)


def test_builtin_kinds_validate_strictly(tmp_path: Path) -> None:
    exe = require_binary("kubernetes-validate")
    builtins = [d for d in deployed() if d["kind"] in ("CronJob", "Role", "RoleBinding", "ServiceAccount")]
    path = tmp_path / "builtins.yaml"
    path.write_text(yaml.safe_dump_all(builtins))
    out = subprocess.run([exe, "--strict", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    dashboards = MONITORING / "grafana" / "dashboards-configmap.yaml"
    out = subprocess.run([exe, "--strict", str(dashboards)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_monitors_honour_labels() -> None:
    """Without honorLabels the operator renames `endpoint` (serving) and `job` (pushed drift metrics)."""
    pod = _one("PodMonitor")
    svc = _one("ServiceMonitor")
    assert all(e["honorLabels"] for e in pod["spec"]["podMetricsEndpoints"])
    assert all(e["honorLabels"] for e in svc["spec"]["endpoints"])
    # job label <namespace>/sentiment-predictor is what SentimentModelServerDown selects
    assert "sentiment-predictor" in pod["metadata"]["name"]


# The Argo Events schemas are permissive (they accept any spec), so the structure the Sensor relies on is
# checked here, and the Workflow it creates against the pinned Argo Workflows schema (tests/workflows).


def _sensor() -> dict[str, Any]:
    return _one("Sensor")


def test_sensor_creates_a_workflow_from_the_retrain_template_with_the_contract_parameters() -> None:
    sensor = _sensor()
    (trigger,) = sensor["spec"]["triggers"]
    k8s = trigger["template"]["k8s"]
    workflow = k8s["source"]["resource"]
    assert k8s["operation"] == "create"
    assert workflow["kind"] == "Workflow"
    assert workflow["metadata"]["namespace"] == sensor["metadata"]["namespace"]
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "sentiment-retrain"}
    names = [p["name"] for p in workflow["spec"]["arguments"]["parameters"]]
    assert names == ["dataset_uri", "artifacts_root"]
    # each parameter override points at an existing argument and a declared dependency
    deps = {d["name"] for d in sensor["spec"]["dependencies"]}
    for param in k8s["parameters"]:
        assert param["src"]["dependencyName"] in deps
        index = int(param["dest"].split(".")[3])
        assert param["dest"] == f"spec.arguments.parameters.{index}.value" and index < len(names)


def test_sensor_listens_to_the_eventsource_that_alertmanager_calls() -> None:
    source = _one("EventSource")
    (dep,) = _sensor()["spec"]["dependencies"]
    assert dep["eventSourceName"] == source["metadata"]["name"]
    webhook = source["spec"]["webhook"][dep["eventName"]]
    ns = source["metadata"]["namespace"]
    expected = (
        f"http://{source['metadata']['name']}-eventsource-svc.{ns}.svc:{webhook['port']}{webhook['endpoint']}"
    )
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    (receiver,) = [r for r in config["receivers"] if r["name"] == "retrain-webhook"]
    assert receiver["webhook_configs"][0]["url"] == expected
    assert _sensor()["metadata"]["namespace"] == ns == "sentimentops"
    assert {p["port"] for p in source["spec"]["service"]["ports"]} == {int(webhook["port"])}


def sensor_filters_accept(body: dict[str, Any]) -> bool:
    """Evaluate the Sensor's data filters (string type, AND) on a webhook body as Argo Events would."""
    (dep,) = _sensor()["spec"]["dependencies"]
    assert dep["filters"]["dataLogicalOperator"] == "and"
    for flt in dep["filters"]["data"]:
        assert flt["type"] == "string" and flt["path"].startswith("body.")
        value: Any = body
        for key in flt["path"].removeprefix("body.").split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value not in flt["value"]:
            return False
    return True


def test_sensor_filters_ignore_resolved_and_other_alerts() -> None:
    firing = {"status": "firing", "commonLabels": {"alertname": "SentimentDriftDetected"}}
    assert sensor_filters_accept(firing)
    assert not sensor_filters_accept({**firing, "status": "resolved"})
    assert not sensor_filters_accept(
        {"status": "firing", "commonLabels": {"alertname": "SentimentNoTraffic"}}
    )


def test_cronjob_runs_the_drift_module_with_known_settings() -> None:
    from monitoring.drift.settings import DriftSettings

    cron = _one("CronJob")
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "monitoring.drift"]
    fields = {f"SENTIMENTOPS_{name.upper()}" for name in DriftSettings.model_fields}
    for env in container["env"]:
        assert env["name"] in fields | {"HOME", "MPLCONFIGDIR", "DO_NOT_TRACK", "GX_ANALYTICS_ENABLED"}, env[
            "name"
        ]
    env = {e["name"]: e["value"] for e in container["env"]}
    settings = DriftSettings(
        **{
            k.removeprefix("SENTIMENTOPS_").lower(): v
            for k, v in env.items()
            if k.startswith("SENTIMENTOPS_")
        }
    )
    assert (
        "{model_version}" in settings.reference_uri
    )  # resolved per served version (monitoring/drift/reference.py)
