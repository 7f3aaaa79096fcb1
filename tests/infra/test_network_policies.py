"""The rendered NetworkPolicies allow what each part needs and nothing else (evaluated, not just parsed)."""

from __future__ import annotations

import pytest

from tests.infra.conftest import documents
from tests.infra.netpol import External, Pod, allowed

NS, SERVING_NS = "sentimentops", "sentiment-prod"


def _component(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "sentimentops",
        "app.kubernetes.io/instance": "sentimentops",
        "app.kubernetes.io/component": name,
    }


MLFLOW = Pod(NS, _component("mlflow"))
DRIFT = Pod(NS, _component("drift"))
PUSHGATEWAY = Pod(NS, _component("pushgateway"))
WORKFLOW = Pod(
    NS,
    {
        "workflows.argoproj.io/workflow": "sentiment-retrain-x7k2p",
        "app.kubernetes.io/part-of": "sentimentops",
        "app.kubernetes.io/component": "training",
    },
)
CANARY = Pod(
    NS,
    {
        "workflows.argoproj.io/workflow": "canary-analysis-q2w8e",
        "app.kubernetes.io/part-of": "sentimentops",
        "app.kubernetes.io/component": "canary-analysis",
    },
)
CLIENT = Pod("sentiment-clients", {"app": "frontend"})
GIT_HOST = External("140.82.112.3")
STRAY = Pod(NS, {"app": "debug-shell"})
PREDICTOR = Pod(SERVING_NS, {"serving.kserve.io/inferenceservice": "sentiment", "component": "predictor"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
ALERTMANAGER = Pod("monitoring", {"app.kubernetes.io/name": "alertmanager"})
GRAFANA = Pod("monitoring", {"app.kubernetes.io/name": "grafana"})
GATEWAY = Pod("istio-system", {"app": "istio-ingressgateway"})
OTHER_NS = Pod("default", {"app": "anything"})
EVENTSOURCE = Pod(NS, {"eventsource-name": "sentiment-retrain"})
SENSOR = Pod(NS, {"sensor-name": "sentiment-retrain"})
EVENTBUS = Pod(NS, {"eventbus-name": "default"})
KUBE_DNS = Pod("kube-system", {"k8s-app": "kube-dns"})
GOOGLE_APIS = External("199.36.153.10")
INTERNET = External("8.8.8.8")
CLOUD_SQL = External("10.30.0.5")
KUBE_API = External("172.16.0.2")
METADATA = External("169.254.169.254")

CASES = [
    # (source, destination, port, expected, why)
    (DRIFT, PUSHGATEWAY, 9091, True, "drift pushes its metrics"),
    (DRIFT, GOOGLE_APIS, 443, True, "drift reads payload logs from GCS"),
    (DRIFT, METADATA, 80, True, "Workload Identity token"),
    (DRIFT, MLFLOW, 5000, False, "drift does not use MLflow"),
    (DRIFT, INTERNET, 443, False, "no internet"),
    (DRIFT, KUBE_API, 443, False, "drift does not talk to the API server"),
    (WORKFLOW, MLFLOW, 5000, True, "pipeline steps track to MLflow"),
    (WORKFLOW, KUBE_API, 443, True, "Argo's executor"),
    (WORKFLOW, PREDICTOR, 8080, False, "training never calls serving"),
    (WORKFLOW, PROMETHEUS, 9090, False, "training never queries Prometheus"),
    (WORKFLOW, INTERNET, 443, False, "no internet: the base model comes from the models bucket"),
    (WORKFLOW, GIT_HOST, 22, False, "training never pushes to git"),
    (CANARY, PROMETHEUS, 9090, True, "canary analysis queries Prometheus"),
    (CANARY, MLFLOW, 5000, True, "promote/rollback move registry aliases"),
    (CANARY, KUBE_API, 443, True, "reads the InferenceService revisions"),
    (CANARY, GIT_HOST, 22, True, "pushes the promote/rollback branch"),
    (CANARY, INTERNET, 443, False, "nothing else outside"),
    (STRAY, MLFLOW, 5000, False, "unlabelled pods are not MLflow clients"),
    (STRAY, INTERNET, 443, False, "default deny egress"),
    (STRAY, PUSHGATEWAY, 9091, False, "only drift pushes"),
    (OTHER_NS, MLFLOW, 5000, False, "MLflow is not reachable from other namespaces"),
    (OTHER_NS, PREDICTOR, 8012, False, "serving only through the gateway or listed clients"),
    (CLIENT, PREDICTOR, 8012, True, "a listed client namespace"),
    (PREDICTOR, MLFLOW, 5000, False, "serving never uses the registry"),
    (PREDICTOR, GOOGLE_APIS, 443, True, "model download, payload logs"),
    (PREDICTOR, INTERNET, 443, False, "no internet from serving"),
    (GATEWAY, PREDICTOR, 8012, True, "ingress gateway to queue-proxy"),
    (PROMETHEUS, PREDICTOR, 8080, True, "scrape sentiment_* metrics"),
    (PROMETHEUS, PUSHGATEWAY, 9091, True, "scrape pushed drift metrics"),
    (GRAFANA, PUSHGATEWAY, 9091, False, "only Prometheus scrapes"),
    (MLFLOW, CLOUD_SQL, 3307, True, "Cloud SQL Auth Proxy"),
    (MLFLOW, CLOUD_SQL, 5432, False, "only the proxy port"),
    (MLFLOW, INTERNET, 443, False, "no internet"),
    (PUSHGATEWAY, INTERNET, 443, False, "Pushgateway needs no egress"),
    (ALERTMANAGER, EVENTSOURCE, 12000, True, "drift alert webhook"),
    (GRAFANA, EVENTSOURCE, 12000, False, "only Alertmanager triggers retraining"),
    (EVENTSOURCE, EVENTBUS, 4222, True, "publish events"),
    (SENSOR, EVENTBUS, 4222, True, "subscribe to events"),
    (SENSOR, KUBE_API, 443, True, "create the Workflow"),
    (STRAY, EVENTBUS, 4222, False, "the bus is for Argo Events only"),
]


@pytest.fixture(scope="module")
def policies(rendered) -> list[dict]:
    return [d for d in documents(rendered["values-prod.yaml"]) if d["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize(
    ("source", "destination", "port", "expected", "why"), CASES, ids=[c[4] for c in CASES]
)
def test_connection(policies, source, destination, port: int, expected: bool, why: str) -> None:
    assert allowed(policies, source, destination, port) is expected


@pytest.mark.parametrize("pod", [MLFLOW, DRIFT, PUSHGATEWAY, WORKFLOW, CANARY, STRAY, PREDICTOR])
def test_dns_is_allowed_everywhere(policies, pod: Pod) -> None:
    assert allowed(policies, pod, KUBE_DNS, 53, "UDP")


def test_the_cases_depend_on_default_deny(policies) -> None:
    """Without the default-deny policies a pod no other policy selects is open to ingress again: the
    evaluator honours them, so the denials above are not an artefact of it."""
    assert not allowed(policies, OTHER_NS, STRAY, 8080)
    without = [p for p in policies if not p["metadata"]["name"].endswith("default-deny")]
    assert len(without) == len(policies) - 2  # platform and serving namespaces
    assert allowed(without, OTHER_NS, STRAY, 8080)
    assert not allowed(without, OTHER_NS, PREDICTOR, 8012)  # the serving policy still fences the predictor
