"""Every kind of platform check fails when one hop is broken: each test applies a one-line defect to a
freshly rendered deployment (the kinds the review found: wrong namespace, missing port, PodSecurity,
IAM, RBAC, alert selectors, versions, sizes, timings, hand-offs) and expects the check to name it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from infra.topology import Hop, workload
from tests.platform import checks, upstream
from tests.platform.deployment import Deployment, build


def _one(dep: Deployment, kind: str, name: str) -> dict[str, Any]:
    found = [d for d in dep.objects if d.get("kind") == kind and d["metadata"]["name"] == name]
    assert found, f"{kind}/{name} is not rendered"
    return found[0]


def _container_env(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]


def _set_env(env: list[dict[str, Any]], name: str, value: str) -> None:
    next(e for e in env if e["name"] == name)["value"] = value


@pytest.fixture
def prod() -> Deployment:
    return build("prod")


@pytest.fixture
def staging() -> Deployment:
    return build("staging")


def test_the_unbroken_deployment_passes(prod: Deployment) -> None:
    """The baseline every mutation below departs from."""
    assert checks.check_exists(prod, workload("eventsource")) == []
    assert checks.check_references(prod) == []


# --- exists: wrong namespace, missing port ---------------------------------------------------------------


def test_exists_reports_an_object_in_the_wrong_namespace(prod: Deployment) -> None:
    _one(prod, "EventSource", "sentiment-retrain")["metadata"]["namespace"] = "sentiment-prod"
    problems = checks.check_exists(prod, workload("eventsource"))
    assert any("not rendered in namespace sentimentops" in p for p in problems), problems
    # ... and Alertmanager's webhook URL no longer resolves.
    assert any("retrain-webhook" in p for p in checks.check_references(prod))


def test_exists_reports_a_service_without_the_port(prod: Deployment) -> None:
    _one(prod, "Service", "sentimentops-mlflow")["spec"]["ports"][0].update(port=5001, targetPort=5001)
    problems = checks.check_service(prod, Hop("training", "mlflow", 5000, "tracking"))
    assert any("does not expose port 5000" in p for p in problems), problems


def test_exists_reports_pods_without_the_labels_policies_select(prod: Deployment) -> None:
    wt = _one(prod, "WorkflowTemplate", "canary-analysis")
    wt["spec"]["podMetadata"]["labels"]["app.kubernetes.io/component"] = "training"
    assert checks.check_exists(prod, workload("canary-analysis"))


# --- identity -------------------------------------------------------------------------------------------


def test_identity_reports_a_wrong_google_service_account(prod: Deployment) -> None:
    sa = _one(prod, "ServiceAccount", "sentimentops-drift")
    sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] = (
        "drift@sentimentops-staging.iam.gserviceaccount.com"
    )
    assert any("maps to Google SA" in p for p in checks.check_identity(prod, workload("drift")))


def test_identity_reports_a_workload_identity_binding_in_another_namespace(prod: Deployment) -> None:
    prod.terraform_topology["workload_identities"]["predictor"]["namespace"] = "sentimentops"
    assert any("Terraform binds" in p for p in checks.check_identity(prod, workload("predictor")))


# --- network --------------------------------------------------------------------------------------------


def test_network_reports_a_hop_default_deny_blocks(prod: Deployment) -> None:
    prod.objects.remove(_one(prod, "NetworkPolicy", "sentimentops-events-eventsource"))
    problems = checks.check_network(prod, Hop("alertmanager", "eventsource", 12000, "webhook"))
    assert any("blocked" in p for p in problems), problems


def test_network_reports_a_missing_port(prod: Deployment) -> None:
    policy = _one(prod, "NetworkPolicy", "sentimentops-events-eventsource")
    policy["spec"]["ingress"][0]["ports"][0]["port"] = 12001
    assert checks.check_network(prod, Hop("alertmanager", "eventsource", 12000, "webhook"))


def test_network_reports_a_policy_that_lets_everyone_in(prod: Deployment) -> None:
    policy = _one(prod, "NetworkPolicy", "sentimentops-mlflow")
    policy["spec"]["ingress"][0]["from"].append({"podSelector": {}})
    problems = checks.check_network(prod, Hop("training", "mlflow", 5000, "tracking"))
    assert any("unlisted pod" in p for p in problems), problems


def test_forbidden_reports_a_connection_that_must_stay_closed(prod: Deployment) -> None:
    policy = _one(prod, "NetworkPolicy", "sentimentops-serving")
    policy["spec"]["egress"].append({"to": [{"namespaceSelector": {}}]})
    _one(prod, "NetworkPolicy", "sentimentops-mlflow")["spec"]["ingress"][0]["from"].append(
        {"namespaceSelector": {}}
    )
    assert any("predictor -> mlflow" in p for p in checks.check_forbidden(prod))


# --- rbac -----------------------------------------------------------------------------------------------


def test_rbac_reports_a_verb_too_many(prod: Deployment) -> None:
    _one(prod, "Role", "sentiment-retrain-sensor")["rules"][0]["verbs"].append("delete")
    assert any("more than needed" in p for p in checks.check_rbac(prod, workload("sensor")))


def test_rbac_reports_a_missing_verb_in_the_serving_namespace(prod: Deployment) -> None:
    role = next(
        d
        for d in prod.objects
        if d["kind"] == "Role"
        and d["metadata"]["name"] == "canary-analysis"
        and d["metadata"]["namespace"] == "sentiment-prod"
    )
    role["rules"][0]["verbs"] = ["list"]
    problems = checks.check_rbac(prod, workload("canary-analysis"))
    assert any("does not allow get inferenceservices" in p for p in problems), problems


# --- iam ------------------------------------------------------------------------------------------------


def test_iam_reports_a_missing_bucket_role(prod: Deployment) -> None:
    grants = prod.terraform_topology["bucket_grants"]
    del grants[
        next(k for k, g in grants.items() if g["workload"] == "predictor" and g["bucket"] == "payload-logs")
    ]
    assert any("does not grant" in p for p in checks.check_iam(prod, workload("predictor")))


def test_iam_reports_a_bucket_of_another_project(prod: Deployment) -> None:
    _set_env(
        _container_env(_one(prod, "CronJob", "sentimentops-drift")),
        "SENTIMENTOPS_LOG_ROOT",
        "gs://sentimentops-dev-payload-logs",
    )
    assert any("does not create" in p for p in checks.check_iam(prod, workload("drift")))


# --- podsecurity ------------------------------------------------------------------------------------------


def test_podsecurity_reports_argo_executor_containers_without_a_security_context(prod: Deployment) -> None:
    cm = next(
        d
        for d in prod.addon_objects
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("workflow-controller-configmap")
    )
    config = yaml.safe_load(cm["data"]["config"])
    config["executor"].pop("securityContext")
    cm["data"]["config"] = yaml.safe_dump(config)
    problems = checks.check_podsecurity(prod, workload("training"))
    assert any("initContainers[init]" in p and "allowPrivilegeEscalation" in p for p in problems), problems


def test_podsecurity_reports_an_events_pod_without_seccomp(prod: Deployment) -> None:
    sensor = _one(prod, "Sensor", "sentiment-retrain")
    sensor["spec"]["template"]["securityContext"].pop("seccompProfile")
    sensor["spec"]["template"]["container"]["securityContext"].pop("seccompProfile")
    assert any("seccomp" in p for p in checks.check_podsecurity(prod, workload("sensor")))


def test_podsecurity_reports_an_addon_pod_below_its_namespace_level(prod: Deployment) -> None:
    controller = next(
        d
        for d in prod.addon_objects
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("workflow-controller")
    )
    controller["spec"]["template"]["spec"]["securityContext"] = {}
    controller["spec"]["template"]["spec"]["containers"][0]["securityContext"].pop("seccompProfile")
    assert any("workflow-controller" in p for p in checks.check_all_pods(prod))


def test_podsecurity_reports_a_namespace_terraform_does_not_create(prod: Deployment) -> None:
    del prod.namespace_levels["sentimentops"]
    assert checks.check_podsecurity(prod, workload("mlflow"))


# --- fits -----------------------------------------------------------------------------------------------


def test_fits_reports_the_wrong_gpu_type(staging: Deployment) -> None:
    wt = _one(staging, "WorkflowTemplate", "sentiment-retrain")
    finetune = next(t for t in wt["spec"]["templates"] if t["name"] == "finetune")
    finetune["nodeSelector"]["cloud.google.com/gke-accelerator"] = "nvidia-l4"
    assert any("nvidia-tesla-t4" in p for p in checks.check_fits(staging, workload("training")))


def test_fits_reports_a_request_larger_than_a_node(staging: Deployment) -> None:
    wt = _one(staging, "WorkflowTemplate", "sentiment-retrain")
    evaluate = next(t for t in wt["spec"]["templates"] if t["name"] == "evaluate")
    evaluate["container"]["resources"]["requests"]["cpu"] = "4"
    assert any("e2-standard-4" in p for p in checks.check_fits(staging, workload("training")))


# --- references -----------------------------------------------------------------------------------------


MUTATIONS: dict[str, tuple[Callable[[Deployment], None], str]] = {
    "template name": (
        lambda d: _one(d, "Sensor", "sentiment-retrain")["spec"]["triggers"][0]["template"]["k8s"]["source"][
            "resource"
        ]["spec"]["workflowTemplateRef"].update(name="sentiment-retrian"),
        "WorkflowTemplate sentimentops/sentiment-retrian does not exist",
    ),
    "service port": (
        lambda d: _set_env(
            _container_env(_one(d, "CronJob", "sentimentops-drift")),
            "SENTIMENTOPS_PUSHGATEWAY_URL",
            "http://sentimentops-pushgateway.sentimentops.svc.cluster.local:9092",
        ),
        "Service has no port 9092",
    ),
    "secret": (
        lambda d: d.objects.remove(_one(d, "ExternalSecret", "sentimentops-gitops")),
        "Secret sentimentops/sentimentops-gitops does not exist",
    ),
    "secret key": (
        lambda d: _one(d, "ExternalSecret", "sentimentops-mlflow-auth")["spec"].update(
            data=[
                x
                for x in _one(d, "ExternalSecret", "sentimentops-mlflow-auth")["spec"]["data"]
                if x["secretKey"] != "reader-password"
            ]
        ),
        "has no key reader-password",
    ),
    "service account": (
        lambda d: _one(d, "CronJob", "sentimentops-drift")["spec"]["jobTemplate"]["spec"]["template"][
            "spec"
        ].update(serviceAccountName="drift"),
        "ServiceAccount sentimentops/drift does not exist",
    ),
    "unknown parameter": (
        lambda d: _one(d, "CronWorkflow", "sentiment-retrain-cron")["spec"]["workflowSpec"]["arguments"][
            "parameters"
        ].append({"name": "datset_uri", "value": "x"}),
        "passes unknown parameter datset_uri",
    ),
    "image user": (
        lambda d: _one(d, "WorkflowTemplate", "canary-analysis")["spec"]["securityContext"].update(
            runAsUser=1000
        ),
        "runs as uid 1000",
    ),
    "image registry": (
        lambda d: _one(d, "CronJob", "sentimentops-drift")["spec"]["jobTemplate"]["spec"]["template"]["spec"][
            "containers"
        ][0].update(image="europe-west4-docker.pkg.dev/sentimentops-dev/sentimentops/train:0.1.0"),
        "not in prod's registry",
    ),
    "monitor port": (
        lambda d: _one(d, "ServiceMonitor", "sentimentops-pushgateway")["spec"]["endpoints"][0].update(
            port="metrics"
        ),
        "no port named metrics",
    ),
    "disruption budget": (
        lambda d: _one(d, "PodDisruptionBudget", "sentiment-predictor")["spec"]["selector"][
            "matchLabels"
        ].update(component="transformer"),
        "PodDisruptionBudget sentiment-prod/sentiment-predictor: selector matches no pod",
    ),
    "image build": (
        lambda d: _one(d, "CronJob", "sentimentops-drift")["spec"]["jobTemplate"]["spec"]["template"]["spec"][
            "containers"
        ][0].update(image="europe-west4-docker.pkg.dev/sentimentops-prod/sentimentops/train:0.0.9"),
        "image train runs as 2 builds in prod",
    ),
    "unpinned image": (
        lambda d: _pushgateway_container(d).update(image="quay.io/prometheus/pushgateway:v1.11.2"),
        "image quay.io/prometheus/pushgateway:v1.11.2 is neither ours nor pinned",
    ),
    "monitor selector": (
        lambda d: _one(d, "PodMonitor", "sentiment-predictor")["spec"]["selector"]["matchLabels"].update(
            component="predicter"
        ),
        "selector matches nothing",
    ),
}


def _pushgateway_container(dep: Deployment) -> dict[str, Any]:
    return _one(dep, "Deployment", "sentimentops-pushgateway")["spec"]["template"]["spec"]["containers"][0]


def test_a_third_party_image_pinned_by_digest_passes_and_the_allow_list_is_documented(
    prod: Deployment, staging: Deployment
) -> None:
    """Pinned as repository:tag@sha256:<digest>, an image needs no allow-list entry; every entry of the
    allow-list of images still run by tag is rendered somewhere and listed in docs/security.md."""
    from tests.conftest import REPO_ROOT
    from tests.platform.checks.references import UNPINNED_THIRD_PARTY_IMAGES

    _pushgateway_container(prod).update(image="quay.io/prometheus/pushgateway:v1.11.2@sha256:" + "0" * 64)
    assert not [p for p in checks.check_references(prod) if "pinned" in p]
    rendered = {
        str(c.get("image"))
        for dep in (build("prod"), staging)
        for pod in dep.pods()
        for c in pod.spec.get("containers", []) + pod.spec.get("initContainers", [])
    }
    security = (REPO_ROOT / "docs" / "security.md").read_text()
    for image in sorted(UNPINNED_THIRD_PARTY_IMAGES):
        assert image in rendered, f"{image} is allow-listed but no longer runs: drop it from the list"
        assert f"`{image}`" in security, f"{image} is allow-listed but not in docs/security.md"


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_references_report_a_name_that_does_not_resolve(prod: Deployment, mutation: str) -> None:
    mutate, expected = MUTATIONS[mutation]
    mutate(prod)
    problems = checks.check_references(prod)
    assert any(expected in p for p in problems), problems


# --- schemas and versions -----------------------------------------------------------------------------


def test_schemas_report_a_field_the_pinned_argo_does_not_know(prod: Deployment) -> None:
    wt = _one(prod, "WorkflowTemplate", "sentiment-retrain")
    wt["spec"]["synchronization"]["mutexez"] = wt["spec"]["synchronization"].pop("mutexes")
    assert any("mutexez" in p for p in checks.check_schemas(prod))


def test_a_pin_without_upstream_material_cannot_be_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old pin (chart 0.42.5, Argo 3.5) has no charts/CRDs to check against: it is refused, not skipped."""
    pins = {
        "charts": {**upstream.versions()["charts"], "argo_workflows": "0.42.5"},
        "apps": {"argo_workflows": "v3.5.11"},
    }
    monkeypatch.setattr(upstream, "versions", lambda: pins)
    with pytest.raises(FileNotFoundError, match="0.42.5"):
        upstream.chart_dir("argo-workflows", pins["charts"]["argo_workflows"])
    with pytest.raises(FileNotFoundError, match="v3.5.11"):
        upstream.crd_dir("argo-workflows", pins["apps"]["argo_workflows"])


