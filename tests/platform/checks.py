"""The checks the flow tests run over a rendered deployment. Each returns a list of problems (empty = pass),
so the same function serves the flow table, the per-environment tests and the mutation tests that prove
each check can fail.

Hop checks (one connection of a user flow): ``exists``, ``identity``, ``network``, ``rbac``, ``iam``,
``podsecurity``, ``fits``. Deployment-wide checks: ``references``, ``schemas``, ``timings``,
``alert_selectors``, ``argocd``, ``terraform_environment``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema

from infra.topology import EXTERNALS, FORBIDDEN, WORKLOADS, Hop, Workload, workload
from tests.infra import netpol
from tests.platform.deployment import Deployment, PodModel
from tests.platform.pod_security import LEVELS, violations
from tests.platform.upstream import argo_workflows_schemas, versions

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


def _rendered_labels(dep: Deployment, w: Workload) -> dict[str, str]:
    """The labels the workload's pods really carry (the topology's for add-on workloads)."""
    pods = workload_pods(dep, w)
    if pods:
        return pods[0].labels
    return dict(w.pod_labels)


# --- hop checks ---------------------------------------------------------------------------------------


def check_exists(dep: Deployment, w: Workload) -> Problems:
    """The workload's object is rendered in the namespace its callers expect, and its pods carry the
    labels the topology (and so every NetworkPolicy) selects on."""
    if w.owner != "sentimentops" and w.owner not in ("argo-workflows", "argo-events"):
        return []  # add-ons and users outside this repository: see docs/operations.md
    ns = _ns(dep, w)
    if dep.find(w.kind, w.object, ns) is None:
        where = [
            d["metadata"].get("namespace") for d in dep.of_kind(w.kind) if d["metadata"]["name"] == w.object
        ]
        return [
            f"{w.name}: {w.kind}/{w.object} is not rendered in namespace {ns} (found in {where or 'none'})"
        ]
    problems = []
    for pod in workload_pods(dep, w):
        missing = {k: v for k, v in w.pod_labels.items() if pod.labels.get(k) != v}
        if missing:
            problems.append(f"{w.name}: pods of {pod.source} lack the topology's labels {missing}")
    if not workload_pods(dep, w):
        problems.append(f"{w.name}: {w.kind}/{w.object} runs no pod")
    return problems


def check_service(dep: Deployment, hop: Hop) -> Problems:
    """The callee is reachable by name: its Service exists in its namespace and exposes the port."""
    if hop.callee in EXTERNALS:
        return []
    w = workload(hop.callee)
    if w.service is None:
        return []  # reached by pod (EventBus client, scrapes) or through the Knative route
    ns = _ns(dep, w)
    ports = service_ports(dep, ns, w.service)
    if ports is None:
        return [f"{hop.callee}: Service {ns}/{w.service} does not exist"]
    if hop.port not in ports["targets"] and hop.port not in ports["ports"]:
        return [
            f"{hop.callee}: Service {ns}/{w.service} does not expose port {hop.port} ({sorted(ports['ports'])})"
        ]
    return []


def service_ports(dep: Deployment, namespace: str, name: str) -> dict[str, set[int]] | None:
    """Ports and target ports of a Service, including those controllers create from our objects."""
    if (namespace, name) in ADDON_SERVICES:
        ports = ADDON_SERVICES[(namespace, name)]
        return {"ports": set(ports), "targets": set(ports)}
    svc = dep.find("Service", name, namespace)
    if svc is not None:
        spec_ports = svc["spec"].get("ports", [])
        return {
            "ports": {int(p["port"]) for p in spec_ports},
            "targets": {
                int(p.get("targetPort", p["port"]))
                for p in spec_ports
                if str(p.get("targetPort", "0")).isdigit()
            },
        }
    for es in dep.of_kind("EventSource"):
        if (
            es["metadata"].get("namespace") == namespace
            and f"{es['metadata']['name']}-eventsource-svc" == name
        ):
            spec_ports = (es["spec"].get("service") or {}).get("ports", [])
            return {
                "ports": {int(p["port"]) for p in spec_ports},
                "targets": {int(p.get("targetPort", p["port"])) for p in spec_ports},
            }
    return None


def check_network(dep: Deployment, hop: Hop) -> Problems:
    """A NetworkPolicy lets the hop through, and default deny still blocks an unlisted neighbour."""
    policies = _policies(dep)
    caller = workload(hop.caller)
    source = netpol.Pod(_ns(dep, caller), _rendered_labels(dep, caller))
    if hop.callee in EXTERNALS:
        destination: netpol.Pod | netpol.External = netpol.External(EXTERNALS[hop.callee].sample_ip)
    else:
        callee = workload(hop.callee)
        destination = netpol.Pod(_ns(dep, callee), _rendered_labels(dep, callee))
    problems = []
    if not netpol.allowed(policies, source, destination, hop.port):
        problems.append(f"{hop.caller} -> {hop.callee}:{hop.port} is blocked by the NetworkPolicies")
    neighbour = netpol.Pod(source.namespace, {"app": "unlisted-neighbour"})
    stranger = netpol.Pod("unlisted-namespace", {"app": "unlisted-neighbour"})
    isolated = isinstance(destination, netpol.External) or any(
        p["metadata"]["namespace"] == destination.namespace for p in policies
    )
    if isolated:
        # A namespace-wide allow is the design for callers outside our namespaces (the ingress gateway,
        # listed client namespaces); inside ours, an allow names pods, so a neighbour must stay out.
        for other in (neighbour, stranger) if caller.owner == "sentimentops" else (stranger,):
            if isinstance(destination, netpol.External) and other is stranger:
                continue  # egress of a namespace we do not manage
            if isinstance(destination, netpol.External):
                open_ = netpol.allowed(policies, other, destination, hop.port)
            else:  # the callee's own ingress rules must keep the neighbour out, whatever its egress
                open_ = netpol._allowed(policies, destination, other, hop.port, "TCP", "ingress")
            if open_:
                problems.append(
                    f"an unlisted pod in {other.namespace} reaches {hop.callee}:{hop.port}: default deny is missing"
                )
    return problems


def check_forbidden(dep: Deployment) -> Problems:
    """Connections the topology says must stay closed."""
    policies = _policies(dep)
    problems = []
    for hop in FORBIDDEN:
        caller = workload(hop.caller)
        source = netpol.Pod(_ns(dep, caller), _rendered_labels(dep, caller))
        if netpol.allowed(policies, source, _endpoint(dep, hop.callee), hop.port):
            problems.append(f"{hop.caller} -> {hop.callee}:{hop.port} is open ({hop.purpose})")
    return problems


def _effective_api(dep: Deployment, namespace: str, sa: str) -> set[tuple[str, str, str, str]]:
    """(namespace, apiGroup, resource, verb) the ServiceAccount may use, through Roles it is bound to."""
    granted = set()
    for rb in dep.of_kind("RoleBinding"):
        if not any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == sa
            and s.get("namespace", rb["metadata"]["namespace"]) == namespace
            for s in rb.get("subjects", [])
        ):
            continue
        rb_ns = rb["metadata"]["namespace"]
        ref = rb["roleRef"]
        role = dep.find(ref["kind"], ref["name"], rb_ns if ref["kind"] == "Role" else None)
        if role is None:
            continue
        for rule in role.get("rules", []):
            for group in rule.get("apiGroups", []):
                for resource in rule.get("resources", []):
                    for verb in rule.get("verbs", []):
                        granted.add((rb_ns, group, resource, verb))
    for crb in dep.of_kind("ClusterRoleBinding"):
        for s in crb.get("subjects", []):
            if s.get("kind") == "ServiceAccount" and s.get("name") == sa and s.get("namespace") == namespace:
                granted.add(("*", "*", f"ClusterRole/{crb['roleRef']['name']}", "*"))
    return granted


def check_rbac(dep: Deployment, w: Workload) -> Problems:
    """The workload's ServiceAccount may use exactly the API verbs the topology lists, nothing more."""
    if w.owner != "sentimentops" or w.service_account is None:
        return []
    ns = _ns(dep, w)
    wanted = {
        (g.namespace.format(platform=ns, serving=dep.env.serving_namespace), g.api_group, g.resource, verb)
        for g in w.api
        for verb in g.verbs
    }
    wanted = {(n.replace("{platform}", ns), *rest) for n, *rest in wanted}
    granted = _effective_api(dep, ns, w.service_account)
    problems = []
    for missing in sorted(wanted - granted):
        problems.append(
            f"{w.name}: RBAC does not allow {missing[3]} {missing[2]} ({missing[1]}) in {missing[0]}"
        )
    for extra in sorted(granted - wanted):
        problems.append(
            f"{w.name}: RBAC allows more than needed: {extra[3]} {extra[2]} ({extra[1]}) in {extra[0]}"
        )
    return problems


