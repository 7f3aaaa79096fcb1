"""The sentimentops chart: lint, schema, and the hardening every rendered object must carry."""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import pytest
import yaml

from monitoring.drift.settings import DriftSettings
from tests.conftest import REPO_ROOT
from tests.infra.conftest import (
    CHART_DIR,
    NAMESPACE,
    TERRAFORM_DIR,
    VALUES_FILES,
    documents,
    load_values,
    pod_spec,
    render,
)


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_lint_strict(values_file: str) -> None:
    report = helm.lint(str(CHART_DIR), load_values(values_file), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


def test_cluster_bootstrap_chart_lints_and_renders() -> None:
    """The local chart infra/terraform installs after the add-ons' CRDs (KnativeServing, ClusterSecretStore)."""
    chart = TERRAFORM_DIR / "modules" / "addons" / "charts" / "cluster-bootstrap"
    report = helm.lint(str(chart), {"projectId": "sentimentops-prod"}, strict=True)
    assert not [m for m in report["messages"] if m["severity"] >= 2] + report["errors"], report
    kinds = {d["kind"] for d in documents(render({"projectId": "sentimentops-prod"}, chart_dir=chart))}
    assert kinds == {"KnativeServing", "ClusterSecretStore"}
    with pytest.raises(helm.HelmValuesError):
        render({"projectId": "Not A Project"}, chart_dir=chart)


def test_lint_bites_on_a_broken_template(tmp_path) -> None:
    import shutil

    broken = tmp_path / "sentimentops"
    shutil.copytree(CHART_DIR, broken)
    (broken / "templates" / "broken.yaml").write_text(
        "kind: ConfigMap\nmetadata:\n  name: {{ .Values.nope.x }}\n"
    )
    report = helm.lint(str(broken), strict=True, namespace=NAMESPACE)
    assert report["errors"] or any(m["severity"] >= 2 for m in report["messages"])


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_values_file_renders_the_whole_platform(rendered, values_file: str) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents(rendered[values_file])}
    for expected in [
        ("Deployment", "sentimentops-mlflow"),
        ("Service", "sentimentops-mlflow"),
        ("CronJob", "sentimentops-drift"),
        ("Deployment", "sentimentops-pushgateway"),
        ("NetworkPolicy", "sentimentops-default-deny"),
        ("ServiceMonitor", "sentimentops-pushgateway"),
        ("NetworkPolicy", "sentimentops-serving"),
        ("Secret", "sentimentops-alertmanager-config"),
    ]:
        assert expected in kinds, f"{expected} missing from {values_file}"


# --- values.schema.json: wrong values are rejected before anything renders -------------------------------


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"mlflow": {"replicas": "two"}}, "wrong type"),
        ({"mlflow": {"replica": 2}}, "unknown (typo'd) key"),
        ({"drift": {"resources": {"requests": {"memory": None}}}}, "resources without memory"),
        ({"securityContext": {"runAsUser": 0}}, "root UID"),
        ({"networkPolicies": {"googleApisCidrs": ["not-a-cidr"]}}, "invalid CIDR"),
        ({"mlflow": {"image": {"digest": "latest"}}}, "digest that is no sha256"),
        ({"mlflw": {}}, "unknown top-level key"),
    ],
)
def test_schema_rejects_wrong_values(override: dict[str, Any], why: str) -> None:
    with pytest.raises(helm.HelmValuesError):
        render(override)


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_values_files_pass_the_schema(values_file: str) -> None:
    with helm.Chart.load(str(CHART_DIR)) as chart:
        chart.validate_schema(chart.merge_values(load_values(values_file)))


def test_schema_forbids_unknown_keys_everywhere() -> None:
    """Every object in values.schema.json closes its properties, so a typo anywhere is an error."""
    import json

    open_objects = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and node.get("additionalProperties") is not False
            ):
                open_objects.append(path or "/")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(json.loads((CHART_DIR / "values.schema.json").read_text()), "")
    assert not open_objects, open_objects


