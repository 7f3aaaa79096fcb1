"""One environment's deployment, rendered the way the cluster would receive it.

Everything that lands in the cluster is rendered from the repository's real files with real tools: the
sentimentops chart with values-<env>.yaml (helm-python-sdk), the kustomizations Argo CD syncs
(``kubectl kustomize``), the upstream Argo charts with the values Terraform passes, and what Terraform
creates around them (namespaces and their PodSecurity levels, buckets, Workload Identity, bucket IAM),
read from the Terraform files and the environment's tfvars. ``pods()`` then derives every pod the
platform runs, including the ones controllers create (Argo's executor containers, Argo Events' pods,
the KServe predictor).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.topology import ENVIRONMENTS, Environment
from tests.conftest import REPO_ROOT, require_binary
from tests.infra.terraform_model import load_file
from tests.platform import upstream

CHART_DIR = REPO_ROOT / "helm" / "sentimentops"
TERRAFORM_DIR = REPO_ROOT / "infra" / "terraform"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod", "CronJob"}


@dataclass
class PodModel:
    """A pod as the cluster would run it, with where it comes from."""

    namespace: str
    labels: dict[str, str]
    spec: dict[str, Any]
    source: str  # "<Kind>/<name>[/<template>]"
    owner: str  # who renders it: sentimentops or the add-on's name
    # Containers injected by a controller whose settings are not in this repository (not checked here).
    injected_elsewhere: tuple[str, ...] = ()


@dataclass
class Deployment:
    """Everything one environment's cluster is given, plus the Terraform side."""

    env: Environment
    objects: list[dict[str, Any]]  # ours: chart + Argo CD sources, each with "_source"
    addon_objects: list[dict[str, Any]]  # rendered upstream charts
    namespace_levels: dict[str, str]
    tfvars: dict[str, Any]
    terraform_topology: dict[str, Any]
    buckets: set[str]  # bucket names of the environment
    argocd: list[dict[str, Any]]
    argocd_sources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for doc in self.objects + self.addon_objects:
            meta = doc.get("metadata", {})
            if doc.get("kind") == kind and meta.get("name") == name:
                if namespace is None or meta.get("namespace") == namespace:
                    return doc
        return None

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [d for d in self.objects + self.addon_objects if d.get("kind") in kinds]

    def executor_security_context(self) -> dict[str, Any]:
        """The securityContext Argo's controller gives the init/wait containers (its ConfigMap)."""
        for cm in self.addon_objects:
            if cm.get("kind") == "ConfigMap" and cm["metadata"]["name"].endswith(
                "workflow-controller-configmap"
            ):
                config = yaml.safe_load(cm.get("data", {}).get("config", "") or "{}") or {}
                return (config.get("executor") or {}).get("securityContext") or {}
        return {}

    def pods(self) -> list[PodModel]:
        return derive_pods(self)

    def copy(self) -> Deployment:
        return copy.deepcopy(self)