def check_identity(dep: Deployment, w: Workload) -> Problems:
    """Pods run as the topology's KSA; the KSA exists, maps to the right Google SA, and Terraform binds
    exactly that namespace/KSA pair to it (Workload Identity)."""
    if w.owner != "sentimentops":
        return []
    ns = _ns(dep, w)
    problems = []
    for pod in workload_pods(dep, w):
        sa = pod.spec.get("serviceAccountName", "default")
        if w.service_account is not None and sa != w.service_account:
            problems.append(f"{w.name}: {pod.source} runs as {ns}/{sa}, not {w.service_account}")
    if w.service_account is None:
        return problems
    ksa = dep.find("ServiceAccount", w.service_account, ns)
    if ksa is None:
        return problems + [f"{w.name}: ServiceAccount {ns}/{w.service_account} does not exist"]
    annotation = (ksa["metadata"].get("annotations") or {}).get("iam.gke.io/gcp-service-account")
    wanted = dep.env.google_sa(w.google_sa) if w.google_sa else None
    if annotation != wanted:
        problems.append(f"{w.name}: {ns}/{w.service_account} maps to Google SA {annotation}, not {wanted}")
    bindings = dep.terraform_topology["workload_identities"]
    if w.google_sa:
        bound = bindings.get(w.name)
        if bound is None:
            problems.append(f"{w.name}: Terraform creates no Google SA / Workload Identity binding")
        else:
            bound_ns = bound["namespace"].replace("{serving}", dep.tfvars["serving_namespace"])
            if (bound_ns, bound["ksa"], bound["gsa"]) != (ns, w.service_account, w.google_sa):
                problems.append(
                    f"{w.name}: Terraform binds {bound_ns}/{bound['ksa']} -> {bound['gsa']}, "
                    f"the pods run as {ns}/{w.service_account} -> {w.google_sa}"
                )
    elif w.name in bindings:
        problems.append(f"{w.name}: Terraform gives a Google SA to a workload that needs none")
    return problems