# --- PodSecurity "restricted" and resources on every container --------------------------------------------


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def hardening_problems(docs: list[dict[str, Any]]) -> list[str]:
    """What keeps the workloads from PodSecurity "restricted" plus our own rules (resources, RO root FS)."""
    problems = []
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        pod_sc = spec.get("securityContext", {})
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{name}: host namespaces")
        if any("hostPath" in v for v in spec.get("volumes", [])):
            problems.append(f"{name}: hostPath volume")
        for c in _containers(spec):
            where = f"{name}/{c['name']}"
            sc = {**pod_sc, **c.get("securityContext", {})}
            if sc.get("runAsNonRoot") is not True or sc.get("runAsUser", 1) == 0:
                problems.append(f"{where}: may run as root")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: writable root filesystem")
            if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
                problems.append(f"{where}: capabilities not dropped (drop: [ALL], no add)")
            if sc.get("seccompProfile", {}).get("type") not in {"RuntimeDefault", "Localhost"}:
                problems.append(f"{where}: no RuntimeDefault seccomp profile")
            resources = c.get("resources", {})
            for section in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(section, {})):
                    problems.append(f"{where}: resources.{section} needs cpu and memory")
    return problems


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_workloads_are_restricted_and_bounded(rendered, values_file: str) -> None:
    assert not hardening_problems(documents(rendered[values_file]))


