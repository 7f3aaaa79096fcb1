"""A Terraform configuration read with python-hcl2, and the security rules tests/infra asserts on it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

# serviceAccount:<project>.svc.id.goog[<namespace>/<ksa>], the pool possibly given as a variable.
_KSA_MEMBER = re.compile(
    r"serviceAccount:(\$\{var\.workload_pool\}|[-a-z0-9]+\.svc\.id\.goog)\[[^/\]*]+/[^\]*]+\]"
)
_OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)


@cache
def load_file(path: Path) -> dict[str, Any]:
    """One .tf/.tfvars file as a dict (strings unquoted, blocks as lists; cached: do not mutate).
    Raises on a parse error."""
    with open(path) as f:
        return hcl2.load(f, serialization_options=_OPTIONS)


@dataclass
class Config:
    """All .tf files of a directory tree (root module and modules/) merged by block kind."""

    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: body for (rtype, name), body in self.resources.items() if rtype == resource_type}


def load_config(root: Path) -> Config:
    config = Config()
    for path in sorted(root.rglob("*.tf")):
        module = path.parent.relative_to(root).as_posix()
        doc = load_file(path)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    config.resources[(rtype, f"{module}:{name}")] = body
        for block in doc.get("variable", []):
            for name, body in block.items():
                config.variables[f"{module}:{name}"] = body
        for block in doc.get("output", []):
            for name, body in block.items():
                config.outputs[f"{module}:{name}"] = body
        for block in doc.get("locals", []):
            for name, value in block.items():
                config.locals[f"{module}:{name}"] = value
    return config


def first(blocks: Any) -> dict[str, Any]:
    """The single nested block `x { ... }`, which hcl2 returns as a one-element list ({} when absent)."""
    if isinstance(blocks, list):
        return blocks[0] if blocks else {}
    return blocks or {}


def security_problems(config: Config) -> list[str]:
    """Security-relevant settings the platform relies on; each entry is one violation."""
    problems = []

    clusters = config.of_type("google_container_cluster")
    if not clusters:
        problems.append("no google_container_cluster")
    for name, cluster in clusters.items():
        private = first(cluster.get("private_cluster_config"))
        if private.get("enable_private_nodes") is not True:
            problems.append(f"cluster {name}: nodes are not private")
        if not str(first(cluster.get("workload_identity_config")).get("workload_pool", "")).endswith(
            ".svc.id.goog"
        ):
            problems.append(f"cluster {name}: Workload Identity is off")
        if cluster.get("enable_shielded_nodes") is not True:
            problems.append(f"cluster {name}: shielded nodes are off")
        if not first(cluster.get("release_channel")).get("channel"):
            problems.append(f"cluster {name}: no release channel")
        if cluster.get("enable_legacy_abac") is True:
            problems.append(f"cluster {name}: legacy ABAC")
        if first(first(cluster.get("master_auth")).get("client_certificate_config")).get(
            "issue_client_certificate"
        ):
            problems.append(f"cluster {name}: issues client certificates")
        if cluster.get("datapath_provider") != "ADVANCED_DATAPATH" and not first(
            cluster.get("network_policy")
        ).get("enabled"):
            problems.append(f"cluster {name}: NetworkPolicies are not enforced")

    pools = config.of_type("google_container_node_pool")
    for name, pool in pools.items():
        node = first(pool.get("node_config"))
        if first(node.get("workload_metadata_config")).get("mode") != "GKE_METADATA":
            problems.append(f"node pool {name}: pods can reach the node's metadata/credentials")
        shielded = first(node.get("shielded_instance_config"))
        if not (
            shielded.get("enable_secure_boot") is True and shielded.get("enable_integrity_monitoring") is True
        ):
            problems.append(f"node pool {name}: secure boot / integrity monitoring off")
        if node.get("guest_accelerator"):
            taints = node.get("taint", [])
            if not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NO_SCHEDULE" for t in taints):
                problems.append(f"GPU node pool {name}: no nvidia.com/gpu NO_SCHEDULE taint")
            if first(pool.get("autoscaling")).get("min_node_count") != 0:
                problems.append(f"GPU node pool {name}: does not scale to zero")
    if pools and not any(first(p.get("node_config")).get("guest_accelerator") for p in pools.values()):
        problems.append("no GPU node pool")

    for name, bucket in config.of_type("google_storage_bucket").items():
        if bucket.get("public_access_prevention") != "enforced":
            problems.append(f"bucket {name}: public access prevention not enforced")
        if bucket.get("uniform_bucket_level_access") is not True:
            problems.append(f"bucket {name}: ACLs allowed (no uniform bucket-level access)")
        if first(bucket.get("versioning")).get("enabled") is not True:
            problems.append(f"bucket {name}: versioning off")
        if not bucket.get("lifecycle_rule"):
            problems.append(f"bucket {name}: no lifecycle rule")
    for rtype in (
        "google_storage_bucket_iam_member",
        "google_storage_bucket_iam_binding",
        "google_project_iam_member",
    ):
        for name, grant in config.of_type(rtype).items():
            members = [grant.get("member", "")] + list(grant.get("members", []))
            if any(m in {"allUsers", "allAuthenticatedUsers"} for m in members):
                problems.append(f"{rtype} {name}: public member")
            if str(grant.get("role", "")) in {"roles/owner", "roles/editor", "roles/storage.admin"}:
                problems.append(f"{rtype} {name}: primitive/admin role {grant['role']}")

    for name, instance in config.of_type("google_sql_database_instance").items():
        ip = first(first(instance.get("settings")).get("ip_configuration"))
        if ip.get("ipv4_enabled") is not False or not ip.get("private_network"):
            problems.append(f"Cloud SQL {name}: not private-IP only")
        if ip.get("authorized_networks"):
            problems.append(f"Cloud SQL {name}: authorized networks open it up")

    for name, wi in config.of_type("google_service_account_iam_member").items():
        if wi.get("role") == "roles/iam.workloadIdentityUser" and not _KSA_MEMBER.fullmatch(
            str(wi.get("member"))
        ):
            problems.append(f"{name}: workloadIdentityUser granted to something other than one KSA")
    return problems