_GS = re.compile(r"gs://([a-z0-9][-a-z0-9_.]*[a-z0-9])")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def workload_buckets(dep: Deployment, w: Workload) -> set[str]:
    """Buckets a workload's objects name (env, args, parameter defaults, storageUri)."""
    ns = _ns(dep, w)
    obj = dep.find(w.kind, w.object, ns)
    if obj is None:
        return set()
    return {m.group(1) for s in _strings(obj.get("spec", {})) for m in _GS.finditer(s)}


def check_iam(dep: Deployment, w: Workload) -> Problems:
    """Terraform grants the workload's Google SA exactly the topology's bucket roles, on buckets that
    exist, and every bucket its manifests name is one of them."""
    if w.google_sa is None or w.owner != "sentimentops":
        return []
    grants = {
        (g["bucket"], g["role"], g["prefix"])
        for g in dep.terraform_topology["bucket_grants"].values()
        if g["workload"] == w.name
    }
    wanted = {(g.bucket, g.role, g.prefix) for g in w.buckets}
    problems = [
        f"{w.name}: Terraform does not grant {r} on {b}" + (f" under {p}" if p else "")
        for b, r, p in sorted(wanted - grants, key=str)
    ]
    problems += [
        f"{w.name}: Terraform grants {r} on {b} beyond the topology"
        for b, r, _ in sorted(grants - wanted, key=str)
    ]
    project = dep.tfvars["project_id"]
    purposes = {b for b, _, _ in grants}
    for bucket in sorted(workload_buckets(dep, w)):
        if bucket not in dep.buckets:
            problems.append(f"{w.name}: names bucket {bucket}, which Terraform does not create in {project}")
        elif bucket.removeprefix(f"{project}-") not in purposes:
            problems.append(f"{w.name}: names bucket {bucket} but has no role on it")
    return problems


def check_podsecurity(dep: Deployment, w: Workload) -> Problems:
    """Every pod of the workload passes its namespace's enforced PodSecurity level; ours pass
    "restricted" wherever they run."""
    problems = []
    for pod in workload_pods(dep, w):
        problems += pod_security_problems(dep, pod)
    return problems


def pod_security_problems(dep: Deployment, pod: PodModel) -> Problems:
    level = dep.namespace_levels.get(pod.namespace)
    if level is None:
        return [f"{pod.source}: namespace {pod.namespace} is not created by Terraform (no PodSecurity level)"]
    if level not in LEVELS:
        return [f"namespace {pod.namespace}: unknown PodSecurity level {level!r}"]
    levels = {level, "restricted"} if pod.owner == "sentimentops" else {level}
    found = []
    for lvl in sorted(levels):
        found += [f"{pod.source} ({pod.namespace}, {lvl}): {v}" for v in violations(pod.spec, lvl)]
    return found


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_MEM = {
    "": 1 / 2**20,
    "Ki": 1 / 1024,
    "Mi": 1,
    "Gi": 1024,
    "Ti": 1024**2,
    "K": 1e3 / 2**20,
    "M": 1e6 / 2**20,
    "G": 1e9 / 2**20,
}


def cpu_millis(value: Any) -> float:
    text = str(value)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def mem_mib(value: Any) -> float:
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _MEM:
        raise ValueError(f"memory quantity {value!r}")
    return float(match.group(1)) * _MEM[match.group(2)]


def pod_requests(spec: dict[str, Any]) -> tuple[float, float, int]:
    """Effective (millicores, MiB, GPUs) a pod requests: sum of containers vs the largest init container."""

    def one(c: dict[str, Any]) -> tuple[float, float, int]:
        req = (c.get("resources") or {}).get("requests") or {}
        return cpu_millis(req.get("cpu", 0)), mem_mib(req.get("memory", 0)), int(req.get("nvidia.com/gpu", 0))

    main = [one(c) for c in spec.get("containers", [])]
    init = [one(c) for c in spec.get("initContainers", [])]
    totals = tuple(sum(x[i] for x in main) for i in range(3))
    return tuple(max([totals[i]] + [x[i] for x in init]) for i in range(3))  # type: ignore[return-value]


