"""References: every name an object uses resolves as the cluster would resolve it."""

from __future__ import annotations

import re
from typing import Any

from tests.platform.checks.common import (
    _GS,
    ADDON_SERVICE_ACCOUNTS,
    Problems,
    _selects,
    _strings,
    eventsource_behind,
    secret_creators,
)
from tests.platform.checks.hops import service_ports
from tests.platform.deployment import Deployment, PodModel

_URL = re.compile(r"https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)")


def _exists_secret(dep: Deployment, ns: str, name: str) -> bool:
    return dep.find("Secret", name, ns) is not None or bool(secret_creators(dep, ns, name))


def _secret_keys(dep: Deployment, ns: str, name: str) -> set[str]:
    """Keys a Secret will hold: its data, or the secretKeys of the ExternalSecret that creates it."""
    secret = dep.find("Secret", name, ns)
    if secret is not None:
        return set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    return {d["secretKey"] for es in secret_creators(dep, ns, name) for d in es["spec"].get("data", [])}


def check_references(dep: Deployment) -> Problems:
    """Every name an object uses resolves as the cluster would resolve it."""
    problems: Problems = []
    pods = dep.pods()  # derived once: the loops below look them up per object
    for pod in pods:
        if pod.owner != "sentimentops":
            continue
        ns, spec = pod.namespace, pod.spec
        sa = spec.get("serviceAccountName", "default")
        if dep.find("ServiceAccount", sa, ns) is None and (ns, sa) not in ADDON_SERVICE_ACCOUNTS:
            problems.append(f"{pod.source}: ServiceAccount {ns}/{sa} does not exist")
        for vol in spec.get("volumes") or []:
            if "secret" in vol and not _exists_secret(dep, ns, vol["secret"]["secretName"]):
                problems.append(f"{pod.source}: Secret {ns}/{vol['secret']['secretName']} does not exist")
            if "configMap" in vol and dep.find("ConfigMap", vol["configMap"]["name"], ns) is None:
                problems.append(f"{pod.source}: ConfigMap {ns}/{vol['configMap']['name']} does not exist")
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not _exists_secret(dep, ns, ref["name"]):
                    problems.append(
                        f"{pod.source}: Secret {ns}/{ref['name']} (env {env['name']}) does not exist"
                    )
                elif ref and ref["key"] not in _secret_keys(dep, ns, ref["name"]):
                    problems.append(
                        f"{pod.source}: Secret {ns}/{ref['name']} has no key {ref['key']} (env {env['name']})"
                    )
    # Argo: git artifacts' ssh keys, template references and their parameters.
    for doc in dep.objects:
        kind, ns = doc.get("kind"), doc.get("metadata", {}).get("namespace")
        text = _strings(doc.get("spec", {}))
        if kind in ("WorkflowTemplate", "CronWorkflow"):
            for tmpl in (doc["spec"].get("workflowSpec", doc["spec"])).get("templates", []):
                for art in (tmpl.get("inputs") or {}).get("artifacts", []):
                    key = (art.get("git") or {}).get("sshPrivateKeySecret")
                    if key and not _exists_secret(dep, ns, key["name"]):
                        problems.append(
                            f"{kind}/{doc['metadata']['name']}: Secret {ns}/{key['name']} does not exist"
                        )
        ref_specs = []
        if kind == "CronWorkflow":
            ref_specs.append((doc["spec"]["workflowSpec"], ns))
        if kind == "Sensor":
            for trig in doc["spec"].get("triggers", []):
                t = trig.get("template", {})
                res = (t.get("k8s") or t.get("argoWorkflow") or {}).get("source", {}).get("resource")
                if res:
                    ref_specs.append((res.get("spec", {}), res.get("metadata", {}).get("namespace", ns)))
            for dependency in doc["spec"].get("dependencies", []):
                es = dep.find("EventSource", dependency["eventSourceName"], ns)
                if es is None:
                    problems.append(
                        f"Sensor/{doc['metadata']['name']}: EventSource {ns}/{dependency['eventSourceName']} does not exist"
                    )
                elif dependency["eventName"] not in (es["spec"].get("webhook") or {}):
                    problems.append(
                        f"Sensor/{doc['metadata']['name']}: EventSource has no event {dependency['eventName']}"
                    )
        if kind in ("Sensor", "EventSource"):
            bus = doc["spec"].get("eventBusName", "default")
            if dep.find("EventBus", bus, ns) is None:
                problems.append(f"{kind}/{doc['metadata']['name']}: EventBus {ns}/{bus} does not exist")
        for wf_spec, wf_ns in ref_specs:
            ref = wf_spec.get("workflowTemplateRef")
            if not ref:
                problems.append(
                    f"{kind}/{doc['metadata']['name']}: creates a Workflow without workflowTemplateRef (templateReferencing Strict refuses it)"
                )
                continue
            target = dep.find("WorkflowTemplate", ref["name"], wf_ns)
            if target is None:
                problems.append(
                    f"{kind}/{doc['metadata']['name']}: WorkflowTemplate {wf_ns}/{ref['name']} does not exist"
                )
                continue
            params = {p["name"]: p for p in target["spec"].get("arguments", {}).get("parameters", [])}
            given = {p["name"] for p in wf_spec.get("arguments", {}).get("parameters", [])}
            for name in sorted(given - set(params)):
                problems.append(
                    f"{kind}/{doc['metadata']['name']}: passes unknown parameter {name} to {ref['name']}"
                )
            for name, p in params.items():
                if "value" not in p and name not in given:
                    problems.append(
                        f"{kind}/{doc['metadata']['name']}: does not pass required parameter {name}"
                    )
        # In-cluster URLs: <service>.<namespace>.svc:<port>
        for s in text:
            for m in _URL.finditer(s):
                svc, svc_ns, port = m.group(1), m.group(2), int(m.group(3))
                ports = service_ports(dep, svc_ns, svc)
                if ports is None:
                    problems.append(
                        f"{kind}/{doc['metadata']['name']}: URL {m.group(0)}: no Service {svc_ns}/{svc}"
                    )
                elif port not in ports["ports"]:
                    problems.append(
                        f"{kind}/{doc['metadata']['name']}: URL {m.group(0)}: Service has no port {port}"
                    )
            for m in _GS.finditer(s):
                if m.group(1) not in dep.buckets:
                    problems.append(
                        f"{kind}/{doc['metadata']['name']}: bucket {m.group(1)} does not exist in {dep.tfvars['project_id']}"
                    )
        if kind == "RoleBinding":
            ref = doc["roleRef"]
            if dep.find(ref["kind"], ref["name"], ns if ref["kind"] == "Role" else None) is None:
                problems.append(
                    f"RoleBinding {ns}/{doc['metadata']['name']}: {ref['kind']} {ref['name']} does not exist"
                )
            for s in doc.get("subjects", []):
                if s.get("kind") == "ServiceAccount":
                    s_ns = s.get("namespace", ns)
                    if dep.find("ServiceAccount", s["name"], s_ns) is None:
                        problems.append(
                            f"RoleBinding {ns}/{doc['metadata']['name']}: ServiceAccount {s_ns}/{s['name']} does not exist"
                        )
        if kind == "Service":
            selector = doc["spec"].get("selector")
            if selector and not any(
                p.namespace == ns and all(p.labels.get(k) == v for k, v in selector.items()) for p in pods
            ):
                problems.append(f"Service {ns}/{doc['metadata']['name']}: selector {selector} matches no pod")
        if kind in ("PodMonitor", "ServiceMonitor"):
            selector = doc["spec"].get("selector")
            if kind == "PodMonitor":
                hits = [p for p in pods if p.namespace == ns and _selects(selector, p.labels)]
            else:
                hits = [
                    d
                    for d in dep.of_kind("Service")
                    if d["metadata"]["namespace"] == ns
                    and _selects(selector, d["metadata"].get("labels", {}))
                ]
            if not hits:
                problems.append(f"{kind} {ns}/{doc['metadata']['name']}: selector matches nothing in {ns}")
            elif kind == "ServiceMonitor":
                names = {p.get("name") for svc in hits for p in svc["spec"].get("ports", [])}
                for endpoint in doc["spec"].get("endpoints", []):
                    if endpoint.get("port") not in names:
                        problems.append(
                            f"ServiceMonitor {ns}/{doc['metadata']['name']}: no port named {endpoint.get('port')} "
                            f"on the Services it selects ({sorted(n for n in names if n)})"
                        )
        if kind == "PodDisruptionBudget":
            selector = doc["spec"].get("selector")
            if not any(p.namespace == ns and _selects(selector, p.labels) for p in pods):
                problems.append(
                    f"PodDisruptionBudget {ns}/{doc['metadata']['name']}: selector matches no pod"
                )
        if kind in WORKLOAD_IMAGE_KINDS:
            problems += _image_problems(dep, doc)
    problems += _alertmanager_webhooks(dep)
    problems += _image_users(dep)
    problems += _one_build_per_image(dep)
    problems += _image_pins(pods)
    return problems


