"""Hop checks: one connection of a user flow, from the caller's and callee's side."""

from __future__ import annotations

import re
from typing import Any

from infra.topology import EXTERNALS, FORBIDDEN, Hop, Workload, workload
from tests.infra import netpol
from tests.platform.checks.common import (
    _GS,
    ADDON_SERVICES,
    Problems,
    _endpoint,
    _ns,
    _policies,
    _rendered_labels,
    _strings,
    eventsource_behind,
    workload_pods,
)
from tests.platform.deployment import Deployment, PodModel
from tests.platform.pod_security import LEVELS, violations


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
    es = eventsource_behind(dep, namespace, name)
    if es is None:
        return None
    spec_ports = (es["spec"].get("service") or {}).get("ports", [])
    return {
        "ports": {int(p["port"]) for p in spec_ports},
        "targets": {int(p.get("targetPort", p["port"])) for p in spec_ports},
    }


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