def pod_fit_problems(dep: Deployment, pod: PodModel) -> Problems:
    env = dep.env
    selector = pod.spec.get("nodeSelector") or {}
    accelerator = selector.get("cloud.google.com/gke-accelerator")
    cpu, mem, gpus = pod_requests(pod.spec)
    problems = []
    if accelerator or gpus:
        pool = env.gpu_pool
        if accelerator != pool.gpu:
            problems.append(
                f"{pod.source}: selects accelerator {accelerator}, {env.name}'s GPU pool has {pool.gpu}"
            )
        if gpus > dep.tfvars.get("gpu_count", 1):
            problems.append(
                f"{pod.source}: requests {gpus} GPUs, nodes have {dep.tfvars.get('gpu_count', 1)}"
            )
        tolerated = {t.get("key") for t in pod.spec.get("tolerations") or []}
        if "nvidia.com/gpu" not in tolerated:
            problems.append(f"{pod.source}: does not tolerate the GPU pool's nvidia.com/gpu taint")
    else:
        pool = env.cpu_pool
    room_cpu, room_mem = pool.room()
    if cpu > room_cpu or mem > room_mem:
        problems.append(
            f"{pod.source}: requests {cpu:.0f}m CPU / {mem:.0f} MiB, a {pool.machine_type} node of "
            f"{env.name}'s {pool.name} pool leaves {room_cpu}m / {room_mem} MiB"
        )
    for c in pod.spec.get("containers", []):
        limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if limit is not None and mem_mib(limit) > room_mem:
            problems.append(
                f"{pod.source}/{c.get('name')}: memory limit {limit} exceeds a {pool.machine_type} node"
            )
    return problems


def check_fits(dep: Deployment, w: Workload) -> Problems:
    """The workload's pods fit one node of the environment's pool (the GPU type included)."""
    problems = []
    for pod in workload_pods(dep, w):
        problems += pod_fit_problems(dep, pod)
    return problems


HOP_CHECKS: dict[str, Callable[[Deployment, Hop], Problems]] = {
    "exists": lambda d, h: (
        check_exists(d, workload(h.caller))
        + ([] if h.callee in EXTERNALS else check_exists(d, workload(h.callee)))
        + check_service(d, h)
    ),
    "identity": lambda d, h: check_identity(d, workload(h.caller)),
    "network": check_network,
    "rbac": lambda d, h: check_rbac(d, workload(h.caller)),
    "iam": lambda d, h: check_iam(d, workload(h.caller)),
    "podsecurity": lambda d, h: (
        check_podsecurity(d, workload(h.caller))
        + ([] if h.callee in EXTERNALS else check_podsecurity(d, workload(h.callee)))
    ),
    "fits": lambda d, h: (
        check_fits(d, workload(h.caller))
        + ([] if h.callee in EXTERNALS else check_fits(d, workload(h.callee)))
    ),
}


def hop_problems(dep: Deployment, hop: Hop) -> dict[str, Problems]:
    return {name: check(dep, hop) for name, check in HOP_CHECKS.items()}


# --- deployment-wide checks ---------------------------------------------------------------------------

_URL = re.compile(r"https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)")


def _exists_secret(dep: Deployment, ns: str, name: str) -> bool:
    if dep.find("Secret", name, ns) is not None:
        return True
    return any(
        es["metadata"].get("namespace") == ns
        and (es["spec"].get("target") or {}).get("name", es["metadata"]["name"]) == name
        for es in dep.of_kind("ExternalSecret")
    )


def _secret_keys(dep: Deployment, ns: str, name: str) -> set[str]:
    """Keys a Secret will hold: its data, or the secretKeys of the ExternalSecret that creates it."""
    secret = dep.find("Secret", name, ns)
    if secret is not None:
        return set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    return {
        d["secretKey"]
        for es in dep.of_kind("ExternalSecret")
        if es["metadata"].get("namespace") == ns
        and (es["spec"].get("target") or {}).get("name", es["metadata"]["name"]) == name
        for d in es["spec"].get("data", [])
    }


def check_references(dep: Deployment) -> Problems:
    """Every name an object uses resolves as the cluster would resolve it."""
    problems: Problems = []
    for pod in dep.pods():
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
                p.namespace == ns and all(p.labels.get(k) == v for k, v in selector.items())
                for p in dep.pods()
            ):
                problems.append(f"Service {ns}/{doc['metadata']['name']}: selector {selector} matches no pod")
        if kind in ("PodMonitor", "ServiceMonitor"):
            selector = doc["spec"].get("selector")
            if kind == "PodMonitor":
                hits = [p for p in dep.pods() if p.namespace == ns and _selects(selector, p.labels)]
            else:
                hits = [
                    d
                    for d in dep.of_kind("Service")
                    if d["metadata"]["namespace"] == ns
                    and _selects(selector, d["metadata"].get("labels", {}))
                ]
            if not hits:
                problems.append(f"{kind} {ns}/{doc['metadata']['name']}: selector matches nothing in {ns}")
        if kind in WORKLOAD_IMAGE_KINDS:
            problems += _image_problems(dep, doc)
    problems += _alertmanager_webhooks(dep)
    problems += _image_users(dep)
    return problems