def _kustomize(path: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [require_binary("kubectl"), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed: {proc.stderr.strip()[-2000:]}")
    return [d for d in yaml.safe_load_all(proc.stdout) if isinstance(d, dict) and d]


def _render_our_chart(values_file: str, namespace: str) -> list[dict[str, Any]]:
    import helm_python as helm

    values = yaml.safe_load((CHART_DIR / values_file).read_text()) or {}
    with helm.Chart.load(str(CHART_DIR)) as chart:
        manifests = chart.render(values, name="sentimentops", namespace=namespace)
    return upstream.manifest_documents(manifests, namespace)


def render_application(app: dict[str, Any]) -> list[dict[str, Any]]:
    """What an Argo CD Application syncs: its source rendered as Argo CD would (Helm or kustomize)."""
    source = app["spec"]["source"]
    path = REPO_ROOT / source["path"]
    if not path.is_dir():
        raise FileNotFoundError(
            f"Application {app['metadata']['name']}: path {source['path']} does not exist"
        )
    namespace = app["spec"]["destination"]["namespace"]
    if "helm" in source or (path / "Chart.yaml").exists():
        helm_cfg = source.get("helm", {})
        files = helm_cfg.get("valueFiles") or ["values.yaml"]
        if len(files) != 1:
            raise ValueError("one values file per Application is supported")
        docs = _render_our_chart(files[0], namespace)
    else:
        docs = _kustomize(path)
        for doc in docs:
            doc.setdefault("metadata", {}).setdefault("namespace", namespace)
    for doc in docs:
        doc["_source"] = f"Application/{app['metadata']['name']} ({source['path']})"
    return docs


def _tfvars(env: Environment) -> dict[str, Any]:
    raw = load_file(TERRAFORM_DIR / "environments" / f"{env.name}.tfvars")
    values = {
        k: (v[0] if isinstance(v, list) and len(v) == 1 and not isinstance(v[0], dict) else v)
        for k, v in raw.items()
    }
    variables = {}
    for block in load_file(TERRAFORM_DIR / "variables.tf").get("variable", []):
        for name, body in block.items():
            if "default" in body:
                variables[name] = body["default"]
    return {**variables, **values}


def _bucket_purposes() -> set[str]:
    storage = load_file(TERRAFORM_DIR / "modules" / "storage" / "main.tf")
    for block in storage.get("locals", []):
        if "buckets" in block:
            return set(block["buckets"])
    raise ValueError("modules/storage declares no local.buckets")


# API groups each add-on release brings (its CRDs), by Terraform helm_release name.
RELEASE_API_GROUPS = {
    "kube_prometheus_stack": ["monitoring.coreos.com/v1", "monitoring.coreos.com/v1alpha1"],
    "external_secrets": ["external-secrets.io/v1beta1"],
    "kserve_crd": ["serving.kserve.io/v1beta1", "serving.kserve.io/v1alpha1"],
}


def installed_api_versions(release: str) -> list[str]:
    """The CRD API versions that exist when Terraform installs ``release``: those of the releases it
    depends_on (Helm renders capability-gated objects, e.g. ServiceMonitors, only when they exist)."""
    addons = load_file(TERRAFORM_DIR / "modules" / "addons" / "main.tf")
    for block in addons.get("resource", []):
        body = block.get("helm_release", {}).get(release)
        if body is None:
            continue
        depends = body.get("depends_on", [])
        depends = [d for item in depends for d in (item if isinstance(item, list) else [item])]
        names = {str(d).strip("${}").removeprefix("helm_release.") for d in depends}
        return sorted(v for name in names for v in RELEASE_API_GROUPS.get(name, []))
    raise KeyError(f"no helm_release {release} in modules/addons")


@cache
def _build(env_name: str) -> Deployment:
    env = ENVIRONMENTS[env_name]
    tfvars = _tfvars(env)
    argocd = _kustomize(REPO_ROOT / "k8s" / "argocd" / env.name)
    objects: list[dict[str, Any]] = []
    sources: dict[str, list[dict[str, Any]]] = {}
    for app in argocd:
        if app.get("kind") != "Application":
            continue
        rendered = render_application(app)
        sources[app["metadata"]["name"]] = rendered
        objects += rendered
    pins = upstream.versions()["charts"]
    addons = upstream.render_chart(
        "argo-workflows",
        "argo-workflows",
        "argo",
        upstream.render_tftpl("argo-workflows.yaml.tftpl", env),
        pins["argo_workflows"],
        installed_api_versions("argo_workflows"),
    )
    addons += upstream.render_chart(
        "argo-events",
        "argo-events",
        "argo-events",
        upstream.render_tftpl("argo-events.yaml.tftpl", env),
        pins["argo_events"],
        installed_api_versions("argo_events"),
    )
    levels = upstream.render_tftpl("namespaces.yaml.tftpl", env)
    topology_json = json.loads((TERRAFORM_DIR / "topology.json").read_text())
    buckets = {f"{tfvars['project_id']}-{purpose}" for purpose in _bucket_purposes()}
    return Deployment(
        env=env,
        objects=objects,
        addon_objects=addons,
        namespace_levels=levels,
        tfvars=tfvars,
        terraform_topology=topology_json,
        buckets=buckets,
        argocd=argocd,
        argocd_sources=sources,
    )


def build(env_name: str) -> Deployment:
    """The environment's deployment (rendered once per test session; callers get their own copy)."""
    return _build(env_name).copy()


# --- pods -------------------------------------------------------------------------------------------------


def _workload_pod(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    kind = doc["kind"]
    if kind == "CronJob":
        template = doc["spec"]["jobTemplate"]["spec"]["template"]
    elif kind == "Pod":
        template = {"metadata": doc["metadata"], "spec": doc["spec"]}
    else:
        template = doc["spec"]["template"]
    return template["spec"], dict(template.get("metadata", {}).get("labels", {}))


def _argo_pods(doc: dict[str, Any], executor_sc: dict[str, Any], owner: str) -> list[PodModel]:
    """The pods a WorkflowTemplate's templates run: main (container/script, or argoexec for resource
    templates) plus Argo's init and wait containers with the controller's executor settings."""
    spec = doc["spec"].get("workflowSpec", doc["spec"]) if doc["kind"] == "CronWorkflow" else doc["spec"]
    defaults = {p["name"]: p.get("value") for p in (spec.get("arguments") or {}).get("parameters", [])}
    pods = []
    base_labels = dict((spec.get("podMetadata") or {}).get("labels", {}))
    base_labels["workflows.argoproj.io/workflow"] = doc["metadata"]["name"]
    for tmpl in spec.get("templates", []):
        main = tmpl.get("container") or tmpl.get("script")
        if main is None and "resource" not in tmpl:
            continue  # steps/dag/suspend: no pod
        executor = {"name": "", "image": "quay.io/argoproj/argoexec", "securityContext": executor_sc}
        if main is None:
            main = {**executor, "name": "main"}
        else:
            main = {**main, "name": "main"}
            # The image a run gets unless the submitter overrides the parameter.
            ref = re.fullmatch(r"\{\{workflow\.parameters\.([\w-]+)\}\}", str(main.get("image", "")))
            if ref and defaults.get(ref.group(1)):
                main["image"] = defaults[ref.group(1)]
        pod_spec = {
            "serviceAccountName": tmpl.get("serviceAccountName")
            or spec.get("serviceAccountName")
            or "default",
            "securityContext": tmpl.get("securityContext") or spec.get("securityContext") or {},
            "initContainers": [{**executor, "name": "init"}],
            "containers": [{**executor, "name": "wait"}, main],
            "volumes": list(spec.get("volumes") or []) + list(tmpl.get("volumes") or []),
            "nodeSelector": tmpl.get("nodeSelector") or spec.get("nodeSelector") or {},
            "tolerations": tmpl.get("tolerations") or spec.get("tolerations") or [],
        }
        labels = {**base_labels, **((tmpl.get("metadata") or {}).get("labels") or {})}
        pods.append(
            PodModel(
                doc["metadata"]["namespace"],
                labels,
                pod_spec,
                f"{doc['kind']}/{doc['metadata']['name']}/{tmpl['name']}",
                owner,
            )
        )
    return pods


def _events_pods(doc: dict[str, Any]) -> list[PodModel]:
    """The pods Argo Events' controller creates for an EventSource, Sensor or EventBus."""
    kind, name, ns = doc["kind"], doc["metadata"]["name"], doc["metadata"]["namespace"]
    spec = doc["spec"]
    if kind in ("EventSource", "Sensor"):
        template = spec.get("template") or {}
        container = {**(template.get("container") or {}), "name": "main"}
        label = {"EventSource": "eventsource-name", "Sensor": "sensor-name"}[kind]
        pod = {
            "serviceAccountName": template.get("serviceAccountName") or "default",
            "securityContext": template.get("securityContext") or {},
            "containers": [container],
            "volumes": template.get("volumes") or [],
            "nodeSelector": template.get("nodeSelector") or {},
            "tolerations": template.get("tolerations") or [],
        }
        return [PodModel(ns, {label: name}, pod, f"{kind}/{name}", "sentimentops")]
    js = spec.get("jetstream") or {}
    containers = [
        {**(js.get(key) or {}), "name": cname}
        for key, cname in (
            ("containerTemplate", "main"),
            ("reloaderContainerTemplate", "reloader"),
            ("metricsContainerTemplate", "metrics"),
        )
    ]
    pod = {
        "serviceAccountName": js.get("serviceAccountName") or "default",
        "securityContext": js.get("securityContext") or {},
        "containers": containers,
        "volumes": [],
    }
    return [PodModel(ns, {"eventbus-name": name}, pod, f"EventBus/{name}", "sentimentops")]


def _predictor_pods(dep: Deployment, doc: dict[str, Any]) -> list[PodModel]:
    """The InferenceService's predictor pod: the runtime's container merged with the model spec."""
    ns, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
    predictor = doc["spec"]["predictor"]
    model = predictor.get("model", {})
    runtime = dep.find("ServingRuntime", model.get("runtime", ""), ns)
    container: dict[str, Any] = {"name": "kserve-container"}
    if runtime is not None:
        container.update(copy.deepcopy(runtime["spec"]["containers"][0]))
    for key, value in model.items():
        if key in ("modelFormat", "runtime", "storageUri", "protocolVersion"):
            continue
        if key == "env":
            container["env"] = list(container.get("env", [])) + list(value)
        else:
            container[key] = value
    pod = {
        "serviceAccountName": predictor.get("serviceAccountName") or "default",
        "securityContext": predictor.get("securityContext") or {},
        "containers": [container],
        "volumes": predictor.get("volumes") or [],
        "nodeSelector": predictor.get("nodeSelector") or {},
        "tolerations": predictor.get("tolerations") or [],
    }
    labels = {"serving.kserve.io/inferenceservice": name, "component": "predictor"}
    return [
        PodModel(
            ns,
            labels,
            pod,
            f"InferenceService/{name}",
            "sentimentops",
            injected_elsewhere=("storage-initializer (KServe)", "queue-proxy (Knative)"),
        )
    ]


def derive_pods(dep: Deployment) -> list[PodModel]:
    executor_sc = dep.executor_security_context()
    pods: list[PodModel] = []
    for doc, owner in [(d, "sentimentops") for d in dep.objects] + [
        (d, d.get("_source", "addon").split(" ")[0]) for d in dep.addon_objects
    ]:
        kind = doc.get("kind")
        if kind in WORKLOAD_KINDS:
            spec, labels = _workload_pod(doc)
            pods.append(
                PodModel(
                    doc["metadata"]["namespace"], labels, spec, f"{kind}/{doc['metadata']['name']}", owner
                )
            )
        elif kind in ("WorkflowTemplate", "CronWorkflow", "Workflow"):
            if kind == "CronWorkflow" and "workflowTemplateRef" in doc["spec"].get("workflowSpec", {}):
                continue  # runs the referenced template's pods
            pods += _argo_pods(doc, executor_sc, owner)
        elif kind in ("EventSource", "Sensor", "EventBus"):
            pods += _events_pods(doc)
        elif kind == "InferenceService":
            pods += _predictor_pods(dep, doc)
    return pods