def test_hardening_check_bites_on_a_privileged_container(rendered) -> None:
    docs = copy.deepcopy(documents(rendered["values.yaml"]))
    mlflow = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("mlflow"))
    container = mlflow["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"].update(privileged=True, readOnlyRootFilesystem=False)
    del container["resources"]["limits"]
    problems = hardening_problems(docs)
    assert any("privileged" in p for p in problems)
    assert any("writable root filesystem" in p for p in problems)
    assert any("resources.limits" in p for p in problems)


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_only_cluster_ip_services_and_no_ingress(rendered, values_file: str) -> None:
    """MLflow (and everything else in the chart) is never exposed outside the cluster."""
    docs = documents(rendered[values_file])
    assert not [d for d in docs if d["kind"] in {"Ingress", "Gateway", "HTTPRoute", "VirtualService"}]
    for svc in (d for d in docs if d["kind"] == "Service"):
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["metadata"]["name"]


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_default_deny_and_a_policy_for_every_workload(rendered, values_file: str) -> None:
    docs = documents(rendered[values_file])
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] and "egress" not in p["spec"]
    ]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    selected = [p["spec"]["podSelector"].get("matchLabels", {}) for p in policies]
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        template = (
            doc["spec"]["jobTemplate"]["spec"]["template"]
            if doc["kind"] == "CronJob"
            else doc["spec"]["template"]
        )
        labels = template["metadata"]["labels"]
        own = [s for s in selected if s and s.items() <= labels.items()]
        assert own, f"no NetworkPolicy selects {doc['kind']}/{doc['metadata']['name']} specifically"
    # No policy opens everything: every ingress/egress rule names peers or ports.
    for p in policies:
        for rule in p["spec"].get("ingress", []) + p["spec"].get("egress", []):
            assert rule.get("from") or rule.get("to"), f"{p['metadata']['name']} has a rule open to all peers"


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_tokens_mounted_only_where_the_api_is_used(rendered, values_file: str) -> None:
    docs = documents(rendered[values_file])
    for doc in docs:
        spec = pod_spec(doc)
        if spec is not None:
            assert spec.get("automountServiceAccountToken") is False, doc["metadata"]["name"]
    rules = [r for d in docs if d["kind"] in {"Role", "ClusterRole"} for r in d["rules"]]
    assert not [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule


def test_service_accounts_match_terraform_workload_identity() -> None:
    """The chart's KSAs are the ones infra/topology.py names (and Terraform binds, through topology.json),
    each annotated with its Google SA."""
    from infra.topology import WORKLOADS

    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    chart_names = {k: v["name"] for k, v in values["serviceAccounts"].items()}
    assert chart_names == {k: WORKLOADS[k].service_account for k in chart_names}
    for sa in (d for d in documents(render()) if d["kind"] == "ServiceAccount"):
        annotations = sa["metadata"].get("annotations") or {}
        google = [
            w for w in WORKLOADS.values() if w.service_account == sa["metadata"]["name"] and w.google_sa
        ]
        if google:
            wanted = f"{google[0].google_sa}@{values['gcp']['projectId']}.iam.gserviceaccount.com"
            assert annotations["iam.gke.io/gcp-service-account"] == wanted
        else:
            assert "iam.gke.io/gcp-service-account" not in annotations


def test_serving_identity_and_namespace_match_k8s_manifests() -> None:
    """The predictor's KSA and each environment's serving namespace agree across k8s/, the chart values,
    the topology and the environment's tfvars."""
    from infra.topology import ENVIRONMENTS, WORKLOADS
    from tests.infra.terraform_model import load_file

    k8s = REPO_ROOT / "k8s"
    ksa = yaml.safe_load((k8s / "base" / "serviceaccount.yaml").read_text())["metadata"]["name"]
    assert WORKLOADS["predictor"].service_account == ksa
    for env in ("staging", "prod"):
        overlay = k8s / "overlays" / env / "kustomization.yaml"
        namespace = yaml.safe_load(overlay.read_text())["namespace"]
        tfvars = load_file(TERRAFORM_DIR / "environments" / f"{env}.tfvars")
        assert tfvars["serving_namespace"] == namespace, f"{env}: terraform binds another namespace than k8s/"
        assert load_values(f"values-{env}.yaml")["serving"]["namespace"] == namespace
        assert ENVIRONMENTS[env].serving_namespace == namespace


def test_monitoring_objects_come_from_the_synced_files(rendered) -> None:
    """One PrometheusRule per rule file, one ConfigMap per dashboard, the Alertmanager config verbatim."""
    import base64

    files = CHART_DIR / "files"
    docs = documents(rendered["values.yaml"])
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    rule_files = sorted((files / "prometheus" / "rules").glob("*.yaml"))
    assert len(rules) == len(rule_files)
    for rule, path in zip(sorted(rules, key=lambda d: d["metadata"]["name"]), rule_files, strict=True):
        assert rule["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"]
    dashboards = [
        d for d in docs if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]
    ]
    assert len(dashboards) == len(list((files / "grafana" / "dashboards").glob("*.json")))
    am_source = next(iter(sorted((files / "alertmanager").glob("alertmanager.y*ml"))), None)
    secret = next(
        (
            d
            for d in docs
            if d["kind"] == "Secret" and d["metadata"]["name"] == "sentimentops-alertmanager-config"
        ),
        None,
    )
    if am_source is None:
        assert secret is None
    else:
        assert base64.b64decode(secret["data"]["alertmanager.yaml"]).decode() == am_source.read_text()


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_environment_values_match_terraform(env: str) -> None:
    """values-<env>.yaml points at what infra/terraform creates for <env>: project, buckets, database,
    and the CIDRs its NetworkPolicies allow."""
    from infra.topology import MODEL_NAME
    from tests.infra.terraform_model import load_file

    tfvars = load_file(TERRAFORM_DIR / "environments" / f"{env}.tfvars")
    defaults = {
        name: body.get("default")
        for block in load_file(TERRAFORM_DIR / "variables.tf")["variable"]
        for name, body in block.items()
    }
    tf = {**defaults, **tfvars}
    project, region, prefix = tf["project_id"], tf["region"], tf["name_prefix"]
    with helm.Chart.load(str(CHART_DIR)) as chart:
        values = chart.merge_values(load_values(f"values-{env}.yaml"))
    assert values["gcp"] == {"projectId": project, "region": region}
    registry = f"{region}-docker.pkg.dev/{project}/{prefix}/"
    assert values["mlflow"]["image"]["repository"].startswith(registry)
    assert values["drift"]["image"]["repository"].startswith(registry)
    assert values["mlflow"]["defaultArtifactRoot"].startswith(f"gs://{project}-artifacts/")
    assert values["drift"]["logRoot"] == f"gs://{project}-payload-logs"
    assert values["drift"]["referenceUri"].startswith(f"gs://{project}-data/")
    assert values["drift"]["modelName"] == MODEL_NAME
    database = values["mlflow"]["database"]
    assert database["instanceConnectionName"] == f"{project}:{region}:{prefix}-mlflow"
    assert database["iamUser"] == f"{prefix}-mlflow@{project}.iam"
    policies = values["networkPolicies"]
    assert policies["cloudSqlCidrs"] == [tf["private_service_access_cidr"]]
    assert policies["kubeApiCidrs"] == [tf["master_ipv4_cidr_block"]]
    assert values["monitoring"]["alertmanager"]["configSecretName"] == f"{prefix}-alertmanager-config"
    for remote in values["monitoring"]["alertmanager"]["externalSecret"]["data"].values():
        assert remote.startswith(f"{prefix}-"), f"External Secrets may read only {prefix}-* secrets: {remote}"


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_drift_cronjob_sets_only_settings_the_drift_job_has(rendered, values_file: str) -> None:
    """Every SENTIMENTOPS_* variable of the CronJob is a field of monitoring.drift's settings (a renamed
    field would otherwise be silently ignored) and the settings parse."""
    (cronjob,) = [d for d in documents(rendered[values_file]) if d["kind"] == "CronJob"]
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "monitoring.drift"]
    env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("SENTIMENTOPS_")}
    fields = DriftSettings.model_fields
    unknown = [name for name in env if name.removeprefix("SENTIMENTOPS_").lower() not in fields]
    assert not unknown, unknown
    settings = DriftSettings(**{k.removeprefix("SENTIMENTOPS_").lower(): v for k, v in env.items()})
    assert settings.pushgateway_url and settings.log_root.startswith("gs://")