WORKLOAD_IMAGE_KINDS = {"Deployment", "CronJob", "WorkflowTemplate", "ServingRuntime"}
_OURS = re.compile(
    r"^(?P<registry>[a-z0-9-]+-docker\.pkg\.dev/[a-z0-9-]+/[a-z0-9-]+)/(?P<image>train|predictor)[:@]"
)


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
                    sources = [
                        es
                        for es in dep.of_kind("ExternalSecret")
                        if es["metadata"]["namespace"] == namespace and es["spec"]["target"]["name"] == name
                    ]
                    if not sources:
                        problems.append(
                            f"Alertmanager {receiver['name']}: nothing creates Secret {namespace}/{name}"
                        )
                    elif item not in {d["secretKey"] for d in sources[0]["spec"].get("data", [])}:
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
                sources = [
                    es
                    for es in dep.of_kind("EventSource")
                    if es["metadata"]["namespace"] == ns
                    and f"{es['metadata']['name']}-eventsource-svc" == svc
                ]
                if sources and not any(
                    w.get("endpoint") == path for w in sources[0]["spec"].get("webhook", {}).values()
                ):
                    problems.append(
                        f"Alertmanager receiver {receiver['name']}: {url}: the EventSource has no endpoint {path}"
                    )
    return problems


def check_schemas(dep: Deployment) -> Problems:
    """Argo Workflows objects (and the Workflows the Sensor creates) validate against the CRDs of exactly
    the pinned Argo version, unknown fields rejected as the API server's strict validation does."""
    schemas = argo_workflows_schemas()
    problems = []
    docs = [
        d for d in dep.objects if d.get("apiVersion", "").startswith("argoproj.io/") and d["kind"] in schemas
    ]
    for sensor in dep.of_kind("Sensor"):
        for trig in sensor["spec"].get("triggers", []):
            t = trig.get("template", {})
            res = (t.get("k8s") or t.get("argoWorkflow") or {}).get("source", {}).get("resource")
            if res and res.get("kind") in schemas:
                docs.append({**res, "metadata": {**res.get("metadata", {}), "name": "from-sensor"}})
    for doc in docs:
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        validator = jsonschema.Draft7Validator(schemas[doc["kind"]])
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path))[:5]:
            where = "/".join(str(p) for p in error.path)
            problems.append(
                f"{doc['kind']}/{doc['metadata'].get('name')}: Argo {versions()['apps']['argo_workflows']} "
                f"rejects {where or '(root)'}: {error.message[:200]}"
            )
    return problems


_DURATION = re.compile(r"^(\d+)([smhd])$")


def seconds(text: str) -> int:
    m = _DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"duration {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def cron_period_seconds(schedule: str) -> int:
    """The longest gap between runs of a 5-field cron schedule (the forms the platform uses)."""
    minute, hour, dom, month, dow = schedule.split()
    if hour == "*" and dom == month == dow == "*" and minute.isdigit():
        return 3600
    if hour.startswith("*/") and dom == month == dow == "*":
        return int(hour[2:]) * 3600
    if hour.isdigit() and dom == month == "*" and dow == "*":
        return 86400
    if hour.isdigit() and dom == month == "*" and dow != "*":
        return 7 * 86400
    raise ValueError(f"cron schedule {schedule!r}: period not understood")


def check_timings(dep: Deployment) -> Problems:
    """Durations that must fit inside each other: a CronJob finishes before its next run, the stale alert
    waits longer than a run takes, the drift window covers the gap between runs, the retraining workflow's
    deadline covers its steps, the canary analysis's retries fit its deadline."""
    problems = []
    rules = _rules(dep)
    stale = [r for r in rules if r.get("alert") == "SentimentDriftJobStale"]
    stale_s = None
    if stale:
        m = re.search(r">\s*(\d+)\s*\*\s*3600", stale[0]["expr"])
        stale_s = int(m.group(1)) * 3600 if m else None
    for cj in dep.of_kind("CronJob"):
        name = cj["metadata"]["name"]
        period = cron_period_seconds(cj["spec"]["schedule"])
        job = cj["spec"]["jobTemplate"]["spec"]
        deadline = job.get("activeDeadlineSeconds")
        if deadline is None or deadline >= period:
            problems.append(
                f"CronJob {name}: activeDeadlineSeconds {deadline} does not end a run before the next ({period}s)"
            )
        if stale_s is not None and "drift" in name and stale_s <= period + (deadline or 0):
            problems.append(
                f"SentimentDriftJobStale fires after {stale_s}s, but CronJob {name} may take {period + (deadline or 0)}s between successes"
            )
        envs = {
            e["name"]: e.get("value") for c in job["template"]["spec"]["containers"] for e in c.get("env", [])
        }
        window = envs.get("SENTIMENTOPS_WINDOW_HOURS")
        if window is not None and float(window) * 3600 < period:
            problems.append(
                f"CronJob {name}: a {window} h window leaves payload logs between runs unchecked ({period}s)"
            )
    retrain = dep.find("WorkflowTemplate", "sentiment-retrain", "sentimentops")
    if retrain is not None:
        by_name = {t["name"]: t for t in retrain["spec"]["templates"]}
        dag = next(t["dag"]["tasks"] for t in retrain["spec"]["templates"] if "dag" in t)
        finish: dict[str, int] = {}
        for task in dag:  # generated in topological order
            start = max([finish[d] for d in task.get("dependencies") or []] or [0])
            finish[task["name"]] = start + int(by_name[task["template"]].get("activeDeadlineSeconds", 0))
        longest = max(finish.values())
        if retrain["spec"].get("activeDeadlineSeconds", 0) < longest:
            problems.append(
                f"sentiment-retrain: activeDeadlineSeconds {retrain['spec'].get('activeDeadlineSeconds')} is shorter than "
                f"its critical path of step deadlines ({longest}s): a slow but healthy run is killed"
            )
    canary = dep.find("WorkflowTemplate", "canary-analysis", "sentimentops")
    if canary is not None:
        analyse = next((t for t in canary["spec"]["templates"] if t["name"] == "analyse"), None)
        params = {p["name"]: p.get("value") for p in canary["spec"]["arguments"]["parameters"]}
        if analyse is not None:
            retry = analyse.get("retryStrategy", {})
            total = int(retry.get("limit", 0)) * seconds(retry.get("backoff", {}).get("duration", "0s"))
            if total < seconds(params.get("analysis-window", "0s")):
                problems.append(
                    f"canary-analysis: HOLD retries cover {total}s, less than the analysis window"
                )
            if canary["spec"].get("activeDeadlineSeconds", 0) <= total:
                problems.append(
                    "canary-analysis: activeDeadlineSeconds ends the workflow before its HOLD retries do"
                )
    return problems