def _one_build_per_image(dep: Deployment) -> Problems:
    """Every part of an environment runs the same build of each of our images (one tag or digest): a
    step, the drift job and MLflow on different builds would read and write each other's formats."""
    refs: dict[str, set[str]] = {}
    for doc in dep.objects:
        for text in _strings(doc.get("spec", {})):
            m = _OURS.match(text)
            if m:
                refs.setdefault(m.group("image"), set()).add(text[m.end() - 1 :])
    return [
        f"image {image} runs as {len(builds)} builds in {dep.env.name}: {sorted(builds)}"
        for image, builds in sorted(refs.items())
        if len(builds) > 1
    ]


WORKLOAD_IMAGE_KINDS = {"Deployment", "CronJob", "WorkflowTemplate", "ServingRuntime"}
_OURS = re.compile(
    r"^(?P<registry>[a-z0-9-]+-docker\.pkg\.dev/[a-z0-9-]+/[a-z0-9-]+)/(?P<image>train|predictor)[:@]"
)


# Third-party images that still run by tag: no digest for the pinned tag was found in an authoritative
# public source (docs/security.md, "Third-party images": each row says why and what would close it). Every
# other image is ours (our registry, immutable tags) or pinned `repository:tag@sha256:<digest>`; a new
# image by tag fails `_image_pins` until it is pinned by digest or listed here and in that table.
UNPINNED_THIRD_PARTY_IMAGES: frozenset[str] = frozenset(
    {
        "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1",  # chart values mlflow.cloudSqlProxy.image
        "quay.io/prometheus/pushgateway:v1.11.1",  # chart values pushgateway.image
        "quay.io/argoproj/workflow-controller:v3.7.11",  # argo-workflows chart 0.47.5 default
        "quay.io/argoproj/argocli:v3.7.11",  # argo-workflows chart 0.47.5 default (argo-server)
        "quay.io/argoproj/argoexec",  # set by the workflow controller (its own version) in every Argo pod
        "quay.io/argoproj/argo-events:v1.9.10",  # argo-events chart 2.4.22 default
    }
)
_DIGEST = re.compile(r"[^@\s]+:[^@/\s]+@sha256:[0-9a-f]{64}")


