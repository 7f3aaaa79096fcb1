"""The checks the flow tests run over a rendered deployment. Each returns a list of problems (empty = pass),
so the same function serves the flow table, the per-environment tests and the mutation tests that prove
each check can fail.

Hop checks (one connection of a user flow), in ``hops``: ``exists``, ``identity``, ``network``, ``rbac``,
``iam``, ``podsecurity``, ``fits``. Deployment-wide checks: ``references`` (every name resolves), and in
``consistency`` schemas, timings, alert selectors, Argo CD, Terraform, hand-offs, one source per object.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.topology import EXTERNALS, Hop, workload
from tests.platform.checks import common, consistency, hops, references
from tests.platform.checks.common import Problems, _rules, workload_pods
from tests.platform.checks.consistency import (
    check_alert_selectors,
    check_all_pods,
    check_argocd,
    check_batch_score_capacity,
    check_handoffs,
    check_schemas,
    check_single_source,
    check_terraform_environment,
    check_timings,
    manifest_files,
)
from tests.platform.checks.hops import (
    check_exists,
    check_fits,
    check_forbidden,
    check_iam,
    check_identity,
    check_network,
    check_podsecurity,
    check_rbac,
    check_service,
    pod_fit_problems,
    pod_security_problems,
)
from tests.platform.checks.references import check_references
from tests.platform.deployment import Deployment

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

DEPLOYMENT_CHECKS: dict[str, Callable[[Deployment], Problems]] = {
    "single_source": check_single_source,
    "handoffs": check_handoffs,
    "references": check_references,
    "schemas": check_schemas,
    "timings": check_timings,
    "alert_selectors": check_alert_selectors,
    "argocd": check_argocd,
    "terraform_environment": check_terraform_environment,
    "batch_score_capacity": check_batch_score_capacity,
    "all_pods": check_all_pods,
    "forbidden": check_forbidden,
}


__all__ = [
    "DEPLOYMENT_CHECKS",
    "HOP_CHECKS",
    "Problems",
    "_rules",
    "check_alert_selectors",
    "check_all_pods",
    "check_argocd",
    "check_batch_score_capacity",
    "check_exists",
    "check_fits",
    "check_forbidden",
    "check_handoffs",
    "check_iam",
    "check_identity",
    "check_network",
    "check_podsecurity",
    "check_rbac",
    "check_references",
    "check_schemas",
    "check_service",
    "check_single_source",
    "check_terraform_environment",
    "check_timings",
    "common",
    "consistency",
    "hop_problems",
    "hops",
    "manifest_files",
    "pod_fit_problems",
    "pod_security_problems",
    "references",
    "workload_pods",
]