def _rules(dep: Deployment) -> list[dict[str, Any]]:
    return [r for pr in dep.of_kind("PrometheusRule") for g in pr["spec"]["groups"] for r in g["rules"]]


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def check_alert_selectors(dep: Deployment) -> Problems:
    """Alert rules select the names the deployment really produces: CronJob job names, the Pushgateway
    job, WorkflowTemplate names; controller metrics exist in the pinned Argo version and are scraped."""
    from monitoring.drift.push import JOB as DRIFT_JOB

    problems = []
    cronjobs = [cj["metadata"]["name"] for cj in dep.of_kind("CronJob")]
    templates = [wt["metadata"]["name"] for wt in dep.of_kind("WorkflowTemplate")]
    argo_version = tuple(int(x) for x in versions()["apps"]["argo_workflows"].lstrip("v").split(".")[:2])
    for rule in _rules(dep):
        name = rule.get("alert") or rule.get("record")
        for metric, body in _SELECTOR.findall(rule["expr"]):
            for label, op, value in _MATCHER.findall(body):
                if metric.startswith("kube_job") and label == "job_name":
                    pattern = value if op == "=~" else re.escape(value)
                    if not any(re.fullmatch(pattern, f"{cj}-29123456") for cj in cronjobs):
                        problems.append(
                            f'{name}: {metric}{{job_name{op}"{value}"}} matches no Job of CronJobs {cronjobs}'
                        )
                if metric.startswith("sentiment_drift") and label == "job" and value != DRIFT_JOB:
                    problems.append(f'{name}: {metric}{{job="{value}"}}, the drift job pushes as {DRIFT_JOB}')
                if (
                    metric.startswith("argo_workflows")
                    and label == "name"
                    and op == "="
                    and value not in templates
                ):
                    problems.append(f'{name}: {metric}{{name="{value}"}} is no WorkflowTemplate')
            if metric.startswith("argo_workflows_"):
                if argo_version < (3, 6):
                    problems.append(f"{name}: {metric} exists only from Argo Workflows 3.6")
                if not _argo_metrics_scraped(dep):
                    problems.append(
                        f"{name}: {metric}: no ServiceMonitor scrapes the Argo controller's metrics"
                    )
    return problems


def _argo_metrics_scraped(dep: Deployment) -> bool:
    controller = [p for p in dep.pods() if p.source.endswith("workflow-controller")]
    monitors = [m for m in dep.addon_objects if m.get("kind") == "ServiceMonitor"]
    for monitor in monitors:
        for svc in dep.addon_objects:
            if svc.get("kind") != "Service" or not _selects(
                monitor["spec"].get("selector"), svc["metadata"].get("labels", {})
            ):
                continue
            if any(
                all(p.labels.get(k) == v for k, v in (svc["spec"].get("selector") or {}).items())
                for p in controller
            ):
                ports = {p.get("name") for p in svc["spec"].get("ports", [])}
                if any(e.get("port") in ports for e in monitor["spec"].get("endpoints", [])):
                    return True
    return False