def _image_pins(pods: list[PodModel]) -> Problems:
    """Every image a pod runs is ours or pinned by tag and digest, apart from the documented allow-list."""
    problems = []
    for pod in pods:
        for c in pod.spec.get("containers", []) + pod.spec.get("initContainers", []):
            image = c.get("image")
            if image is None or _OURS.match(str(image)) or _DIGEST.fullmatch(str(image)):
                continue  # None: chosen by a controller (e.g. the EventBus's NATS), listed in docs/security.md
            if image not in UNPINNED_THIRD_PARTY_IMAGES:
                problems.append(
                    f"{pod.source}/{c.get('name')}: image {image} is neither ours nor pinned as "
                    "repository:tag@sha256:<digest> (docs/security.md, Third-party images)"
                )
    return problems


def _image_problems(dep: Deployment, doc: dict[str, Any]) -> Problems:
    problems = []
    for s in _strings(doc.get("spec", {})):
        m = _OURS.match(s)
        if m and m.group("registry") != dep.env.image_registry:
            problems.append(
                f"{doc['kind']}/{doc['metadata']['name']}: image {s} is not in {dep.env.name}'s registry {dep.env.image_registry}"
            )
    return problems


def _image_users(dep: Deployment) -> Problems:
    """Our images run as the user their Dockerfile creates (uid 10001): ssh, HOME and file ownership need
    a passwd entry."""
    from tests.conftest import REPO_ROOT

    problems = []
    uids = {}
    for name, image in (("Dockerfile.train", "train"), ("Dockerfile.serve", "predictor")):
        m = re.search(r"^USER\s+(\d+)", (REPO_ROOT / name).read_text(), re.M)
        if m:
            uids[image] = int(m.group(1))
    for pod in dep.pods():
        if pod.owner != "sentimentops":
            continue
        for c in pod.spec.get("containers", []):
            m = _OURS.match(str(c.get("image", "")))
            if not m:
                continue
            uid = (c.get("securityContext") or {}).get(
                "runAsUser", (pod.spec.get("securityContext") or {}).get("runAsUser")
            )
            if uid is not None and uid != uids.get(m.group("image")):
                problems.append(
                    f"{pod.source}/{c.get('name')}: runs as uid {uid}, the image's user is {uids.get(m.group('image'))}"
                )
    return problems