def test_alert_selectors_report_controller_metrics_older_argo_lacks(
    prod: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checks.consistency, "versions", lambda: {"apps": {"argo_workflows": "v3.5.11"}})
    assert any("only from Argo Workflows 3.6" in p for p in checks.check_alert_selectors(prod))


def test_alert_selectors_report_unscraped_controller_metrics(prod: Deployment) -> None:
    prod.addon_objects = [d for d in prod.addon_objects if d["kind"] != "ServiceMonitor"]
    assert any("no ServiceMonitor scrapes" in p for p in checks.check_alert_selectors(prod))


def test_alert_selectors_report_a_wrong_cronjob_name(prod: Deployment) -> None:
    rule = next(r for r in checks._rules(prod) if r.get("alert") == "SentimentDriftJobFailing")
    rule["expr"] = rule["expr"].replace("sentimentops-drift-", "sentiment-drift-")
    assert any("matches no Job" in p for p in checks.check_alert_selectors(prod))


# --- timings, Argo CD, hand-offs, Terraform ------------------------------------------------------------


def test_timings_report_a_cronjob_that_outlives_its_period(prod: Deployment) -> None:
    _one(prod, "CronJob", "sentimentops-drift")["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] = 7200
    problems = checks.check_timings(prod)
    assert any("activeDeadlineSeconds 7200" in p for p in problems), problems


def test_timings_report_a_workflow_deadline_shorter_than_its_steps(prod: Deployment) -> None:
    _one(prod, "WorkflowTemplate", "sentiment-retrain")["spec"]["activeDeadlineSeconds"] = 3600
    assert any("critical path" in p for p in checks.check_timings(prod))


def test_argocd_reports_a_part_nothing_syncs(prod: Deployment) -> None:
    prod.argocd = [a for a in prod.argocd if a["metadata"]["name"] != "sentimentops-workflows-prod"]
    assert any("nothing syncs workflows/manifests/prod" in p for p in checks.check_argocd(prod))


def test_argocd_reports_the_default_project(prod: Deployment) -> None:
    next(a for a in prod.argocd if a["kind"] == "Application")["spec"]["project"] = "default"
    assert any("project default is not defined" in p for p in checks.check_argocd(prod))


def test_handoffs_report_a_predictor_without_payload_logs(prod: Deployment) -> None:
    runtime = _one(prod, "ServingRuntime", "sentimentops-predictor")
    env = runtime["spec"]["containers"][0]["env"]
    env[:] = [e for e in env if e["name"] != "SENTIMENTOPS_PAYLOAD_LOG_URI"]
    assert any("writes no payload log" in p for p in checks.check_handoffs(prod))


def test_handoffs_report_a_base_model_from_the_hub(prod: Deployment) -> None:
    wt = _one(prod, "WorkflowTemplate", "sentiment-retrain")
    next(p for p in wt["spec"]["arguments"]["parameters"] if p["name"] == "base_model")["value"] = (
        "distilbert-base-uncased"
    )
    assert any("needs the internet" in p for p in checks.check_handoffs(prod))


def test_handoffs_report_a_drift_reference_nobody_writes(prod: Deployment) -> None:
    _set_env(
        _container_env(_one(prod, "CronJob", "sentimentops-drift")),
        "SENTIMENTOPS_REFERENCE_URI",
        "gs://sentimentops-prod-data/validated",
    )
    assert any("the drift job reads" in p for p in checks.check_handoffs(prod))


def test_handoffs_report_a_registered_model_the_mlflow_bootstrap_does_not_grant(prod: Deployment) -> None:
    env = _one(prod, "Job", "sentimentops-mlflow-auth-bootstrap")["spec"]["template"]["spec"]["containers"][
        0
    ]["env"]
    _set_env(env, "SENTIMENTOPS_REGISTERED_MODEL", "other-task")
    _set_env(env, "SENTIMENTOPS_OTHER_REGISTERED_MODELS", "")
    assert any("register would be refused" in p for p in checks.check_handoffs(prod))


def test_terraform_environment_reports_tfvars_that_disagree(prod: Deployment) -> None:
    prod.tfvars["gpu_accelerator_type"] = "nvidia-tesla-t4"
    assert any("gpu_accelerator_type" in p for p in checks.check_terraform_environment(prod))


def test_batch_score_capacity_reports_a_fan_out_the_cpu_pool_cannot_hold(prod: Deployment) -> None:
    assert checks.check_batch_score_capacity(prod) == []
    prod.tfvars["cpu_max_nodes"] = 2  # the pool shrunk in Terraform, the template still fans out 6 wide
    assert any(
        "score-shard pods" in p and "cpu_max_nodes=2" in p for p in checks.check_batch_score_capacity(prod)
    )


def test_single_source_reports_a_copy_nothing_deploys(prod: Deployment, tmp_path) -> None:
    """The review's duplicated drift CronJob: a second hand-written copy beside the chart's."""
    copy_file = tmp_path / "cronjob.yaml"
    copy_file.write_text("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: sentiment-drift\n")
    problems = checks.check_single_source(prod, [copy_file])
    assert any("CronJob/sentiment-drift is deployed by nothing" in p for p in problems), problems


def test_single_source_reports_an_object_synced_twice(prod: Deployment) -> None:
    prod.objects.append(dict(_one(prod, "CronJob", "sentimentops-drift"), _source="a second Application"))
    assert any("deployed twice" in p for p in checks.check_single_source(prod, []))


def test_handoffs_report_retrain_runs_that_may_overlap(prod: Deployment) -> None:
    _one(prod, "WorkflowTemplate", "sentiment-retrain")["spec"].pop("synchronization")
    assert any("may overlap" in p for p in checks.check_handoffs(prod))


def test_references_report_a_slack_secret_alertmanager_cannot_read(prod: Deployment) -> None:
    secret = next(
        d for d in prod.of_kind("ExternalSecret") if d["spec"]["target"]["name"] == "alertmanager-slack"
    )
    secret["spec"]["data"] = [d for d in secret["spec"]["data"] if d["secretKey"] != "pager-url"]
    assert any("has no key pager-url" in p for p in checks.check_references(prod))


def test_handoffs_report_a_predictor_without_a_pinned_digest(prod: Deployment) -> None:
    model = _one(prod, "InferenceService", "sentiment")["spec"]["predictor"]["model"]
    model["env"] = [e for e in model["env"] if e["name"] != "SENTIMENTOPS_EXPECTED_MODEL_DIGEST"]
    assert any("no pinned model digest" in p for p in checks.check_handoffs(prod))


def test_alert_selectors_cover_the_dashboards_too(prod: Deployment) -> None:
    """The pipeline dashboard's argo_workflows_* panels need the scraped controller metrics as well."""
    from tests.platform.checks.consistency import _dashboard_queries

    assert any("argo_workflows_" in expr for _, expr in _dashboard_queries(prod))
    prod.addon_objects = [d for d in prod.addon_objects if d["kind"] != "ServiceMonitor"]
    assert any(".json/" in p and "no ServiceMonitor" in p for p in checks.check_alert_selectors(prod))


def test_alert_selectors_report_an_up_selector_no_monitor_produces(prod: Deployment) -> None:
    """SentimentModelServerDown selects the predictor's scrape job by name: renaming the PodMonitor breaks it."""
    _one(prod, "PodMonitor", "sentiment-predictor")["metadata"]["name"] = "predictor-metrics"
    assert any("matches no scrape job" in p for p in checks.check_alert_selectors(prod))


def test_handoffs_report_an_eventbus_version_argo_events_does_not_ship(prod: Deployment) -> None:
    _one(prod, "EventBus", "default")["spec"]["jetstream"]["version"] = "2.99.0"
    assert any("JetStream 2.99.0" in p for p in checks.check_handoffs(prod))


def test_handoffs_report_a_drift_job_watching_another_model(prod: Deployment) -> None:
    _set_env(
        _container_env(_one(prod, "CronJob", "sentimentops-drift")), "SENTIMENTOPS_MODEL_NAME", "sentiments"
    )
    assert any("the predictor logs as 'sentiment'" in p for p in checks.check_handoffs(prod))