def check_argocd(dep: Deployment) -> Problems:
    """Argo CD: every Application's path exists and renders, in the project we define, to namespaces the
    project allows, with kinds it allows; and everything the platform needs is synced by something."""
    problems = []
    projects = {p["metadata"]["name"]: p for p in dep.argocd if p.get("kind") == "AppProject"}
    apps = [a for a in dep.argocd if a.get("kind") == "Application"]
    for app in apps:
        name, spec = app["metadata"]["name"], app["spec"]
        project = projects.get(spec["project"])
        if project is None:
            problems.append(f"Application {name}: project {spec['project']} is not defined here")
            continue
        if spec["source"]["repoURL"] not in project["spec"].get("sourceRepos", []):
            problems.append(
                f"Application {name}: repo {spec['source']['repoURL']} is not in project {spec['project']}"
            )
        allowed_ns = {d["namespace"] for d in project["spec"].get("destinations", [])}
        allowed_kinds = {
            (k.get("group", ""), k["kind"]) for k in project["spec"].get("namespaceResourceWhitelist", [])
        }
        for doc in dep.argocd_sources.get(name, []):
            ns = doc["metadata"].get("namespace")
            if ns not in allowed_ns:
                problems.append(
                    f"Application {name}: {doc['kind']}/{doc['metadata']['name']} goes to {ns}, outside project {spec['project']}"
                )
            group = doc["apiVersion"].rpartition("/")[0]
            if (group, doc["kind"]) not in allowed_kinds:
                problems.append(
                    f"Application {name}: kind {doc['kind']} ({group or 'core'}) is not allowed by project {spec['project']}"
                )
    needed = {
        "helm/sentimentops": "the platform chart",
        f"workflows/manifests/{dep.env.name}": "the Argo templates",
        f"k8s/overlays/{dep.env.name}": "the InferenceService",
    }
    synced = {a["spec"]["source"]["path"] for a in apps}
    for path, what in needed.items():
        if path not in synced:
            problems.append(f"nothing syncs {path} ({what}) in {dep.env.name}")
    for w in WORKLOADS.values():
        if w.owner == "sentimentops" and dep.find(w.kind, w.object, w.ns(dep.env)) is None:
            problems.append(f"{w.name}: {w.kind}/{w.object} is synced by no Application")
    return problems


def check_terraform_environment(dep: Deployment) -> Problems:
    """The environment's tfvars describe the cluster the topology assumes."""
    env, tf = dep.env, dep.tfvars
    wanted = {
        "project_id": env.project,
        "serving_namespace": env.serving_namespace,
        "k8s_namespace": "sentimentops",
        "cpu_machine_type": env.cpu_pool.machine_type,
        "gpu_machine_type": env.gpu_pool.machine_type,
        "gpu_accelerator_type": env.gpu_pool.gpu,
        "region": env.region,
    }
    return [
        f"{env.name}.tfvars: {k} = {tf.get(k)!r}, the topology says {v!r}"
        for k, v in wanted.items()
        if tf.get(k) != v
    ]


def check_all_pods(dep: Deployment) -> Problems:
    """PodSecurity and node fit for every pod, the add-ons' included."""
    problems = []
    for pod in dep.pods():
        problems += pod_security_problems(dep, pod)
        if pod.owner == "sentimentops":
            problems += pod_fit_problems(dep, pod)
    return problems


def _env_of(pod: PodModel) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for c in pod.spec.get("containers", []) for e in c.get("env") or []}


def _template_defaults(dep: Deployment, name: str) -> dict[str, str]:
    wt = dep.find("WorkflowTemplate", name, "sentimentops")
    if wt is None:
        return {}
    return {p["name"]: p.get("value", "") for p in wt["spec"].get("arguments", {}).get("parameters", [])}


def _retrain_runs_serialised(dep: Deployment) -> Problems:
    """A cron run and a drift run never overlap: both create Workflows from the template, whose mutex the
    pinned Argo honours (``synchronization.mutexes``: v3.6+; a Workflow from workflowTemplateRef inherits
    the template's spec)."""
    retrain = dep.find("WorkflowTemplate", "sentiment-retrain", "sentimentops")
    if retrain is None:
        return ["no sentiment-retrain template"]
    problems = []
    mutexes = (retrain["spec"].get("synchronization") or {}).get("mutexes") or []
    if not mutexes:
        problems.append("sentiment-retrain has no synchronization.mutexes: cron and drift runs may overlap")
    argo = tuple(int(x) for x in versions()["apps"]["argo_workflows"].lstrip("v").split(".")[:2])
    if argo < (3, 6):
        problems.append(f"Argo {versions()['apps']['argo_workflows']} ignores synchronization.mutexes (3.6+)")
    for cron in dep.of_kind("CronWorkflow"):
        if (cron["spec"]["workflowSpec"].get("workflowTemplateRef") or {}).get("name") != "sentiment-retrain":
            continue
        if cron["spec"].get("concurrencyPolicy") != "Forbid":
            problems.append(f"CronWorkflow {cron['metadata']['name']}: concurrencyPolicy is not Forbid")
        if cron["spec"]["workflowSpec"].get("synchronization"):
            problems.append(
                f"CronWorkflow {cron['metadata']['name']}: overrides the template's synchronization"
            )
    return problems