def _alertmanager_mounted_secrets() -> list[str]:
    """alertmanagerSpec.secrets Terraform passes to kube-prometheus-stack (mounted under
    /etc/alertmanager/secrets/<name>/)."""
    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "infra" / "terraform" / "modules" / "addons" / "main.tf").read_text()
    match = re.search(r"secrets\s*=\s*\[([^\]]*)\]", text)
    return re.findall(r'"([^"]+)"', match.group(1)) if match else []


def _alertmanager_secret_files(dep: Deployment, config: dict[str, Any], namespace: str) -> Problems:
    """Every *_file path of a receiver is a key of a Secret that Alertmanager mounts and something creates."""
    problems = []
    mounted = _alertmanager_mounted_secrets()
    for receiver in config.get("receivers", []):
        for kind_configs in receiver.values():
            if not isinstance(kind_configs, list):
                continue
            for cfg in kind_configs:
                for key, value in cfg.items():
                    if not key.endswith("_file"):
                        continue
                    m = re.fullmatch(r"/etc/alertmanager/secrets/([^/]+)/([^/]+)", str(value))
                    if not m:
                        problems.append(
                            f"Alertmanager {receiver['name']}: {key} {value} is not a mounted Secret's key"
                        )
                        continue
                    name, item = m.groups()
                    if name not in mounted:
                        problems.append(
                            f"Alertmanager {receiver['name']}: Secret {name} is not in alertmanagerSpec.secrets"
                        )
                    if not secret_creators(dep, namespace, name):
                        problems.append(
                            f"Alertmanager {receiver['name']}: nothing creates Secret {namespace}/{name}"
                        )
                    elif item not in _secret_keys(dep, namespace, name):
                        problems.append(f"Alertmanager {receiver['name']}: Secret {name} has no key {item}")
    return problems


def _alertmanager_webhooks(dep: Deployment) -> Problems:
    """Alertmanager's webhook receivers post to a Service and port that exist, on the EventSource's endpoint."""
    import yaml

    problems = []
    for secret in dep.of_kind("Secret"):
        data = (secret.get("data") or {}).get("alertmanager.yaml")
        if not data:
            continue
        import base64

        config = yaml.safe_load(base64.b64decode(data))
        problems += _alertmanager_secret_files(dep, config, secret["metadata"]["namespace"])
        for receiver in config.get("receivers", []):
            for hook in receiver.get("webhook_configs", []):
                url = hook["url"]
                m = re.match(
                    r"https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)(/\S*)?$", url
                )
                if not m:
                    problems.append(
                        f"Alertmanager receiver {receiver['name']}: {url} is not an in-cluster Service URL"
                    )
                    continue
                svc, ns, port, path = m.group(1), m.group(2), int(m.group(3)), m.group(4) or "/"
                ports = service_ports(dep, ns, svc)
                if ports is None or port not in ports["ports"]:
                    problems.append(
                        f"Alertmanager receiver {receiver['name']}: {url}: no Service {ns}/{svc} with port {port}"
                    )
                    continue
                source = eventsource_behind(dep, ns, svc)
                if source is not None and not any(
                    w.get("endpoint") == path for w in source["spec"].get("webhook", {}).values()
                ):
                    problems.append(
                        f"Alertmanager receiver {receiver['name']}: {url}: the EventSource has no endpoint {path}"
                    )
    return problems
