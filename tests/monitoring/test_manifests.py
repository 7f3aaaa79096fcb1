"""Every CR manifest validates against the CRD schemas; plain Kubernetes kinds with kubernetes-validate."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.conftest import ALERTMANAGER_YML, MONITORING, load_yaml_docs, validate_cr

CR_FILES = [
    MONITORING / "prometheus" / "podmonitor-predictor.yaml",
    MONITORING / "prometheus" / "servicemonitor-pushgateway.yaml",
    MONITORING / "prometheus" / "prometheusrule.yaml",
    MONITORING / "alertmanager" / "alertmanagerconfig.yaml",
    MONITORING / "retrain-trigger" / "eventsource.yaml",
    MONITORING / "retrain-trigger" / "sensor.yaml",
]
K8S_FILES = [
    MONITORING / "drift" / "cronjob.yaml",
    MONITORING / "retrain-trigger" / "rbac.yaml",
    MONITORING / "grafana" / "dashboards-configmap.yaml",
]
SENSOR = MONITORING / "retrain-trigger" / "sensor.yaml"
EVENTSOURCE = MONITORING / "retrain-trigger" / "eventsource.yaml"


@pytest.mark.parametrize("path", CR_FILES, ids=lambda p: p.name)
def test_custom_resources_validate(path: Path) -> None:
    docs = load_yaml_docs(path)
    assert docs
    for doc in docs:
        validate_cr(doc)


def test_schema_validation_rejects_unknown_keys() -> None:
    doc = load_yaml_docs(CR_FILES[0])[0]
    bad = copy.deepcopy(doc)
    bad["spec"]["podMetricsEndpoints"][0]["honourLabels"] = True  # typo
    with pytest.raises(AssertionError, match="honourLabels"):
        validate_cr(bad)


@pytest.mark.parametrize("path", K8S_FILES, ids=lambda p: p.name)
def test_builtin_kinds_validate_strictly(path: Path) -> None:
    exe = Path(sys.executable).parent / "kubernetes-validate"
    if not exe.exists():
        pytest.skip("kubernetes-validate not installed (pip install -e .[checks])")
    out = subprocess.run([str(exe), "--strict", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_monitors_honour_labels() -> None:
    """Without honorLabels the operator renames `endpoint` (serving) and `job` (pushed drift metrics)."""
    pod = load_yaml_docs(CR_FILES[0])[0]
    svc = load_yaml_docs(CR_FILES[1])[0]
    assert all(e["honorLabels"] for e in pod["spec"]["podMetricsEndpoints"])
    assert all(e["honorLabels"] for e in svc["spec"]["endpoints"])
    # job label <namespace>/sentiment-predictor is what SentimentModelServerDown selects
    assert "sentiment-predictor" in pod["metadata"]["name"]


# The Argo Events schemas in the shared catalogue are permissive stubs (they accept any spec), so the
# structure the Sensor relies on is checked here, and the Workflow it submits against the strict
# WorkflowSpec schema (WorkflowTemplate's spec is the same type).


def _sensor() -> dict[str, Any]:
    return load_yaml_docs(SENSOR)[0]


def test_sensor_submits_the_retrain_template_with_the_contract_parameters() -> None:
    sensor = _sensor()
    (trigger,) = sensor["spec"]["triggers"]
    workflow = trigger["template"]["argoWorkflow"]["source"]["resource"]
    assert trigger["template"]["argoWorkflow"]["operation"] == "submit"
    assert workflow["kind"] == "Workflow"
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "sentiment-retrain"}
    names = [p["name"] for p in workflow["spec"]["arguments"]["parameters"]]
    assert names == ["dataset_uri", "artifacts_root"]
    validate_cr({**workflow, "kind": "WorkflowTemplate", "metadata": {"name": "x"}})
    # each parameter override points at an existing argument and a declared dependency
    deps = {d["name"] for d in sensor["spec"]["dependencies"]}
    for param in trigger["template"]["argoWorkflow"]["parameters"]:
        assert param["src"]["dependencyName"] in deps
        index = int(param["dest"].split(".")[3])
        assert param["dest"] == f"spec.arguments.parameters.{index}.value" and index < len(names)


def test_sensor_listens_to_the_eventsource_that_alertmanager_calls() -> None:
    source = load_yaml_docs(EVENTSOURCE)[0]
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
    assert _sensor()["metadata"]["namespace"] == ns
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

    (cron,) = load_yaml_docs(MONITORING / "drift" / "cronjob.yaml")
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "monitoring.drift"]
    fields = {f"SENTIMENTOPS_{name.upper()}" for name in DriftSettings.model_fields}
    for env in container["env"]:
        assert env["name"] in fields | {"HOME", "MPLCONFIGDIR"}, env["name"]
    yaml.safe_dump(cron)  # round-trips