def check_handoffs(dep: Deployment) -> Problems:
    """What one part writes is where the next part reads: the predictor's payload sink is the drift job's
    log root, the drift reference is where register publishes it, the base model and training data come
    from the environment's buckets (the cluster has no route to the model hub)."""
    from monitoring.drift.reference import VERSION_PLACEHOLDER

    problems = []
    predictor = [p for p in dep.pods() if p.source.startswith("InferenceService/")]
    drift = [p for p in dep.pods() if p.source == "CronJob/sentimentops-drift"]
    if not predictor or not drift:
        return ["the predictor or the drift CronJob is not deployed"]
    sink = _env_of(predictor[0]).get("SENTIMENTOPS_PAYLOAD_LOG_URI")
    drift_env = _env_of(drift[0])
    if not sink:
        problems.append(
            "the predictor writes no payload log (SENTIMENTOPS_PAYLOAD_LOG_URI unset): drift never sees data"
        )
    elif sink.rstrip("/") != drift_env.get("SENTIMENTOPS_LOG_ROOT", "").rstrip("/"):
        problems.append(
            f"the predictor logs to {sink}, the drift job reads {drift_env.get('SENTIMENTOPS_LOG_ROOT')}"
        )
    pinned = _env_of(predictor[0]).get("SENTIMENTOPS_EXPECTED_MODEL_DIGEST", "")
    isvc = next(d for d in dep.of_kind("InferenceService"))
    annotated = (isvc["metadata"].get("annotations") or {}).get("sentimentops.io/model-digest")
    if not re.fullmatch(r"[0-9a-f]{64}", pinned):
        problems.append(
            "the predictor has no pinned model digest (SENTIMENTOPS_EXPECTED_MODEL_DIGEST): it never becomes ready"
        )
    elif pinned != annotated:
        problems.append(
            f"the predictor's pinned digest {pinned[:12]}… differs from the annotation {str(annotated)[:12]}…"
        )
    rate = _env_of(predictor[0]).get("SENTIMENTOPS_PAYLOAD_LOG_SAMPLE_RATE")
    if rate is not None and float(rate) != dep.env.payload_log_sample_rate:
        problems.append(f"payload sample rate {rate}, the topology says {dep.env.payload_log_sample_rate}")
    retrain = _template_defaults(dep, "sentiment-retrain")
    published = retrain.get("drift_reference_root", "").rstrip("/")
    reference = drift_env.get("SENTIMENTOPS_REFERENCE_URI", "")
    if not published:
        problems.append("sentiment-retrain publishes no drift reference (drift_reference_root is empty)")
    elif reference != f"{published}/{VERSION_PLACEHOLDER}":
        problems.append(
            f"register publishes references under {published}/<version>, the drift job reads {reference}"
        )
    for name in ("base_model", "dataset_uri"):
        value = retrain.get(name) or ""
        if name == "dataset_uri" and not value:
            continue  # required at submission; the cron and sensor pass it (checked under references)
        if not value.startswith("gs://"):
            problems.append(
                f"sentiment-retrain {name} default {value!r} needs the internet; the training pods have none"
            )
    problems += _retrain_runs_serialised(dep)
    for pod in dep.pods():
        if (
            pod.source.startswith("WorkflowTemplate/sentiment-retrain/")
            and _env_of(pod).get("HF_HUB_OFFLINE") != "1"
        ):
            problems.append(
                f"{pod.source}: HF_HUB_OFFLINE is not 1 (a hub lookup would hang until the deadline)"
            )
    return problems


# Manifests that are not synced by Argo CD on purpose: chart templates (rendered), Terraform's local chart,
# kustomization files, the Argo CD bootstrap itself, and test fixtures.
_NOT_SYNCED = (
    "tests/",
    "helm/sentimentops/templates/",
    "infra/terraform/modules/addons/charts/",
    "k8s/argocd/",
)


def manifest_files() -> list[Any]:
    """Every Kubernetes manifest file of the repository that a cluster could be given."""
    from tests.conftest import REPO_ROOT

    out = []
    for path in sorted(REPO_ROOT.rglob("*.y*ml")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel.startswith((".", *_NOT_SYNCED)) or "/." in rel or path.name.startswith("kustomization."):
            continue
        text = path.read_text(errors="replace")
        if re.search(r"^kind:\s", text, re.M) and re.search(r"^apiVersion:\s", text, re.M):
            out.append(path)
    return out


def check_single_source(dep: Deployment, files: list[Any] | None = None) -> Problems:
    """One source for every deployed object: no object is synced twice, and every manifest file in the
    repository is synced by an Application or is a generated copy (marked GENERATED)."""
    import yaml

    problems = []
    seen: dict[tuple[str, str, str], str] = {}
    for doc in dep.objects:
        key = (doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace", ""))
        if key in seen:
            problems.append(
                f"{key[0]} {key[2]}/{key[1]} is deployed twice ({seen[key]}; {doc.get('_source')})"
            )
        seen[key] = str(doc.get("_source"))
    synced = {(kind, name) for kind, name, _ in seen}
    for path in manifest_files() if files is None else files:
        text = path.read_text()
        if "GENERATED by" in text.split("\n", 2)[0] or "Generated from" in text.split("\n", 2)[0]:
            continue
        for doc in yaml.safe_load_all(text):
            if (
                isinstance(doc, dict)
                and doc.get("kind")
                and (doc["kind"], doc.get("metadata", {}).get("name")) not in synced
            ):
                problems.append(
                    f"{path.name}: {doc['kind']}/{doc.get('metadata', {}).get('name')} is deployed by nothing (a copy?)"
                )
    return problems


DEPLOYMENT_CHECKS: dict[str, Callable[[Deployment], Problems]] = {
    "single_source": check_single_source,
    "handoffs": check_handoffs,
    "references": check_references,
    "schemas": check_schemas,
    "timings": check_timings,
    "alert_selectors": check_alert_selectors,
    "argocd": check_argocd,
    "terraform_environment": check_terraform_environment,
    "all_pods": check_all_pods,
    "forbidden": check_forbidden,
}
