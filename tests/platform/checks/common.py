"""Helpers every check uses: where a workload's pods are, what they are labelled, names resolved."""

from __future__ import annotations

import re
from typing import Any

from infra.topology import EXTERNALS, Workload, workload
from tests.infra import netpol
from tests.platform.deployment import Deployment, PodModel

Problems = list[str]

# Objects that exist in every environment without being in this repository: what the add-ons create.
ADDON_SERVICES = {
    ("monitoring", "prometheus-operated"): {9090},
    ("monitoring", "alertmanager-operated"): {9093},
}
ADDON_SERVICE_ACCOUNTS = {
    ("sentimentops", "default"),
    ("sentiment-prod", "default"),
    ("sentiment-staging", "default"),
}


# --- helpers ------------------------------------------------------------------------------------------


def _ns(dep: Deployment, w: Workload) -> str:
    return w.ns(dep.env)


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    return netpol.selects(selector, labels)


def workload_pods(dep: Deployment, w: Workload) -> list[PodModel]:
    """The rendered pods of a workload: created by its object, in its namespace."""
    ns = _ns(dep, w)
    prefix = f"{w.kind}/{w.object}"
    return [
        p
        for p in dep.pods()
        if p.namespace == ns and (p.source == prefix or p.source.startswith(prefix + "/"))
    ]


def _policies(dep: Deployment) -> list[dict[str, Any]]:
    return [d for d in dep.objects if d.get("kind") == "NetworkPolicy"]


def _endpoint(dep: Deployment, name: str) -> netpol.Pod | netpol.External:
    if name in EXTERNALS:
        return netpol.External(EXTERNALS[name].sample_ip)
    w = workload(name)
    return netpol.Pod(_ns(dep, w), _rendered_labels(dep, w))


def eventsource_behind(dep: Deployment, namespace: str, service: str) -> dict[str, Any] | None:
    """The EventSource whose Service Argo Events names ``service`` (<name>-eventsource-svc), if any."""
    for es in dep.of_kind("EventSource"):
        if (
            es["metadata"].get("namespace") == namespace
            and f"{es['metadata']['name']}-eventsource-svc" == service
        ):
            return es
    return None


def secret_creators(dep: Deployment, namespace: str, name: str) -> list[dict[str, Any]]:
    """The ExternalSecrets that create Secret ``namespace/name``."""
    return [
        es
        for es in dep.of_kind("ExternalSecret")
        if es["metadata"].get("namespace") == namespace
        and (es["spec"].get("target") or {}).get("name", es["metadata"]["name"]) == name
    ]


def _rendered_labels(dep: Deployment, w: Workload) -> dict[str, str]:
    """The labels the workload's pods really carry (the topology's for add-on workloads)."""
    pods = workload_pods(dep, w)
    if pods:
        return pods[0].labels
    return dict(w.pod_labels)


# --- hop checks ---------------------------------------------------------------------------------------


_GS = re.compile(r"gs://([a-z0-9][-a-z0-9_.]*[a-z0-9])")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _env_of(pod: PodModel) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for c in pod.spec.get("containers", []) for e in c.get("env") or []}


def _template_defaults(dep: Deployment, name: str) -> dict[str, str]:
    wt = dep.find("WorkflowTemplate", name, "sentimentops")
    if wt is None:
        return {}
    return {p["name"]: p.get("value", "") for p in wt["spec"].get("arguments", {}).get("parameters", [])}


def _rules(dep: Deployment) -> list[dict[str, Any]]:
    return [r for pr in dep.of_kind("PrometheusRule") for g in pr["spec"]["groups"] for r in g["rules"]]
